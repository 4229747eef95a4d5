"""File formats, chosen by file name.

Every reader is a function ``read(path, options) -> Iterator[Exchange]`` and every writer a
class ``Writer(path, options)`` that is a :class:`~replaygate.pipeline.Sink`. This registry maps
extensions to them lazily, so importing replaygate does not import every format.

Formats that live outside this package are plugins: :func:`register_format` adds one (a name,
its file extensions or URL prefixes, and ``"module:attribute"`` references loaded on first
use), and packages may ship one through the ``replaygate.formats`` entry-point group (the
entry point names a :class:`FormatPlugin`). NATS JetStream ``nats://`` streams are registered
this way by the package root, so this package never imports :mod:`replaygate.jetstream`.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from ..errors import TruncatedError, UnknownFormatError
from ..model import Counters, Exchange
from ..pipeline import Sink
from ._limits import DEFAULT_MAX_FILE, DEFAULT_MAX_RECORD

__all__ = [
    "ENTRY_POINT_GROUP",
    "FormatPlugin",
    "ReadOptions",
    "WriteOptions",
    "format_of",
    "note_cut",
    "open_reader",
    "open_writer",
    "raise_cuts",
    "register_format",
]

ENTRY_POINT_GROUP = "replaygate.formats"


@dataclass
class ReadOptions:
    """Options common to readers; format-specific ones go in ``extra``.

    ``max_record_size`` bounds one record (a ``.gor`` record, a ``.jsonl`` or log line, a HAR
    entry) and ``max_file_size`` a document read at once (HAR): see :mod:`._limits`."""

    log_format: str | None = None  # access logs: nginx | apache | alb | elb
    counters: Counters = field(default_factory=Counters)
    max_record_size: int = DEFAULT_MAX_RECORD
    max_file_size: int = DEFAULT_MAX_FILE
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class WriteOptions:
    append: bool = False
    max_bytes: int | None = None
    max_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# extension -> format name; longest match wins
_EXTENSIONS: dict[str, str] = {
    ".gor": "gor",
    ".gor.gz": "gor",
    ".gor.zst": "gor",
    ".pcap": "pcap",
    ".pcap.gz": "pcap",
    ".cap": "pcap",
    ".pcapng": "pcap",
    ".pcapng.gz": "pcap",
    ".har": "har",
    ".mitm": "mitm",
    ".flows": "mitm",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
    ".log": "accesslog",
    ".log.gz": "accesslog",
}

_ROTATED_LOG = re.compile(r"\.log\.\d+(\.gz)?$")

# format name -> (reader "module:function", writer "module:Class")
_FORMATS: dict[str, tuple[str | None, str | None]] = {
    "gor": ("replaygate.formats._gor_io:read", "replaygate.formats._gor_io:Writer"),
    "pcap": ("replaygate.formats.pcap:read", None),
    "har": ("replaygate.formats.har:read", "replaygate.formats.har:Writer"),
    "mitm": ("replaygate.formats.mitm:read", None),
    "jsonl": ("replaygate.formats.jsonl:read", "replaygate.formats.jsonl:Writer"),
    "accesslog": ("replaygate.formats.accesslog:read", None),
}


# URL prefix -> format name (streams rather than files, e.g. ``nats://``)
_PREFIXES: dict[str, str] = {}


@dataclass(frozen=True)
class FormatPlugin:
    """A format that lives outside this package.

    ``reader`` is a ``"module:function"`` reference to ``read(path, options)`` and ``writer``
    one to a ``Writer(path, options)`` sink class (either may be ``None``); they are imported
    on first use. A path is this format's when it ends with one of ``extensions`` or starts
    with one of ``prefixes`` (URLs such as ``nats://``)."""

    name: str
    reader: str | None = None
    writer: str | None = None
    extensions: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


def register_format(plugin: FormatPlugin) -> None:
    """Make ``open_reader``/``open_writer`` (and so every command) accept a plugin's format."""
    _FORMATS[plugin.name] = (plugin.reader, plugin.writer)
    for ext in plugin.extensions:
        _EXTENSIONS[ext.lower()] = plugin.name
    for prefix in plugin.prefixes:
        _PREFIXES[prefix.lower()] = plugin.name


_entry_points_loaded = False


def _load_entry_points() -> None:
    """Register the formats that installed packages declare, once, on first need."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    import importlib.metadata

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        plugin = ep.load()
        if isinstance(plugin, FormatPlugin) and plugin.name not in _FORMATS:
            register_format(plugin)


def format_of(path: str | os.PathLike[str]) -> str:
    """The format name for a file name; raises UnknownFormatError naming the file."""
    p = os.fspath(path).lower()
    _load_entry_points()
    for prefix, name in _PREFIXES.items():
        if p.startswith(prefix):
            return name
    best = ""
    for ext in _EXTENSIONS:
        if p.endswith(ext) and len(ext) > len(best):
            best = ext
    if not best and _ROTATED_LOG.search(p):  # logrotate names: access.log.1, access.log.2.gz
        return "accesslog"
    if not best:
        known = ", ".join(sorted(_EXTENSIONS))
        raise UnknownFormatError(f"unknown file extension (known: {known})", path=os.fspath(path))
    return _EXTENSIONS[best]


def _load(ref: str) -> Any:
    mod, _, name = ref.partition(":")
    return getattr(importlib.import_module(mod), name)


def open_reader(
    path: str | os.PathLike[str], options: ReadOptions | None = None
) -> Iterator[Exchange]:
    """Iterate the exchanges of a file, whatever its (supported) format."""
    fmt = format_of(path)
    reader_ref, _ = _FORMATS[fmt]
    if reader_ref is None:
        raise UnknownFormatError(f"{fmt} files can be written but not read", path=os.fspath(path))
    reader = cast(Callable[[str, ReadOptions], Iterator[Exchange]], _load(reader_ref))
    return reader(os.fspath(path), options or ReadOptions())


def open_writer(path: str | os.PathLike[str], options: WriteOptions | None = None) -> Sink:
    """A sink that writes exchanges to ``path`` in the format its extension names."""
    fmt = format_of(path)
    _, writer_ref = _FORMATS[fmt]
    if writer_ref is None:
        raise UnknownFormatError(
            f"{fmt} files can be read but not written (write .gor, .har or .jsonl)",
            path=os.fspath(path),
        )
    cls = _load(writer_ref)
    return cast(Sink, cls(os.fspath(path), options or WriteOptions()))


def note_cut(
    counters: Counters,
    path: str,
    offset: int | None,
    msg: str = "file is cut inside a record; every complete record before it was read",
) -> None:
    """Count an input cut short (``dropped["truncated_record"]``) and remember where, so the
    command can report it once it has used everything before the cut."""
    counters.dropped["truncated_record"] += 1
    where = f" (offset {offset})" if offset is not None else ""
    counters.notes[f"{path}{where}: {msg}"] += 1
    counters.cuts.append((path, offset, msg))


def raise_cuts(counters: Counters) -> None:
    """After a command has written/used what was readable: a cut input is one line, exit 2
    (the same for every format: .pcap, .gor, .jsonl, .har, .log, compressed or not)."""
    if not counters.cuts:
        return
    path, offset, msg = counters.cuts[0]
    more = len(counters.cuts) - 1
    if more:
        msg += f" (and {more} more cut input{'s' if more > 1 else ''}: see the notes)"
    raise TruncatedError(msg, path=path, offset=offset)
