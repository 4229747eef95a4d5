"""The one schema of ``replaygate.toml``: which sections exist, which keys each has, of what
type. :func:`~replaygate.config.load_config` checks every file against it, whichever command
reads it, so ``replay --config`` and ``compare --config`` accept and reject the same keys.

The keys and their types *are* the section dataclasses' fields and annotations (so a field
added to ``ReplayConfig`` is known at once, with its type); this module adds what annotations
cannot say: numbers that may also be written as strings (``"10s"``, ``"64MiB"``, ``"1%"``),
keys a command reads before building its dataclass (``[middleware] plugins``), and the lower
and upper bounds of numbers (the command-line flags use the same ones, as click ranges). A section's dataclass module is imported only when the file
has that section, so checking a file costs nothing for sections it does not use.

Errors are one line naming the key: ``[replay] concurrency: expected an integer, got 'abc'``,
``unknown section [gat] (did you mean [gate]?)``, ``[replay] unknown field 'speeed' (did you
mean speed?)``, ``unknown top-level key 'targets' (did you mean [replay] targets?)``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
import typing
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

__all__ = [
    "BOUNDS",
    "EXTRA_KEYS",
    "SECTION_CLASSES",
    "STRING_NUMBERS",
    "check_document",
    "float_range",
    "int_range",
    "schema",
]

# section -> "module:Class" of the dataclass built from it (= _config_reference.SECTIONS)
SECTION_CLASSES: dict[str, str] = {
    "filters": "replaygate.stages.filter:FilterConfig",
    "mask": "replaygate.stages.mask:MaskConfig",
    "rewrite": "replaygate.stages.rewrite:RewriteConfig",
    "middleware": "replaygate.stages.middleware:MiddlewareConfig",
    "replay": "replaygate.replay._config:ReplayConfig",
    "correlation": "replaygate.replay.correlation:CorrelationConfig",
    "compare": "replaygate.compare._config:CompareConfig",
    "gate": "replaygate.compare._config:GateConfig",
}

# keys a command reads from a section before building its dataclass: key -> kind
EXTRA_KEYS: dict[str, dict[str, str]] = {"middleware": {"plugins": "list[str]"}}

# numeric fields that may also be written as a string the command parses
STRING_NUMBERS: dict[str, dict[str, str]] = {
    "replay": {
        "duration": "a duration such as '10s'",
        "max_wait": "a duration such as '10s'",
        "connect_timeout": "a duration such as '10s'",
        "response_timeout": "a duration such as '10s'",
        "max_response_size": "a size such as '64MiB'",
        "max_header_size": "a size such as '1MiB'",
        "ramp": "stages such as '100:10s,500:30s'",
    },
    "gate": {
        k: "a percentage such as '1%'"
        for k in (
            "max_diff_rate",
            "max_endpoint_diff_rate",
            "max_new_5xx_rate",
            "max_error_rate",
            "max_baseline_status_change_rate",
        )
    },
}

# (section, key) -> (min, max) of a number; the flags have the same bounds
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("replay", "concurrency"): (1, 65_536),  # one socket each: beyond, file descriptors run out
    ("replay", "workers"): (1, 1024),
    ("replay", "speed"): (1e-6, 1e6),
    ("replay", "rate"): (1e-6, 1e7),
    ("replay", "redirects"): (0, 100),
    ("replay", "limit"): (0, 1 << 62),
    ("replay", "duration"): (0, 1e9),
    ("replay", "max_wait"): (0, 1e9),
    ("replay", "connect_timeout"): (1e-3, 1e6),
    ("replay", "response_timeout"): (1e-3, 1e6),
    ("replay", "max_response_size"): (1024, 1 << 40),
    ("replay", "max_header_size"): (1024, 1 << 30),
    ("replay", "h2_streams"): (1, (1 << 31) - 1),  # SETTINGS_MAX_CONCURRENT_STREAMS's range
    ("replay", "h2_connections"): (1, 65_536),
    ("middleware", "max_inflight"): (1, 1_000_000),
    # #12: every number has an upper bound (memory, time); lower bounds the classes check
    ("middleware", "max_inflight_bytes"): (1, 1 << 40),
    ("middleware", "settle_timeout"): (0, 1e9),
    ("middleware", "close_timeout"): (0, 1e9),
    ("middleware", "linger"): (0, 1e9),
    ("correlation", "min_length"): (0, 1 << 20),
    ("compare", "max_segment_values"): (0, 10_000_000),
    ("compare", "samples"): (0, 100_000),
    ("compare", "sample_bytes"): (0, 1 << 30),
    ("compare", "max_diffs_per_exchange"): (0, 10_000_000),
    ("compare", "max_endpoints"): (0, 10_000_000),
    ("compare", "noise_relative"): (0, 1e9),
    ("compare", "learn_min_pairs"): (0, 1 << 62),
    ("compare", "learn_window"): (0, 100_000_000),
    ("gate", "max_p99_ratio"): (0, 1e9),
    ("gate", "min_p99_delta_ms"): (0, 1e12),
    ("gate", "max_p99_ms"): (0, 1e12),
    ("gate", "latency_min_samples"): (0, 1 << 62),
    ("gate", "min_replayed"): (0, 1 << 62),
}


def int_range(section: str, key: str) -> Any:
    """A click type for the flag of ``[section] key``, with the schema's bounds."""
    import click

    lo, hi = BOUNDS[(section, key)]
    return click.IntRange(int(lo), int(hi))


