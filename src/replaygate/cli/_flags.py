"""Flags that several commands or option groups take, each defined once, here.

A flag named alike in two commands means the same thing there, with the same definition
(``tests/cli/test_flags.py`` walks every command and holds them to it); option groups
(``_options``, ``_replay_options``, ``_capture_options``, ``_report_options``) are built
from these where they share one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._config_schema import float_range
from ..config import parse_duration, parse_size
from ..errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "MAX_DURATION_S",
    "Bounded",
    "append_option",
    "bounded_duration",
    "bounded_size",
    "duration_option",
    "force_option",
    "mask_config_option",
    "mask_key_file_option",
    "quiet_option",
    "rate_option",
    "recorder_output_option",
    "rotation_options",
    "speed_option",
    "tls_keylog_option",
]


def duration_option(f: F) -> F:
    """``--duration DURATION``: stop after this long (capture, proxy, replay, shadow, worker)."""
    return click.option(
        "--duration", default=None, metavar="DURATION", help="Stop after DURATION (e.g. 30s, 10m)."
    )(f)


def speed_option(f: F) -> F:
    """``--speed X`` (replay, worker)."""
    return click.option(
        "--speed",
        type=float_range("replay", "speed"),
        default=None,
        help="Replay as recorded, X times faster (default 1; 0.5 = half speed).",
    )(f)


def rate_option(f: F) -> F:
    """``--rate N`` (replay; a worker's is global, shared by all workers)."""
    return click.option(
        "--rate",
        type=float_range("replay", "rate"),
        default=None,
        help="Fixed rate, requests per second (worker: across all workers).",
    )(f)


def quiet_option(f: F) -> F:
    """``--quiet/-q`` (convert, mask-data, compare, aggregate)."""
    return click.option(
        "--quiet",
        "-q",
        is_flag=True,
        default=False,
        help="Print no summary; errors, the exit code and the files written only.",
    )(f)


def append_option(f: F) -> F:
    """``--append``: add to an existing output (recorders refuse one otherwise)."""
    return click.option(
        "--append",
        is_flag=True,
        default=False,
        help="Add to an existing .gor/.jsonl output (recorders otherwise refuse to start).",
    )(f)


def force_option(f: F) -> F:
    """``--force``: a recorder may overwrite an output that holds data."""
    return click.option(
        "--force",
        is_flag=True,
        default=False,
        help="Overwrite an existing output (by default a non-empty one is refused).",
    )(f)


def rotation_options(f: F) -> F:
    """``--max-bytes SIZE`` and ``--max-seconds DURATION`` (rotation of .gor outputs)."""
    f = click.option(
        "--max-seconds",
        default=None,
        metavar="DURATION",
        help="Rotate .gor output every DURATION (e.g. 10m): name_0.gor, name_1.gor, ...",
    )(f)
    return click.option(
        "--max-bytes",
        default=None,
        metavar="SIZE",
        help="Rotate .gor output after SIZE (e.g. 64mb): name_0.gor, name_1.gor, ...",
    )(f)


def mask_config_option(f: F) -> F:
    """``--mask-config FILE`` (the traffic flags, mask-data, scan)."""
    return click.option(
        "--mask-config",
        "mask_config",
        metavar="FILE",
        default=None,
        help="Masking rules (TOML, [mask] section; default: the --mask profile); implies --mask.",
    )(f)


def mask_key_file_option(f: F) -> F:
    """``--mask-key-file FILE`` (the traffic flags, mask-data)."""
    return click.option(
        "--mask-key-file",
        "mask_key_file",
        metavar="FILE",
        default=None,
        help="Pseudonymisation key file (else $REPLAYGATE_MASK_KEY).",
    )(f)


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


def tls_keylog_option(f: F) -> F:
    """``--tls-keylog FILE`` (capture, convert, inspect)."""
    return click.option(
        "--tls-keylog",
        default=None,
        metavar="FILE",
        help="Decrypt HTTPS with this NSS key log (SSLKEYLOGFILE): followed as clients write "
        "it while capturing; key logs embedded in pcapng (editcap --inject-secrets) are "
        "always used.",
    )(f)


def recorder_output_option(f: F) -> F:
    """``--output/-o FILE`` of the recorders (capture, proxy)."""
    return click.option(
        "--output",
        "-o",
        required=True,
        metavar="FILE",
        help="Where to record (.gor[.gz|.zst], .har, .jsonl). An existing non-empty FILE is "
        "refused unless --force or --append.",
    )(f)


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
