"""#12: every numeric flag and config key has sane bounds; out of them is one line naming
the flag (or key) and exit 2, never a traceback, a huge allocation or an overflow."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from replaygate.cli import main
from replaygate.config import load_config
from replaygate.errors import ConfigError


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def _entry(argv: tuple[str, ...]) -> None:
    main(list(argv))


NATS = "nats://127.0.0.1:9/S"


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["capture", "-p", "0"], "--port"),
        (["capture", "-p", "70000"], "--port"),
        (["capture", "-p", "80", "--max-exchanges", "0"], "--max-exchanges"),
        (["capture", "-p", "80", "--max-queue", "100000000"], "--max-queue"),
        (["capture", "-p", "80", "--buffer-size", "1tb"], "--buffer-size"),
        (["capture", "-p", "80", "--idle-timeout", "0"], "--idle-timeout"),
        (["capture", "-p", "80", "--duration", "99999999999s"], "--duration"),
        (["capture", "-p", "80", "--stats", "99999999999s"], "--stats"),
        (["capture", "-p", "80", "--max-seconds", "99999999999s"], "--max-seconds"),
        (["proxy", "--upstream", "http://127.0.0.1:9", "--duration", "0"], "--duration"),
        (["proxy", "--upstream", "http://127.0.0.1:9", "--max-queue", "0"], "--max-queue"),
        (["proxy", "--upstream", "http://127.0.0.1:9", "--max-queue", "1e300"], "--max-queue"),
        (["stream", "init", NATS, "--replicas", "100"], "--replicas"),
        (["stream", "init", NATS, "--max-msgs", "9" * 30], "--max-msgs"),
        (["stream", "init", NATS, "--max-age", "99999999999s"], "--max-age"),
        (["stream", "init", NATS, "--max-bytes", "0"], "--max-bytes"),
        (["worker", "--source", NATS, "-t", "http://127.0.0.1:9", "--ack-wait", "0"], "--ack-wait"),
        (["replay", "x.gor", "-t", "http://127.0.0.1:9", "--watch-pid", "9" * 15], "--watch-pid"),
    ],
)
def test_out_of_bounds_flag_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], flag: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if args[0] in ("capture", "proxy"):
        args = [*args, "-o", str(tmp_path / "out.gor")]
    r = CliRunner().invoke(_entry, args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"replaygate: error: {flag}"), r.output
    assert not (tmp_path / "out.gor").exists()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[compare]\nsamples = 1000000000\n", "[compare] samples"),
        ("[compare]\nlearn_window = 1000000000000\n", "[compare] learn_window"),
        ("[compare]\nmax_endpoints = 1000000000000\n", "[compare] max_endpoints"),
        ("[gate]\nmax_p99_ms = 1e300\n", "[gate] max_p99_ms"),
        ("[middleware]\nsettle_timeout = 1e300\n", "[middleware] settle_timeout"),
        ("[replay]\nconcurrency = 100000000\n", "[replay] concurrency"),
    ],
)
def test_out_of_bounds_config_key_names_it(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "replaygate.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(key) + ": .* is out of range"):
        load_config(p)
