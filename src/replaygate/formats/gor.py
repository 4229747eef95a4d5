"""GoReplay's ``.gor`` file format: replaygate's own recording format.

A file is a sequence of records::

    <type> <id> <timestamp_ns> <latency_ns>[ <extra>...]\\n
    <raw HTTP bytes>
    \\n🐵🙈🙉\\n

``type`` is 1 (request), 2 (original response) or 3 (replayed response). Old GoReplay files
have only three header fields (no latency). GoReplay splits the header line on spaces and
reads the first fields only, so replaygate carries its own metadata as extra ``rg.<key>=<value>``
fields (values percent-encoded, never containing a space); GoReplay ignores them and
replaygate reads them back. Version of this metadata: ``rg.v=1``; older versions are upgraded
on reading by the converters in :mod:`._gor_compat`.

Like GoReplay (``input_file.go``: split on spaces, at least three fields, ``meta[2]`` is the
timestamp, ``-1`` is "no latency") a reader must ignore fields it does not know; the test
suite checks our files against a transcription of that reader. Latencies differ by writer:
see :func:`_exchange_from_records`.

Reading is sans-I/O (:class:`GorRecordParser`: bytes in, records out) with thin file
wrappers around it. A file cut short reads back every complete record; the cut is reported
with its offset through ``on_truncated`` (or raised as :class:`TruncatedError` in strict mode).
A malformed record after good ones is skipped through ``on_bad``; a file that does not start
like a ``.gor`` file (or a ``.gz``/``.zst`` name on bytes that are not) is a FormatError.
"""

from __future__ import annotations

import gzip
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast
from urllib.parse import quote, unquote

from ..errors import FormatError, InputError, TruncatedError
from ..model import ConnectionId, Exchange, Flag, HTTPMessage, Request, Response
from ._gor_compat import META_VERSION as _META_VERSION
from ._gor_compat import upgrade
from ._limits import DEFAULT_MAX_RECORD, GOR_MAX_HEADER_LINE, human_size, too_large, writing

__all__ = [
    "SEPARATOR",
    "GorRecord",
    "GorRecordParser",
    "GorWriter",
    "encode_record",
    "exchange_bytes",
    "exchange_records",
    "open_binary",
    "read_exchanges",
    "read_records",
]

SEPARATOR = "\n🐵🙈🙉\n".encode()
_WS = re.compile(r"\s")
# characters left as they are in rg.* values: readable addresses, no unquote on read
_SAFE = ":>[],."
# values made only of these come out of quote(v, safe=_SAFE) unchanged (its always-safe set
# plus _SAFE): most values (addresses, numbers, flags, hex ids) skip quote() entirely
_PLAIN = re.compile(r"[A-Za-z0-9_.~:>\[\],-]*").fullmatch
META_VERSION = str(_META_VERSION)
_CHUNK = 1 << 20
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


def open_binary(path: str | os.PathLike[str], mode: str = "rb") -> BinaryIO:
    """Open a file, transparently (de)compressing by extension: ``.gz`` gzip, ``.zst`` zstd."""
    p = os.fspath(path)
    try:
        if p.endswith(".gz"):
            if "r" in mode:
                return gzip.open(p, mode)  # type: ignore[return-value]
            # level 6 like gzip(1)'s default; 9 costs twice the time for ~1% smaller files
            return gzip.open(p, mode, compresslevel=6)  # type: ignore[return-value]
        if p.endswith(".zst"):
            import zstandard

            raw = open(p, mode)  # noqa: SIM115 - closed by the zstd stream
            if "r" in mode:
                from ._zstd import ZstdReader

                return cast(BinaryIO, ZstdReader(raw))  # reports a stream cut inside a frame
            return zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=True)
        return open(p, mode)  # type: ignore[return-value]
    except FileNotFoundError:
        raise InputError("no such file", path=p) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=p) from None
    except PermissionError:
        raise InputError("permission denied", path=p) from None


