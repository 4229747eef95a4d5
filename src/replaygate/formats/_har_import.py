"""HAR import: rebuild HTTP/1.1 exchanges from HAR 1.2 entries (see :mod:`.har`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

import orjson

from ..errors import FormatError, InputError
from ..model import Exchange, Flag
from . import ReadOptions, note_cut
from ._har_entry import _BadEntry, _entry_to_exchange
from ._limits import too_large

__all__ = ["parse_har", "read"]

_BOMS = (b"\xef\xbb\xbf",)
_JSON_STARTS = tuple(bytes([c]) for c in b'{["-0123456789tfn')


def read(path: str, options: ReadOptions) -> Iterator[Exchange]:
    """Exchanges of a HAR file, in file order. Bad entries are skipped and counted."""
    try:
        with open(path, "rb") as f:
            data = _read_document(f, path, options.max_file_size)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    return parse_har(data, options, path=path)


def _read_document(f: IO[bytes], path: str, limit: int) -> bytes:
    """The whole document, at most ``limit`` bytes; bytes that cannot start a JSON object
    (``/dev/zero``, a binary file) fail at once instead of after ``limit`` bytes."""
    head = f.read(4096)
    first = head.lstrip(b" \t\r\n")[:3]
    if first and not first.startswith((*_JSON_STARTS, *_BOMS, b"\xff\xfe", b"\xfe\xff")):
        raise FormatError("not a HAR file: does not start with JSON", path=path, offset=0)
    rest = f.read(limit + 1 - len(head)) if len(head) <= limit else b""
    if len(head) + len(rest) > limit:
        raise too_large("HAR document", limit, path, 0, "--max-file-size")
    return head + rest


def _big_int(text: str) -> int | None:
    """JSON integers: beyond 4,300 digits Python refuses them, and no HAR field means one."""
    return int(text) if len(text) <= 30 else None


def _plain(data: bytes) -> bytes:
    for bom in _BOMS:
        if data.startswith(bom):
            data = data[len(bom) :]
    return data


def _load_json(data: bytes, path: str | None) -> Any:
    """The document, or raises ``_Invalid`` carrying the JSON error and the decoded text."""
    data = _plain(data)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            data = data.decode("utf-16").encode("utf-8", "surrogatepass")
        except UnicodeError:
            raise FormatError("not a HAR file: undecodable UTF-16", path=path) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    # invalid UTF-8 inside strings or huge numbers: be lenient, like browsers are
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text, parse_int=_big_int)
    except json.JSONDecodeError as e:
        raise _Invalid(e, text) from None
    except RecursionError:
        raise FormatError("not a HAR file: JSON nested too deeply", path=path) from None


class _Invalid(Exception):
    def __init__(self, err: json.JSONDecodeError, text: str) -> None:
        self.err = err
        self.text = text


_ENTRIES = re.compile(r'^\s*\{\s*"log"\s*:\s*\{.*?"entries"\s*:\s*\[', re.DOTALL)
_STRING_TO_END = re.compile(r'(?:[^"\\]|\\.)*\\?\Z', re.DOTALL)
_WS = " \t\r\n"
_NUMBER_PREFIX = re.compile(r"-?\d*(?:\.\d*)?(?:[eE][+-]?\d*)?")


def _cut_entries(text: str) -> tuple[list[Any], int, int] | None:
    """A HAR document cut while it was written (``proxy -o x.har`` killed): the complete
    entries of ``log.entries`` before the end of the text, the character offset of the cut
    and the number of entries lost in it (0 or 1). None when the text is not a cut HAR
    (the JSON error is in the middle, or the entries array is closed)."""
    m = _ENTRIES.match(text)
    if m is None:
        return None
    dec = json.JSONDecoder(parse_int=_big_int)
    pos, n = m.end(), len(text)
    entries: list[Any] = []
    while True:
        while pos < n and text[pos] in _WS:
            pos += 1
        if pos >= n:
            return entries, pos, 0  # cut between entries
        if text[pos] == "]":
            # the array is closed: only a cut inside the closing "]}}" is a cut document
            rest = text[pos:].translate({ord(c): None for c in _WS})
            return (entries, n, 0) if "]}}".startswith(rest) and rest != "]}}" else None
        try:
            obj, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            return (entries, pos, 1) if _runs_to_end(text, e) else None
        except RecursionError:
            return None
        entries.append(obj)
        pos = end
        while pos < n and text[pos] in _WS:
            pos += 1
        if pos < n and text[pos] == ",":
            pos += 1
        elif pos < n and text[pos] != "]":
            return None


def _runs_to_end(text: str, e: json.JSONDecodeError) -> bool:
    """Did parsing fail only because the text ends (not on a bad byte in the middle)?"""
    if e.msg.startswith("Unterminated string"):
        return _STRING_TO_END.match(text, e.pos + 1) is not None
    rest = text[e.pos :].rstrip(_WS)
    return (
        not rest
        or any(w.startswith(rest) for w in ("true", "false", "null"))
        or bool(_NUMBER_PREFIX.fullmatch(rest))
    )


def parse_har(
    data: bytes, options: ReadOptions | None = None, *, path: str | None = None
) -> Iterator[Exchange]:
    """Parse HAR bytes (the in-memory entry point; fuzzed). Raises FormatError eagerly when
    the bytes are not a HAR document; entries are converted lazily.

    A document cut while it was written (a recorder killed) is repaired: every complete entry
    is read, and the cut is counted (``truncated_record``) and reported with its offset."""
    opts = options or ReadOptions()
    try:
        doc = _load_json(data, path)
    except _Invalid as bad:
        cut = _cut_entries(bad.text)
        if cut is None:
            err = bad.err
            raise FormatError(
                f"not a HAR file: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}",
                path=path,
                offset=err.pos,
            ) from None
        entries, at, lost = cut
        offset = len(bad.text[:at].encode("utf-8", "surrogatepass")) + (
            len(data) - len(_plain(data))
        )
        note_cut(
            opts.counters,
            path or "<har>",
            offset,
            f"HAR document is cut after {len(entries)} complete entries"
            + (" (the entry being written is lost)" if lost else "")
            + "; every complete entry was read",
        )
        doc = {"log": {"entries": entries}}
    if not isinstance(doc, dict) or not isinstance(doc.get("log"), dict):
        raise FormatError('not a HAR file: no top-level "log" object', path=path)
    entries = doc["log"].get("entries")
    if not isinstance(entries, list):
        raise FormatError('not a HAR file: "log.entries" is not a list', path=path)
    return _entries(entries, opts, path or "<har>")


def _entries(entries: list[Any], opts: ReadOptions, path: str) -> Iterator[Exchange]:
    c = opts.counters
    bad = 0
    for i, entry in enumerate(entries):
        try:
            ex = _entry_to_exchange(entry, i, path)
        except _BadEntry as e:
            c.dropped["har_bad_entry"] += 1
            bad += 1
            if bad <= 5:
                c.notes[f"{path}: entry {i}: {e}"] += 1
            continue
        if Flag.NO_RESPONSE in ex.flags:
            c.notes["har: entries without response (status 0)"] += 1
        if ex.meta.get("har.body") == "omitted":
            c.notes["har: response bodies not recorded in the HAR"] += 1
        if "source_version" in ex.meta:
            c.notes[f"har: {ex.meta['source_version']} entries replayed as HTTP/1.1"] += 1
        yield ex
