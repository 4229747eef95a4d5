"""The output checks shared by the commands that write traffic (capture, proxy, shadow,
convert): rotation flags parsed and checked once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..config import parse_duration, parse_size
from ..errors import ConfigError
from ..formats import WriteOptions, format_of

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["write_options"]


def write_options(
    output: str,
    *,
    append: bool,
    max_bytes: str | None,
    max_seconds: str | None,
    check_format: bool = True,
) -> WriteOptions:
    """WriteOptions from ``--append``, ``--max-bytes`` and ``--max-seconds`` (rotation is for
    ``.gor`` outputs only; ``check_format=False``: the run checks it when it opens the
    output); bad values are one line naming the flag."""
    w = WriteOptions(append=append)
    if max_bytes is not None:
        w.max_bytes = parse_size(max_bytes, name="--max-bytes")
        if w.max_bytes <= 0:
            raise ConfigError("--max-bytes: must be positive")
    if max_seconds is not None:
        w.max_seconds = parse_duration(max_seconds, name="--max-seconds")
        if w.max_seconds <= 0:
            raise ConfigError("--max-seconds: must be positive")
        if w.max_seconds > 1e9:
            raise ConfigError(f"--max-seconds: must be at most 1e+09s (got {max_seconds})")
    if check_format and (w.max_bytes or w.max_seconds) and format_of(output) != "gor":
        raise ConfigError("--max-bytes/--max-seconds: rotation is for .gor outputs only")
    return w
