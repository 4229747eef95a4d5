"""The ``.gor`` record layer, sans-I/O: one record's header fields, its encoding and the
streaming parser (bytes in, records out). File wrappers are in :mod:`.gor`, the mapping
between records and exchanges in :mod:`._gor_exchange`; the format itself is described in
:mod:`.gor`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, unquote

from ..errors import FormatError, TruncatedError
from ._limits import DEFAULT_MAX_RECORD, GOR_MAX_HEADER_LINE, human_size, too_large

SEPARATOR = "\n🐵🙈🙉\n".encode()
_WS = re.compile(r"\s")
# characters left as they are in rg.* values: readable addresses, no unquote on read
_SAFE = ":>[],."
# values made only of these come out of quote(v, safe=_SAFE) unchanged (its always-safe set
# plus _SAFE): most values (addresses, numbers, flags, hex ids) skip quote() entirely
_PLAIN = re.compile(r"[A-Za-z0-9_.~:>\[\],-]*").fullmatch
_FLAG = "--max-record-size"


@dataclass(slots=True)
class GorRecord:
    """One record: a message with GoReplay's header fields and our extra metadata."""

    type: int
    id: str
    ts_ns: int
    latency_ns: int | None
    payload: bytes
    extra: dict[str, str] = field(default_factory=dict)
    offset: int = 0


def encode_record(rec: GorRecord) -> bytes:
    """Serialize one record exactly as GoReplay writes it (plus our extras, if any).

    GoReplay writes ``-1`` for "no latency" (requests); an id must not contain whitespace
    (the header is split on spaces), so any is replaced by ``_``."""
    lat = -1 if rec.latency_ns is None or rec.latency_ns < 0 else rec.latency_ns
    head = f"{rec.type} {_record_id(rec.id)} {rec.ts_ns} {lat}"
    if rec.extra:
        head += "".join(f" rg.{k}={_quote(v)}" for k, v in rec.extra.items())
    return b"".join((head.encode("utf-8", "surrogatepass"), b"\n", rec.payload, SEPARATOR))


def _record_id(rid: str) -> str:
    if rid.isalnum() and rid.isascii():  # the usual hex id: nothing to replace
        return rid
    return rid if rid and not _WS.search(rid) else _WS.sub("_", rid) or "-"


@lru_cache(maxsize=4096)  # the same few values (addresses, upstream, flags) come back
def _quote(v: str) -> str:
    """Percent-encode a metadata value (never a space in the result)."""
    return v if _PLAIN(v) else quote(v, safe=_SAFE, errors="surrogatepass")


def _shape(line: bytes) -> str:
    """What an error may say about a header line: its size, never its bytes (a damaged file
    can put request bytes, with their secrets, where a header was expected)."""
    return f"{len(line)} bytes, expected 'TYPE ID TIMESTAMP [LATENCY]'"


def _parse_header(line: bytes, offset: int, path: str | None) -> GorRecord:
    parts = line.decode("utf-8", "replace").strip("\r").split(" ")
    if len(parts) < 3:
        raise FormatError(f"bad .gor record header ({_shape(line)})", path=path, offset=offset)
    try:
        typ = int(parts[0])
        ts = int(parts[2])
        lat = int(parts[3]) if len(parts) > 3 and not parts[3].startswith("rg.") else None
    except ValueError:
        raise FormatError(
            f"bad .gor record header ({_shape(line)})", path=path, offset=offset
        ) from None
    if not -(1 << 63) <= ts < 1 << 63 or (lat is not None and lat >= 1 << 63):
        raise FormatError(
            f"bad .gor record header ({_shape(line)}): number out of range",
            path=path,
            offset=offset,
        )
    if lat is not None and lat < 0:
        lat = None
    extra: dict[str, str] = {}
    for p in parts[3:]:
        if p.startswith("rg.") and "=" in p:
            k, v = p[3:].split("=", 1)
            extra[k] = unquote(v) if "%" in v else v
    return GorRecord(typ, parts[1], ts, lat, b"", extra, offset)