def read_records(
    path: str | os.PathLike[str],
    *,
    on_truncated: Callable[[int], None] | None = None,
    strict: bool = False,
    on_bad: Callable[[int, str], None] | None = None,
    max_record: int = DEFAULT_MAX_RECORD,
) -> Iterator[GorRecord]:
    """Yield every complete record of a ``.gor`` file (optionally compressed).

    A malformed record header after the first good record is passed to ``on_bad(offset,
    reason)`` and skipped (raised as FormatError when ``on_bad`` is None). A record longer
    than ``max_record`` bytes is a FormatError."""
    p = os.fspath(path)
    parser = GorRecordParser(p, on_bad=on_bad, max_record=max_record)
    with open_binary(p) as f:
        # read1: a damaged compressed stream still yields everything before the damage
        read = getattr(f, "read1", f.read)
        try:
            while True:
                chunk = read(_CHUNK)
                if not chunk:
                    break
                yield from parser.feed(chunk)
        except (EOFError, OSError) as e:  # gzip/zstd stream cut short or not compressed
            if isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError):
                raise
            _damaged(p, parser, e, strict, on_truncated)
            return
        except Exception as e:
            if type(e).__name__ != "ZstdError":
                raise
            _damaged(p, parser, e, strict, on_truncated)
            return
    cut = parser.close()
    if cut is not None:
        if strict:
            raise TruncatedError(
                "file ends inside a record (no separator); earlier records were read",
                path=p,
                offset=cut,
            )
        if on_truncated is not None:
            on_truncated(cut)


def _damaged(
    path: str,
    parser: GorRecordParser,
    err: BaseException,
    strict: bool,
    on_truncated: Callable[[int], None] | None,
) -> None:
    """A compressed stream failed: not compressed at all (nothing read yet), or cut/damaged
    after ``parser._base`` bytes of uncompressed data (everything before was yielded)."""
    kind = "zstd" if path.endswith(".zst") else "gzip"
    nothing = not parser.records and not parser._base and not parser._buf
    if nothing and not isinstance(err, EOFError):
        raise FormatError(f"not a {kind} stream: {err}", path=path) from None
    if strict:
        raise TruncatedError(f"{kind} stream is cut or damaged: {err}", path=path) from None
    if on_truncated is not None:
        on_truncated(parser._base)


def _int_field(extra: dict[str, str], key: str) -> int:
    """An integer metadata field; 0 when absent or not a plain decimal number."""
    v = extra.get(key, "")
    return int(v) if v.isascii() and v.isdigit() else 0


_CONNS: dict[str, ConnectionId | None] = {}


def _conn(text: str) -> ConnectionId | None:
    """ConnectionId.parse, memoised: keep-alive connections carry many exchanges."""
    c = _CONNS.get(text, False)
    if c is False:
        try:
            c = ConnectionId.parse(text)
        except ValueError:
            c = None
        if len(_CONNS) > 10_000:
            _CONNS.clear()
        _CONNS[text] = c
    assert c is None or isinstance(c, ConnectionId)
    return c


def _head(rec: GorRecord) -> int | None:
    """Responses that do not start with a status line (HTTP/0.9 replies) have no head."""
    return None if rec.payload[:5] == b"HTTP/" else 0


def _exchange_from_records(req: GorRecord, others: list[GorRecord]) -> Exchange:
    """Build an exchange from its records.

    Latencies mean different things depending on who wrote the file: replaygate and GoReplay
    before 1.3 write ``-1`` for requests and, for responses, request start -> response end;
    GoReplay 1.3+ (``input_raw.go``) writes for *every* message its own duration
    (``End - Start``). A request with a latency and without our ``rg.v`` marks the latter.
    """
    e = req.extra
    version = e.get("v")
    if version is not None and version != META_VERSION:
        upgrade(e, [r.extra for r in others])
    per_message = req.latency_ns is not None and version is None
    last = _int_field(e, "tl") if e else 0
    if not last and per_message and req.latency_ns is not None:
        last = req.ts_ns + req.latency_ns
    request = Request(req.payload, ts_first_ns=req.ts_ns, ts_last_ns=last or req.ts_ns)
    ex = Exchange(id=req.id, request=request)
    if e:  # replaygate's metadata (GoReplay's own files have none)
        if "conn" in e:
            ex.conn = _conn(e["conn"])
        if "sess" in e:
            ex.session = e["sess"]
        ex.seq = _int_field(e, "seq")
        if e.get("flags"):
            for f in e["flags"].split(","):
                try:
                    ex.flags.add(Flag(f))
                except ValueError:
                    ex.meta.setdefault("unknown_flags", "")
                    ex.meta["unknown_flags"] += f + ","
        if len(e) > 1:  # only rg.v: nothing more to look at
            for k, v in e.items():
                if k.startswith("m."):
                    ex.meta[k[2:]] = v
    for r in others:
        if r.type == 2:
            # GoReplay stores response start time and latency; last byte = start + latency
            # when we wrote it, GoReplay's own files have latency = request->response time.
            first = _int_field(r.extra, "tf") or r.ts_ns
            if r.latency_ns is None:
                last = r.ts_ns
            elif per_message or req.ts_ns + r.latency_ns < first:
                last = first + r.latency_ns  # the response's own duration
            else:
                last = req.ts_ns + r.latency_ns
            resp = Response(r.payload, ts_first_ns=first, ts_last_ns=last, head_len=_head(r))
            if r.extra.get("interim") == "1":
                ex.interim.append(resp)
            else:
                ex.response = resp
        elif r.type == 3:
            ex.replayed = Response(
                r.payload, ts_first_ns=r.ts_ns, ts_last_ns=r.ts_ns, head_len=_head(r)
            )
            ex.replay_ts_ns = r.ts_ns
            ex.replay_latency_ns = r.latency_ns
            if r.extra.get("err"):
                ex.replay_error = r.extra["err"]
                if not r.payload:
                    ex.replayed = None
    return ex


