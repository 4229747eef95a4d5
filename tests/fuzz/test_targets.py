"""Every registered fuzz target, with a few hundred hypothesis examples, in normal pytest."""

from __future__ import annotations

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