class GorRecordParser:
    """Sans-I/O reader: ``feed(bytes)`` returns the records completed so far.

    After the last ``feed``, ``close()`` returns the offset of trailing bytes that do not form
    a complete record (``None`` when the input ended cleanly).

    Linear in the input: a record that arrives in many pieces is appended to a buffer and
    searched only from where the last search ended, then copied once (``bytes_copied``
    counts the bytes copied, which tests use to check the work stays linear). A record
    longer than ``max_record`` bytes, or a header line longer than
    :data:`~._limits.GOR_MAX_HEADER_LINE`, is a FormatError naming the offset.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        on_bad: Callable[[int, str], None] | None = None,
        max_record: int = DEFAULT_MAX_RECORD,
    ) -> None:
        self._buf = bytearray()
        self._base = 0  # file offset of _buf[0]
        self._scan = 0  # where the next search for a separator in _buf starts
        self._header_ok = False  # the pending record's header line is known to be short
        self._path = path
        self._on_bad = on_bad
        self._max = max_record
        self.records = 0
        self.bytes_copied = 0

    def feed(self, data: bytes) -> list[GorRecord]:
        if self._buf:
            buf = self._buf
            buf += data
            self.bytes_copied += len(data)
            if buf.find(SEPARATOR, self._scan) < 0:
                self._scan = max(0, len(buf) - len(SEPARATOR) + 1)
                self._check_pending()
                return []
            data = bytes(buf)
            self.bytes_copied += len(data)
        elif not isinstance(data, bytes):
            data = bytes(data)
        out: list[GorRecord] = []
        start = 0
        find = data.find
        while True:
            sep = find(SEPARATOR, start)
            if sep < 0:
                break
            if sep - start > self._max:
                raise too_large("record", self._max, self._path, self._base + start, _FLAG)
            nl = find(b"\n", start, sep)
            if nl < 0:
                # A lone header with no payload is still a record (empty payload).
                header, payload = data[start:sep], b""
            else:
                header, payload = data[start:nl], data[nl + 1 : sep]
            if header.strip():
                try:
                    rec = _parse_header(header, self._base + start, self._path)
                except FormatError as e:
                    # GoReplay skips malformed records too; a file that starts with one is
                    # not a .gor file at all.
                    if self._on_bad is None or not self.records:
                        raise
                    self._on_bad(self._base + start, e.message)
                else:
                    rec.payload = payload
                    out.append(rec)
                    self.records += 1
            start = sep + len(SEPARATOR)
        self._buf = bytearray(data[start:]) if start < len(data) else bytearray()
        self.bytes_copied += len(self._buf)
        self._base += start
        self._scan = max(0, len(self._buf) - len(SEPARATOR) + 1)
        self._header_ok = False
        self._check_pending()
        return out

    def _check_pending(self) -> None:
        """The incomplete record in the buffer must stay within the limits."""
        n = len(self._buf)
        if n > self._max:
            raise too_large("record", self._max, self._path, self._base, _FLAG)
        if n > GOR_MAX_HEADER_LINE and not self._header_ok:
            if self._buf.find(b"\n", 0, GOR_MAX_HEADER_LINE) < 0:
                raise FormatError(
                    f"record header line is longer than {human_size(GOR_MAX_HEADER_LINE)}"
                    + ("" if self.records else ": not a .gor file"),
                    path=self._path,
                    offset=self._base,
                )
            self._header_ok = True

    def close(self) -> int | None:
        rest = bytes(self._buf)
        if rest.strip(b"\r\n") == b"":
            return None
        if not self.records and not _looks_like_header(rest):
            raise FormatError(
                "not a .gor file: no record separator and no record header found",
                path=self._path,
                offset=self._base,
            )
        return self._base


def _looks_like_header(data: bytes) -> bool:
    """Does ``data`` start like a GoReplay record header (``<1|2|3> <id> <digits>``)?"""
    line = data.split(b"\n", 1)[0]
    parts = line.split(b" ")
    return (
        len(parts) >= 2
        and parts[0] in (b"1", b"2", b"3")
        and (len(parts) == 2 or parts[2][:1].isdigit() or parts[2] == b"")
    )


def parse_bytes(data: bytes) -> list[GorRecord]:
    """Parse a whole in-memory ``.gor`` byte string (stream messages, middleware, tests)."""
    if type(data) is bytes and data.endswith(SEPARATOR):
        return _parse_whole(data)
    p = GorRecordParser()
    recs = p.feed(data)
    if p.close() is not None:
        raise TruncatedError("data ends inside a record", offset=p._base)
    return recs


def _parse_whole(data: bytes) -> list[GorRecord]:
    """:class:`GorRecordParser` on bytes that end with a separator, without its streaming
    bookkeeping (one message of a stream is decoded this way per exchange): the same records
    and the same errors (a property test in tests/formats/test_gor.py compares the two)."""
    out: list[GorRecord] = []
    start = 0
    for chunk in data.split(SEPARATOR)[:-1]:
        if len(chunk) > DEFAULT_MAX_RECORD:
            raise too_large("record", DEFAULT_MAX_RECORD, None, start, _FLAG)
        nl = chunk.find(b"\n")
        header, payload = (chunk, b"") if nl < 0 else (chunk[:nl], chunk[nl + 1 :])
        if header.strip():
            rec = _parse_header(header, start, None)
            rec.payload = payload
            out.append(rec)
        start += len(chunk) + len(SEPARATOR)
    return out
