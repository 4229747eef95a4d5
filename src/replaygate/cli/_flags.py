"""Every flag of the command line is defined once, in ``flags.toml`` next to this module;
:func:`flags` adds flags to a command by key, in order.

A flag named alike in two commands means the same thing there, with the same definition
(``tests/cli/test_flags.py`` walks every command and holds them to it); option groups
(``_options``, ``_replay_options``, ``_capture_options``, ``_report_options``, ``_live``)
are lists of keys. Numbers are bounded (:class:`Bounded`, ``bounded_duration``,
``bounded_size``): out of bounds is one line naming the flag and exit 2.
"""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import click

from .._config_schema import float_range, int_range
from ..config import parse_duration, parse_size
from ..errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def _table() -> dict[str, dict[str, Any]]:
    text = importlib.resources.files(__package__).joinpath("flags.toml").read_text("utf-8")
    return tomllib.loads(text)


def flags(*keys: str, **changes: Mapping[str, Any]) -> Callable[[F], F]:
    """Decorator: the flags ``keys`` of ``flags.toml``, in this order in ``--help``;
    ``changes``: a command's own default of a flag (``stats={"default": "10s"}``)."""

    def deco(f: F) -> F:
        for key in reversed(keys):
            f = _option(key, changes.get(key, {}))(f)
        return f

    return deco


def group(keyword: str, make: Callable[[dict[str, Any]], Any], *keys: str) -> Callable[[F], F]:
    """Decorator: the flags ``keys``, handed to the command as one typed object (keyword
    ``keyword``) that ``make`` builds from their values (an option group)."""
    names = [_table()[k]["decls"][-1] for k in keys]

    def deco(f: F) -> F:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names}
            return f(*args, **{keyword: make(values)}, **kwargs)

        return flags(*keys)(cast(F, command))

    return deco


def _option(key: str, change: Mapping[str, Any]) -> Callable[[F], F]:
    spec = dict(_table()[key])
    decls = spec.pop("decls")
    kind = spec.pop("type", None)
    choices = spec.pop("choices", None)
    case_sensitive = spec.pop("case_sensitive", True)
    if spec.pop("default_none", False):
        spec["default"] = None
    if kind is not None:
        spec["type"] = _type(kind, choices, case_sensitive)
    spec.update(change)
    return click.option(*decls, **spec)


def _type(kind: str, choices: list[str] | None, case_sensitive: bool) -> Any:
    name, _, rest = kind.partition(":")
    if name == "choice":
        return click.Choice(choices or [], case_sensitive=case_sensitive)
    if name in ("int", "float"):
        return int if name == "int" else float
    if name == "bounded":
        k, lo, hi = rest.split(":")
        num = int if k == "int" else float
        return Bounded(num, num(lo), num(hi))
    if rest.startswith("replay."):
        rng = int_range if name == "int_range" else float_range
        return rng("replay", rest.removeprefix("replay."))
    lo_s, hi_s = rest.split(":")
    if name == "int_range":
        return click.IntRange(int(lo_s) if lo_s else None, int(hi_s) if hi_s else None)
    return click.FloatRange(float(lo_s) if lo_s else None, float(hi_s) if hi_s else None)


__all__ = [
    "MAX_DURATION_S",
    "Bounded",
    "bounded_duration",
    "bounded_size",
    "flags",
    "group",
]


class Bounded(click.ParamType[Any]):
    """A number with sane bounds (#12: ``--concurrency 100000000`` ate 1.6 GB, ``--rate
    1e-300`` overflowed). Out of bounds, or not a number, is one line naming the flag and
    exit 2 (a :class:`~replaygate.errors.ConfigError`, not click's usage block)."""

    def __init__(self, kind: type[int] | type[float], lo: float, hi: float) -> None:
        self.kind = kind
        self.lo, self.hi = lo, hi
        self.name = kind.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        flag = param.opts[0] if param is not None and param.opts else "value"
        if isinstance(value, self.kind) and not isinstance(value, bool):
            v = value
        else:
            try:
                v = self.kind(str(value).strip())
            except ValueError:
                raise ConfigError(f"{flag}: expected {_A[self.name]}, got {value!r}") from None
        if not self.lo <= v <= self.hi:  # also false for nan
            raise ConfigError(
                f"{flag}: must be from {self._n(self.lo)} to {self._n(self.hi)} (got {value})"
            )
        return v

    def _n(self, x: float) -> str:
        return str(int(x)) if self.kind is int else f"{x:g}"

    def __repr__(self) -> str:
        return f"Bounded({self.name}, {self._n(self.lo)}, {self._n(self.hi)})"


_A = {"int": "a whole number", "float": "a number"}


# ~31 years: beyond, deadlines and NATS' nanosecond fields (int64) overflow
MAX_DURATION_S = 1e9


def bounded_duration(text: str, flag: str, lo: float = 1e-3, hi: float = MAX_DURATION_S) -> float:
    """A duration flag (``10s``, ``5m``) parsed and held to ``[lo, hi]`` seconds: one line
    naming the flag otherwise."""
    v = parse_duration(text, name=flag)
    if not lo <= v <= hi:
        raise ConfigError(f"{flag}: must be from {_secs(lo)} to {_secs(hi)} (got {text})")
    return v


def bounded_size(text: str, flag: str, lo: int, hi: int) -> int:
    """A size flag (``64mb``) parsed and held to ``[lo, hi]`` bytes."""
    v = parse_size(text, name=flag)
    if not lo <= v <= hi:
        raise ConfigError(f"{flag}: must be from {_bytes(lo)} to {_bytes(hi)} (got {text})")
    return v


def _secs(s: float) -> str:
    return f"{s * 1000:g}ms" if s < 1 else f"{s:g}s"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}b"
