"""Typed configuration: ``replaygate.toml`` sections and value parsers. No globals.

Each area owns a dataclass for its section (``[replay]``, ``[mask]``, ``[gate]``, ...) and
builds it with :func:`section` from the loaded file plus CLI flags (flags win). Parsers here
turn the strings users type (``10s``, ``32mb``, ``25%``) into numbers and raise
:class:`~replaygate.errors.ConfigError` naming the flag or field on bad input.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "load_config",
    "parse_duration",
    "parse_percent",
    "parse_size",
    "section",
]

DEFAULT_CONFIG_NAME = "replaygate.toml"

T = TypeVar("T")

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)?\s*$", re.IGNORECASE)
_DUR_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_duration(text: str | float | int, *, name: str = "duration") -> float:
    """``"1.5s"``, ``"200ms"``, ``"2m"``, ``"1h"`` or a bare number of seconds -> seconds."""
    if isinstance(text, int | float):
        if text < 0:
            raise ConfigError(f"{name}: must not be negative")
        return float(text)
    m = _DUR.match(text)
    if not m:
        raise ConfigError(f"{name}: cannot read {text!r} as a duration (e.g. 500ms, 10s, 5m)")
    seconds = float(m.group(1)) * _DUR_UNITS[(m.group(2) or "s").lower()]
    if not seconds <= 1e12:  # also inf (a 400-digit number): no clock holds it
        raise ConfigError(f"{name}: {text!r} is too long a duration")
    return seconds


def parse_size(text: str | int, *, name: str = "size") -> int:
    """``"32mb"``, ``"1g"``, ``"512k"``, ``"100"`` -> bytes (binary multiples)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(text)
    if not m:
        raise ConfigError(f"{name}: cannot read {text!r} as a size (e.g. 512kb, 32mb, 1gb)")
    unit = (m.group(2) or "").lower().rstrip("b").rstrip("i")
    n = float(m.group(1)) * _SIZE_UNITS[unit]
    if not n <= 1 << 60:  # also inf
        raise ConfigError(f"{name}: {text!r} is too large a size")
    return int(n)


def parse_percent(text: str | float, *, name: str = "percent") -> float:
    """``"25%"``, ``"25"`` or ``0.25`` (a fraction when <= 1 without %) -> fraction 0..1."""
    if isinstance(text, int | float):
        v = float(text)
        frac = v if v <= 1 else v / 100
    else:
        t = text.strip()
        try:
            frac = float(t[:-1]) / 100 if t.endswith("%") else float(t)
        except ValueError:
            raise ConfigError(f"{name}: cannot read {text!r} as a percentage (e.g. 25%)") from None
        if not t.endswith("%") and frac > 1:
            frac /= 100
    if not 0 <= frac <= 1:
        raise ConfigError(f"{name}: {text!r} is not between 0% and 100%")
    return frac


def load_config(path: str | os.PathLike[str] | None, *, schema: bool = True) -> dict[str, Any]:
    """Read a TOML config. ``None`` reads ``./replaygate.toml`` if it exists, else ``{}``.

    The document is checked against the one schema of ``replaygate.toml``
    (:mod:`replaygate._config_schema`): unknown sections and keys, wrong types and numbers out
    of range are a ConfigError naming the file and key, whichever command reads the file.
    ``schema=False`` reads any TOML (a ``--mask-config`` file holds ``[mask]`` keys at top
    level)."""
    if path is None:
        p = Path(DEFAULT_CONFIG_NAME)
        if not p.is_file():
            return {}
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config file not found", path=str(p))
    try:
        with p.open("rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", path=str(p)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"not UTF-8 text (byte {e.start}): TOML files are UTF-8", path=str(p)
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", path=str(p)) from None
    if schema:
        from ._config_schema import check_document

        check_document(doc, str(p))
    return doc


def section(cls: type[T], data: dict[str, Any] | None, *, name: str, **overrides: Any) -> T:
    """Build dataclass ``cls`` from a config section, then apply non-None ``overrides``.

    Unknown keys are an error naming ``[name].key`` so typos do not pass silently.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for k, v in (data or {}).items():
        key = k.replace("-", "_")
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"[{name}] unknown field {k!r} (known: {known})")
        values[key] = v
    for k, v in overrides.items():
        if v is not None:
            values[k] = v
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"[{name}] {e}") from None
