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
    cfg = load_config(p)
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
