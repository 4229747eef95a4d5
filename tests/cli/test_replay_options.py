"""The replay option group: defined once, taken by replay, shadow and worker alike."""

from __future__ import annotations

import dataclasses
from typing import Any

import click
import pytest
from click.testing import CliRunner

from replaygate.cli import replay, shadow, worker
from replaygate.cli._options import traffic_options
from replaygate.cli._replay_options import ReplayOptions, correlate_option, replay_options

COMMANDS = {"replay": replay.command, "shadow": shadow.command, "worker": worker.command}
GROUP = [f.name for f in dataclasses.fields(ReplayOptions)]


def _params(cmd: click.Command) -> dict[str, click.Parameter]:
    return {p.name: p for p in cmd.params if p.name is not None}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_takes_every_flag_with_the_same_definition(name: str) -> None:
    @click.command()
    @replay_options
    def reference(replay: ReplayOptions) -> None:  # pragma: no cover - not invoked
        pass

    ref = _params(reference)
    got = _params(COMMANDS[name])
    for flag in GROUP:
        assert flag in got, f"{name}: no {flag}"
        a, b = ref[flag], got[flag]
        assert (a.opts, a.secondary_opts, a.multiple) == (b.opts, b.secondary_opts, b.multiple)
        assert a.default == b.default, f"{name} {flag}"
        assert repr(a.type) == repr(b.type), f"{name} {flag}"


def test_correlate_is_one_definition() -> None:
    for name in ("replay", "worker"):
        p = _params(COMMANDS[name])["correlate"]
        assert p.default is True and p.opts == ["--correlate"]


def test_the_command_gets_one_typed_object() -> None:
    seen: list[Any] = []

    @click.command()
    @replay_options
    @correlate_option
    @traffic_options
    def cmd(replay: ReplayOptions, correlate: bool, **traffic: Any) -> None:
        seen.append((replay, correlate, traffic))

    args = ["-t", "http://127.0.0.1:1", "-t", "http://127.0.0.1:2", "--order", "none"]
    result = CliRunner().invoke(cmd, [*args, "--timeout", "3s", "--no-correlate"])
    assert result.exit_code == 0, result.output
    ((opts, correlate, traffic),) = seen
    assert opts.target == ("http://127.0.0.1:1", "http://127.0.0.1:2")
    assert (opts.order, opts.timeout, opts.concurrency, correlate) == ("none", "3s", None, False)
    assert not set(GROUP) & set(traffic)
    rc = opts.config({}, max_speed=True)
    assert rc.targets == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert (rc.order, rc.response_timeout, rc.concurrency, rc.max_speed) == ("none", 3.0, 64, True)


def test_defaults_give_the_library_defaults() -> None:
    rc = ReplayOptions(target=("http://127.0.0.1:1",)).config({})
    from replaygate.replay import ReplayConfig

    lib = ReplayConfig(targets=["http://127.0.0.1:1"])
    assert rc == lib