def exchange_records(ex: Exchange) -> list[GorRecord]:
    """The records that represent ``ex`` in a ``.gor`` file."""
    extra: dict[str, str] = {"v": META_VERSION}
    if ex.conn is not None:
        extra["conn"] = str(ex.conn)
    if ex.session is not None:
        extra["sess"] = ex.session
    if ex.seq:
        extra["seq"] = str(ex.seq)
    if ex.flags:
        extra["flags"] = ",".join(sorted(str(f) for f in ex.flags))
    if ex.request.ts_last_ns and ex.request.ts_last_ns != ex.request.ts_first_ns:
        extra["tl"] = str(ex.request.ts_last_ns)
    for k, v in ex.meta.items():
        extra["m." + k] = v
    recs = [GorRecord(1, ex.id, ex.request.ts_first_ns, None, ex.request.raw, extra)]
    for im in ex.interim:
        recs.append(
            GorRecord(2, ex.id, im.ts_first_ns, _lat(ex.request, im), im.raw, {"interim": "1"})
        )
    if ex.response is not None:
        r = ex.response
        rx = {"tf": str(r.ts_first_ns)} if r.ts_first_ns else {}
        recs.append(
            GorRecord(2, ex.id, r.ts_first_ns or r.ts_last_ns, _lat(ex.request, r), r.raw, rx)
        )
    if ex.replayed is not None or ex.replay_error is not None:
        payload = ex.replayed.raw if ex.replayed is not None else b""
        ts = ex.replay_ts_ns or (ex.replayed.ts_first_ns if ex.replayed is not None else 0)
        rx3 = {"err": ex.replay_error} if ex.replay_error else {}
        recs.append(GorRecord(3, ex.id, ts, ex.replay_latency_ns, payload, rx3))
    return recs


def exchange_bytes(ex: Exchange, *, metadata: bool = True) -> bytes:
    """``ex`` as ``.gor`` bytes: exactly ``b"".join(map(encode_record, exchange_records(ex)))``
    (records without their extras when ``metadata`` is false), built in one pass."""
    return b"".join(_exchange_parts(ex, metadata))