def float_range(section: str, key: str) -> Any:
    """A click type for the flag of ``[section] key``, with the schema's bounds."""
    import click

    lo, hi = BOUNDS[(section, key)]
    return click.FloatRange(lo, hi)


def _load(ref: str) -> type:
    mod, _, name = ref.partition(":")
    cls = getattr(importlib.import_module(mod), name)
    assert isinstance(cls, type)
    return cls


def schema(name: str) -> dict[str, Any]:
    """Key -> type (an annotation, or a kind string from EXTRA_KEYS) of section ``name``."""
    cls = _load(SECTION_CLASSES[name])
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    out.update(EXTRA_KEYS.get(name, {}))
    return out


def _err(where: str | None, message: str) -> ConfigError:
    return ConfigError(message, path=where)


def _hint(word: str, known: list[str], pre: str = "", post: str = "") -> str:
    close = difflib.get_close_matches(word.replace("-", "_"), known, n=1, cutoff=0.6)
    return f" (did you mean {pre}{close[0]}{post}?)" if close else ""


def _describe(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def check_document(doc: Mapping[str, Any], where: str | None) -> None:
    """Raise ConfigError (one line naming the file and key) unless ``doc`` follows the schema."""
    for name, data in doc.items():
        if name not in SECTION_CLASSES:
            _unknown_top_level(name, data, where)
        if not isinstance(data, Mapping):
            raise _err(
                where,
                f"[{name}]: must be a table ([{name}] followed by key = value lines), "
                f"got {_describe(data)}",
            )
        keys = schema(name)
        for key, value in data.items():
            k = key.replace("-", "_")
            if k not in keys:
                raise _err(
                    where,
                    f"[{name}] unknown field {key!r}{_hint(k, sorted(keys))}"
                    f" (known: {', '.join(sorted(keys))})",
                )
            _check_value(name, k, key, value, keys[k], where)


def _unknown_top_level(name: str, data: Any, where: str | None) -> None:
    sections = sorted(SECTION_CLASSES)
    if isinstance(data, Mapping):
        raise _err(
            where,
            f"unknown section [{name}]{_hint(name, sections, '[', ']')}"
            f" (known: {', '.join(f'[{s}]' for s in sections)})",
        )
    owners = [s for s in sections if name.replace("-", "_") in schema(s)]
    hint = f" (did you mean [{owners[0]}] {name}?)" if owners else _hint(name, sections)
    raise _err(where, f"unknown top-level key {name!r}{hint}: keys go in a [section]")


_KIND_WORDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a table",
}


def _check_value(section: str, k: str, key: str, value: Any, tp: Any, where: str | None) -> None:
    stringy = STRING_NUMBERS.get(section, {}).get(k)
    if isinstance(value, str) and stringy is not None:
        return  # parsed (and checked) by the command
    if not _matches(value, tp):
        want = _words(tp)
        if stringy is not None:
            want += f" or {stringy}"
        raise _err(where, f"[{section}] {key}: expected {want}, got {_describe(value)}")
    lo_hi = BOUNDS.get((section, k))
    if lo_hi is not None and isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = lo_hi
        if not lo <= value <= hi:
            raise _err(
                where, f"[{section}] {key}: {value!r} is out of range ({_num(lo)} to {_num(hi)})"
            )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _matches(v: Any, tp: Any) -> bool:
    if isinstance(tp, str):  # a kind from EXTRA_KEYS
        return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(v, a) for a in args)
    if tp is type(None):
        return v is None
    if tp is bool:
        return isinstance(v, bool)
    if tp is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if tp is float:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if tp is str:
        return isinstance(v, str)
    if origin is list:
        if isinstance(v, str) and args and args[0] is str:
            return True  # a single string where a list of strings is expected
        return isinstance(v, list) and (not args or all(_matches(x, args[0]) for x in v))
    if origin is tuple:
        return (
            isinstance(v, list | tuple)
            and len(v) == len(args)
            and all(_matches(x, a) for x, a in zip(v, args, strict=True))
        )
    if origin is dict:
        return isinstance(v, Mapping) and all(
            isinstance(k, str) and _matches(x, args[1]) for k, x in v.items()
        )
    if isinstance(tp, type):
        return isinstance(v, tp)
    return True


def _words(tp: Any) -> str:
    if isinstance(tp, str):
        return "a string or a list of strings"
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_words(a) for a in args))
    if origin is list:
        inner = _words(args[0]) if args else "values"
        return "a list" + (f" of {inner.removeprefix('a ').removeprefix('an ')}s" if args else "")
    if origin is dict:
        return "a table"
    if origin is tuple:
        return "a pair"
    return _KIND_WORDS.get(tp, getattr(tp, "__name__", str(tp)))
