"""The CLI shell: every subcommand has --help; user errors are one line and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from replaygate.cli import COMMANDS, cli

AVAILABLE = cli.list_commands(None)  # type: ignore[arg-type]


def test_top_level_help() -> None:
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    for name in AVAILABLE:
        assert name in r.output


@pytest.mark.parametrize("name", AVAILABLE)
def test_subcommand_help(name: str) -> None:
    r = CliRunner().invoke(cli, [name, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output


def test_commands_table_sorted() -> None:
    assert list(COMMANDS) == sorted(COMMANDS)


def test_python_dash_m_and_unknown_command() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "replaygate", "no-such-command"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "No such command" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "replaygate", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0
    assert "replaygate" in r.stdout