def _exchange_parts(ex: Exchange, metadata: bool) -> list[bytes]:
    """Header line, payload and separator of each record of ``ex``, in order (3 per record).

    The same records and fields as :func:`exchange_records` + :func:`encode_record`, without
    building a :class:`GorRecord` and an extras dict per record; the golden and property
    tests in ``tests/formats/test_gor.py`` hold the two paths to the same bytes."""
    rid = _record_id(ex.id)
    req = ex.request
    head = f"1 {rid} {req.ts_first_ns} -1"
    if metadata:
        head += " rg.v=" + META_VERSION
        if ex.conn is not None:
            head += " rg.conn=" + _quote(str(ex.conn))
        if ex.session is not None:
            head += " rg.sess=" + _quote(ex.session)
        if ex.seq:
            head += f" rg.seq={ex.seq}"
        if ex.flags:
            head += " rg.flags=" + _quote(",".join(sorted(str(f) for f in ex.flags)))
        if req.ts_last_ns and req.ts_last_ns != req.ts_first_ns:
            head += f" rg.tl={req.ts_last_ns}"
        for k, v in ex.meta.items():
            head += f" rg.m.{k}={_quote(v)}"
    parts = [(head + "\n").encode("utf-8", "surrogatepass"), req.raw, SEPARATOR]
    for im in ex.interim:
        lat = _lat(req, im)
        head = f"2 {rid} {im.ts_first_ns} {-1 if lat is None else lat}"
        head += " rg.interim=1\n" if metadata else "\n"
        parts += (head.encode("utf-8", "surrogatepass"), im.raw, SEPARATOR)
    r = ex.response
    if r is not None:
        lat = _lat(req, r)
        head = f"2 {rid} {r.ts_first_ns or r.ts_last_ns} {-1 if lat is None else lat}"
        if metadata and r.ts_first_ns:
            head += f" rg.tf={r.ts_first_ns}"
        parts += ((head + "\n").encode("utf-8", "surrogatepass"), r.raw, SEPARATOR)
    if ex.replayed is not None or ex.replay_error is not None:
        rp = ex.replayed
        ts = ex.replay_ts_ns or (rp.ts_first_ns if rp is not None else 0)
        lat = ex.replay_latency_ns
        head = f"3 {rid} {ts} {-1 if lat is None or lat < 0 else lat}"
        if metadata and ex.replay_error:
            head += " rg.err=" + _quote(ex.replay_error)
        parts += (
            (head + "\n").encode("utf-8", "surrogatepass"),
            rp.raw if rp is not None else b"",
            SEPARATOR,
        )
    return parts


def _lat(req: HTTPMessage, resp: HTTPMessage) -> int | None:
    if not req.ts_first_ns or not resp.ts_last_ns:
        return None
    lat = resp.ts_last_ns - req.ts_first_ns
    return lat if lat >= 0 else None


def read_exchanges(
    path: str | os.PathLike[str],
    *,
    window: int = 2_000,
    on_truncated: Callable[[int], None] | None = None,
    on_orphan: Callable[[GorRecord], None] | None = None,
    on_bad: Callable[[int, str], None] | None = None,
    max_record: int = DEFAULT_MAX_RECORD,
) -> Iterator[Exchange]:
    """Group records by id into exchanges, in the order their requests appear.

    Responses may follow their request at any distance; an exchange is released once it holds
    its original response (and its replayed one, if the file has shown any), or when more than
    ``window`` newer exchanges are pending (bounded memory), or at the end of the file. Responses whose request never
    appears are passed to ``on_orphan``.
    """
    # FIFO of exchanges being assembled, keyed by arrival number (ids can repeat when files
    # are concatenated); ``latest`` maps an id to its newest pending entry.
    pending: OrderedDict[int, list[Any]] = OrderedDict()
    latest: dict[str, int] = {}
    seen_types: set[int] = set()
    counter = 0

    def ready(item: list[Any]) -> bool:
        req, others = item
        if req is None or not others:  # no response yet: never ready (see below)
            return False
        have = {r.type for r in others if r.extra.get("interim") != "1"}
        # A response may arrive at any distance, so a request alone is never "ready"; it is
        # released by the window (request-only files) or at the end of the file. Whether the
        # file holds replayed (type 3) records is only known once one was seen: until a later
        # exchange shows up, the front one waits for its type 3 too.
        if 2 not in have:
            return False
        return 3 in have or (3 not in seen_types and len(pending) > 1)

    def pop_front(key: int, item: list[Any]) -> Exchange | None:
        """Take the front exchange out: built, or None for orphan responses (reported)."""
        del pending[key]
        req, others = item
        rid = req.id if req is not None else others[0].id
        if latest.get(rid) == key:
            del latest[rid]
        if req is None:
            for o in others:
                if on_orphan is not None:
                    on_orphan(o)
            return None
        return _exchange_from_records(req, others)

    for rec in read_records(path, on_truncated=on_truncated, on_bad=on_bad, max_record=max_record):
        seen_types.add(rec.type)
        key = latest.get(rec.id)
        item = pending.get(key) if key is not None else None
        if rec.type == 1 and item is not None and item[0] is None:
            item[0] = rec  # its responses came first
        elif rec.type == 1 or item is None:
            counter += 1
            key = counter
            latest[rec.id] = key
            pending[key] = [rec, []] if rec.type == 1 else [None, [rec]]
        else:
            item[1].append(rec)
        # Only a change to the oldest pending exchange (or the window filling up) can let
        # exchanges out, so most records cost no scan at all.
        if len(pending) > window or next(iter(pending)) == key:
            while pending:  # release the front while it is ready or the window is full
                front = next(iter(pending))
                item = pending[front]
                if len(pending) <= window and not ready(item):
                    break
                ex = pop_front(front, item)
                if ex is not None:
                    yield ex
    while pending:
        front = next(iter(pending))
        ex = pop_front(front, pending[front])
        if ex is not None:
            yield ex


