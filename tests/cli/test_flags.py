"""Each flag is defined once: a flag name means one thing, with one definition (type,
metavar, help, names), in every command that takes it. Defaults may differ by command
(``shadow`` prints ``--stats`` every 10s by default).

A few names are homonyms kept for compatibility (renaming a flag breaks users): listed
here with the commands whose flag of that name means something else; the other commands
that take the name must still agree on one definition.
"""

from __future__ import annotations

import collections

import click
import pytest

from replaygate.cli import cli
from replaygate.cli._flags import Bounded, _table, flags
from replaygate.errors import ConfigError

HOMONYMS: dict[str, set[str]] = {
    # a path for the JSON report vs "print the result as JSON" (inspect: one per exchange)
    "--json": {"inspect", "mask-data", "scan", "stream status"},
    # what is written differs by command; the recorders (capture, proxy) share one
    "--output": {"accept", "mask-data", "replay", "shadow"},
    # a stream's size limit vs the rotation of a .gor output
    "--max-bytes": {"stream init"},
    # the proxy's request heads vs the replayed response heads
    "--max-header-size": {"proxy"},
    # the proxy accepting HTTP/2 clients vs replay speaking HTTP/2 to the targets
    "--http2": {"proxy"},
}


def _commands() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    out: dict[str, click.Command] = {}

    def walk(cmd: click.Command | None, name: str) -> None:
        if isinstance(cmd, click.Group):
            for n in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, n), f"{name} {n}".strip())
        elif cmd is not None:
            out[name] = cmd

    walk(cli, "")
    return out


def _name(p: click.Option) -> str:
    """The flag's long name (``--output`` for ``-o/--output``)."""
    return max(p.opts, key=len)


def _definition(p: click.Option) -> tuple[object, ...]:
    return (
        tuple(sorted(p.opts)),
        tuple(sorted(p.secondary_opts)),
        repr(p.type),
        p.multiple,
        p.is_flag,
        p.metavar,
        p.help,
        p.hidden,
    )


def test_each_flag_name_has_one_definition() -> None:
    defs: dict[str, dict[tuple[object, ...], list[str]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for cname, cmd in _commands().items():
        for p in cmd.params:
            if isinstance(p, click.Option):
                name = _name(p)
                if cname not in HOMONYMS.get(name, set()):
                    defs[name][_definition(p)].append(cname)
    twice = {
        name: [" / ".join(cmds) for cmds in d.values()] for name, d in defs.items() if len(d) > 1
    }
    assert not twice, f"flags defined more than once (commands per definition): {twice}"


def test_every_option_comes_from_flags_toml() -> None:
    """No command declares a flag of its own: each option is an entry of cli/flags.toml."""

    def table_definition(key: str) -> tuple[object, ...]:
        @flags(key)
        def f() -> None:  # pragma: no cover - never called
            pass

        (p,) = f.__click_params__
        assert isinstance(p, click.Option)
        return _definition(p)

    known = {table_definition(k) for k in _table()}
    outside = [
        f"{cname} {_name(p)}"
        for cname, cmd in _commands().items()
        for p in cmd.params
        if isinstance(p, click.Option) and _definition(p) not in known
    ]
    assert not outside, f"flags defined outside cli/flags.toml: {outside}"


def test_homonyms_are_still_needed() -> None:
    """An entry whose commands no longer take the flag (or agree) is removed."""
    cmds = _commands()
    for name, where in HOMONYMS.items():
        for cname in where:
            assert any(
                isinstance(p, click.Option) and _name(p) == name for p in cmds[cname].params
            ), f"{cname} has no {name}: remove it from HOMONYMS"


def test_the_walk_sees_every_command() -> None:
    names = set(_commands())
    assert {"capture", "proxy", "replay", "shadow", "worker", "convert", "stream init"} <= names


@pytest.mark.parametrize(
    ("kind", "lo", "hi", "value", "message"),
    [
        (int, 1, 10, "0", "--n: must be from 1 to 10 (got 0)"),
        (int, 1, 10, "11", "--n: must be from 1 to 10 (got 11)"),
        (int, 1, 10, "x", "--n: expected a whole number, got 'x'"),
        (float, 1e-6, 1e6, "1e-300", "--n: must be from 1e-06 to 1e+06 (got 1e-300)"),
        (float, 0, 1, "nan", "--n: must be from 0 to 1 (got nan)"),
        (float, 0, 1, "inf", "--n: must be from 0 to 1 (got inf)"),
    ],
)
def test_bounded_numbers_are_one_line_naming_the_flag(
    kind: type[int] | type[float], lo: float, hi: float, value: str, message: str
) -> None:
    opt = click.Option(["--n"])
    with pytest.raises(ConfigError) as e:
        Bounded(kind, lo, hi).convert(value, opt, None)
    assert str(e.value) == message


def test_bounded_accepts_the_bounds() -> None:
    opt = click.Option(["--n"])
    assert Bounded(int, 1, 10).convert("10", opt, None) == 10
    assert Bounded(float, 0, 1).convert(0.5, opt, None) == 0.5
