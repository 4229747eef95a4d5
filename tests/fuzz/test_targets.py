"""Every registered fuzz target, with a few hundred hypothesis examples, in normal pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from replaygate.errors import ReplaygateError

from . import discover, fuzz_input

_TARGETS = discover()


@pytest.mark.parametrize("name", sorted(_TARGETS))
def test_target_raises_only_package_errors(name: str) -> None:
    target = _TARGETS[name]

    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(fuzz_input(target.seeds))
    def run(data: bytes) -> None:
        try:
            target.func(data)
        except ReplaygateError:
            pass

    run()


@pytest.mark.parametrize("name", sorted(_TARGETS))
def test_target_accepts_its_seeds(name: str) -> None:
    for seed in _TARGETS[name].seeds:
        try:
            _TARGETS[name].func(seed)
        except ReplaygateError:
            pass


def test_discovery_finds_targets() -> None:
    assert all(callable(t.func) for t in _TARGETS.values())


def test_runner_saves_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from . import _Discovered
    from .__main__ import run_hypothesis

    def bad(data: bytes) -> None:
        if data[:1] == b"G":
            raise ValueError("boom")

    monkeypatch.chdir(tmp_path)
    target = _Discovered("bad", "fuzz_x", bad, [b"GET / HTTP/1.1\r\n\r\n"])
    count, crash = run_hypothesis(target, 5.0)
    assert crash is not None and count > 0
    assert (tmp_path / crash).read_bytes()[:1] == b"G"
    assert "ValueError: boom" in (tmp_path / crash).with_suffix(".txt").read_text()


def test_runner_lists_targets() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.fuzz", "--list"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert {line.split("\t")[0] for line in out.splitlines()} == set(_TARGETS)