class GorWriter:
    """A sink writing exchanges to a ``.gor`` file (compressed by extension).

    With ``max_bytes`` or ``max_seconds`` the file rotates: ``name.gor`` becomes
    ``name_0.gor``, ``name_1.gor``, ... (GoReplay's naming), each a complete, readable file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        append: bool = False,
        max_bytes: int | None = None,
        max_seconds: float | None = None,
        with_metadata: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.path = os.fspath(path)
        self._append = append
        self._max_bytes = max_bytes
        self._max_seconds = max_seconds
        self._meta = with_metadata
        self._clock = clock or time.monotonic
        self._index = 0
        self._f: BinaryIO | None = None
        self._written = 0
        self._opened_at = 0.0
        self.files: list[str] = []
        self.records = 0

    def _name(self) -> str:
        if self._max_bytes is None and self._max_seconds is None:
            return self.path
        base, ext = _split_ext(self.path)
        return f"{base}_{self._index}{ext}"

    def _open(self) -> BinaryIO:
        name = self._name()
        d = os.path.dirname(name)
        if d and not os.path.isdir(d):
            raise InputError("directory does not exist", path=d)
        try:
            f = open_binary(name, "ab" if self._append else "wb")
        except InputError:
            raise
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror}", path=name) from None
        self.files.append(name)
        self._written = 0
        self._opened_at = self._clock()
        return f

    def _rotate_if_needed(self) -> None:
        if self._f is None:
            self._f = self._open()
            return
        if (self._max_bytes is not None and self._written >= self._max_bytes) or (
            self._max_seconds is not None and self._clock() - self._opened_at >= self._max_seconds
        ):
            self._f.close()
            self._index += 1
            self._f = self._open()

    def write_record(self, rec: GorRecord) -> None:
        self._rotate_if_needed()
        assert self._f is not None
        if not self._meta:
            rec = GorRecord(rec.type, rec.id, rec.ts_ns, rec.latency_ns, rec.payload)
        data = encode_record(rec)
        with writing(self._f_name):
            self._f.write(data)
        self._written += len(data)
        self.records += 1

    def write(self, ex: Exchange) -> None:
        parts = _exchange_parts(ex, self._meta)
        if self._max_bytes is None and self._max_seconds is None:
            if self._f is None:
                self._f = self._open()
            data = b"".join(parts)
            self._f.write(data)
            self._written += len(data)
            self.records += len(parts) // 3
            return
        for i in range(0, len(parts), 3):  # a rotating file may switch between records
            self._rotate_if_needed()
            assert self._f is not None
            data = b"".join(parts[i : i + 3])
            self._f.write(data)
            self._written += len(data)
            self.records += 1

    @property
    def _f_name(self) -> str:
        return self.files[-1] if self.files else self.path

    def flush(self) -> None:
        if self._f is not None:
            with writing(self._f_name):
                self._f.flush()

    def close(self) -> None:
        if self._f is None:
            self._f = self._open()  # an empty run still leaves an (empty) file
        with writing(self._f_name):
            self._f.close()


def _split_ext(path: str) -> tuple[str, str]:
    for ext in (".gor.gz", ".gor.zst", ".gz", ".zst"):
        if path.endswith(ext):
            return path[: -len(ext)], ext
    base, ext = os.path.splitext(path)
    return base, ext


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


def write_bytes(exchanges: list[Exchange]) -> bytes:
    """Serialize exchanges to ``.gor`` bytes in memory."""
    return b"".join(exchange_bytes(ex) for ex in exchanges)
