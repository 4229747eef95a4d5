from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from replaygate.config import load_config, parse_duration, parse_percent, parse_size, section
from replaygate.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("200ms", 0.2), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5), (3, 3.0)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "n"), [("32mb", 32 << 20), ("1g", 1 << 30), ("512KiB", 512 << 10), ("100", 100)]
)
def test_parse_size(text: str, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize(("text", "frac"), [("25%", 0.25), ("0.5", 0.5), ("50", 0.5), (1, 1.0)])
def test_parse_percent(text: str | int, frac: float) -> None:
    assert parse_percent(text) == pytest.approx(frac)


@pytest.mark.parametrize("bad", ["ten", "-1s", "5 parsecs"])
def test_bad_duration_names_flag(bad: str) -> None:
    with pytest.raises(ConfigError, match="--duration"):
        parse_duration(bad, name="--duration")


def test_bad_percent() -> None:
    with pytest.raises(ConfigError):
        parse_percent("150%")


@dataclass
class _S:
    a: int = 1
    b: str = "x"


def test_section_and_unknown_field(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text("[s]\na = 5\n")
    cfg = load_config(p, schema=False)  # [s] is not a replaygate.toml section (#12: checked)
    s = section(_S, cfg.get("s"), name="s", b="cli")
    assert (s.a, s.b) == (5, "cli")
    with pytest.raises(ConfigError, match=r"\[s\] unknown field 'c'"):
        section(_S, {"c": 1}, name="s")


def test_bad_toml_names_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[s\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


# --- the one schema (#12) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ('[replay]\nconcurrency = "abc"\n', "[replay] concurrency: expected an integer, got 'abc'"),
        ('[replay]\nspeed = "fast"\n', "[replay] speed: expected a number, got 'fast'"),
        ("[replay]\nresponse_timeout = [1, 2]\n", "[replay] response_timeout: expected a number"),
        ("replay = 5\n", "[replay]: must be a table"),
        ("gate = 5\n", "[gate]: must be a table"),
        ('compare = "x"\n', "[compare]: must be a table"),
        ("correlation = 1\n", "[correlation]: must be a table"),
        ("[gat]\nmax_diff_rate = 1\n", "unknown section [gat] (did you mean [gate]?)"),
        ("targets = 5\n", "unknown top-level key 'targets' (did you mean [replay] targets?)"),
        ("[replay]\ntargets = 5\n", "[replay] targets: expected a list of strings, got 5"),
        ("[replay]\nspeeed = 2\n", "[replay] unknown field 'speeed' (did you mean speed?)"),
        ("[replay]\nconcurrency = 100000000\n", "100000000 is out of range (1 to 65536)"),
        ("[replay]\nrate = 1e-300\n", "[replay] rate: 1e-300 is out of range"),
        ("[compare]\nsamples = true\n", "[compare] samples: expected an integer, got True"),
        (
            "[gate]\nmax_diff_rate = [1]\n",
            "[gate] max_diff_rate: expected a number or a percentage",
        ),
        ("[middleware]\nplugins = 3\n", "[middleware] plugins: expected a string or a list"),
        ("[filters]\nallow_url = 3\n", "[filters] allow_url: expected a list of strings, got 3"),
    ],
)
def test_the_schema_names_the_key(tmp_path: Path, text: str, msg: str) -> None:
    p = tmp_path / "replaygate.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: ") and msg in str(e.value), str(e.value)


def test_a_non_utf8_config_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "replaygate.toml"
    p.write_bytes(b"[replay]\nspeed = 2 # \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(p)


def test_valid_values_pass_the_schema(tmp_path: Path) -> None:
    p = tmp_path / "replaygate.toml"
    p.write_text(
        '[replay]\ntargets = ["http://127.0.0.1:1"]\nresponse_timeout = "10s"\n'
        'max_response_size = "64MiB"\nramp = [[10, 5]]\nconcurrency = 8\nspeed = 2\n'
        '[gate]\nmax_diff_rate = "2%"\nmax_p99_ratio = 2\n'
        '[filters]\nallow_url = "^/api"\n[middleware]\nplugins = ["a:b"]\n'
        '[rewrite]\nset_header = {X-A = "1"}\n[compare]\nignore = [{path = "$.ts"}]\n'
    )
    assert load_config(p)["replay"]["concurrency"] == 8


def test_the_schema_is_the_reference_sections() -> None:
    from replaygate import _config_reference as ref
    from replaygate import _config_schema as schema

    loaded = {n: schema._load(r) for n, r in schema.SECTION_CLASSES.items()}
    assert loaded == ref.SECTIONS
    assert {k: tuple(v) for k, v in schema.EXTRA_KEYS.items()} == ref.EXTRA_KEYS
    for sec, keys in schema.STRING_NUMBERS.items():
        assert set(keys) <= set(schema.schema(sec)), sec
    for sec, key in schema.BOUNDS:
        assert key in schema.schema(sec), (sec, key)


def test_replay_and_compare_accept_and_reject_the_same_files(tmp_path: Path) -> None:
    """Both commands check the whole file against the one schema (#12: replay accepted a
    [compare] key that compare rejected)."""
    import subprocess
    import sys

    from replaygate.formats.gor import write_bytes
    from replaygate.testing import make_exchange

    src = tmp_path / "in.gor"
    src.write_bytes(write_bytes([make_exchange("GET", "/")]))
    conf = tmp_path / "c.toml"
    for text in ("[compare]\nsamples = -1x\n", '[compare]\nsamples = "3"\n', "[gat]\n"):
        conf.write_text(text)
        out = []
        for args in (
            ["replay", str(src), "-t", "http://127.0.0.1:9", "--config", str(conf)],
            ["compare", str(src), "--config", str(conf)],
        ):
            r = subprocess.run(
                [sys.executable, "-m", "replaygate", *args], capture_output=True, text=True
            )
            out.append((r.returncode, r.stderr.strip().splitlines()[-1]))
        assert out[0] == out[1] and out[0][0] == 2, out
