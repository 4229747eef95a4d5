"""Sans-I/O passive HTTP/2 parser for one TCP connection, both directions.

Feed it the reassembled (or decrypted) bytes of each direction, as :class:`HTTP1StreamParser`
is fed; it returns one :class:`~replaygate.model.Exchange` per stream once both directions
of the stream have ended (END_STREAM or RST_STREAM), in the order streams finish. Messages
are written as :mod:`replaygate.protocol.h2msg` describes.

Design rules:

* **Frames** (RFC 9113 §6): DATA, HEADERS + CONTINUATION, PRIORITY, RST_STREAM, SETTINGS,
  PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE; padding stripped; unknown types skipped (the
  spec's extension rule). Flow control is the endpoints' business: a passive parser only
  reads what was sent.
* **HPACK** is state carried across the whole connection, one decoder per direction (the
  maintained ``hpack`` library). ``SETTINGS_HEADER_TABLE_SIZE`` announced by one side bounds
  the other side's encoder, so it raises the limit of the decoder of the *other* direction.
* **Nothing mangled.** A connection whose client side does not start with the preface (the
  capture joined mid-connection: HPACK state unknown), a gap in either direction, a header
  block that does not decode, or a frame that breaks framing stops the parsing of that
  connection: the streams already complete were returned, the streams in flight are returned
  flagged (``*_GAP`` / ``*_TRUNCATED`` / ``PARSE_ERROR``) when they have a request, and the
  reason is counted in :attr:`HTTP2Parser.counts` (``http2_midstream``, ``http2_gap``,
  ``http2_hpack_error``, ``http2_frame_error``, ``http2_bad_field``...).
* **h2c upgrade**: the HTTP/1.1 request that carried ``Upgrade: h2c`` is stream 1's request
  (:meth:`HTTP2Parser.upgraded`); the server's frames start right after its 101 response.
* A PUSH_PROMISE creates the promised stream with its request (``meta["h2.pushed_by"]``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import hpack

from ..model import ConnectionId, Exchange, Flag, Request, Response
from . import h2msg
from .http1 import ParserStats

__all__ = ["FAILURES", "PREFACE", "HTTP2Parser", "looks_like_preface", "looks_like_settings"]

# Reasons a connection (or a stream) was not turned into exchanges, counted as http2_<reason>
FAILURES = (
    "midstream",
    "gap",
    "hpack_error",
    "frame_error",
    "header_block_too_large",
    "bad_field",
    "stream_without_request",
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _PRIORITY, _RST, _SETTINGS, _PUSH, _PING, _GOAWAY, _WINDOW, _CONT = range(10)
_END_STREAM, _END_HEADERS, _PADDED, _PRIO = 0x1, 0x4, 0x8, 0x20
_MAX_FRAME = (1 << 24) - 1
_MAX_HEADER_LIST = 1 << 20
_MAX_OPEN_STREAMS = 10_000  # streams begun and not ended on one connection
_ERRORS = [
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
]


def looks_like_preface(data: bytes) -> bool:
    """Do the client's first bytes start (or could they start) the HTTP/2 preface?"""
    n = min(len(data), len(PREFACE))
    return n >= 4 and data[:n] == PREFACE[:n]


def looks_like_settings(data: bytes) -> bool:
    """Do a server's first bytes look like its first SETTINGS frame (h2c servers may speak
    before the client's preface arrives)? HTTP/1 servers never speak first."""
    return (
        len(data) >= 9
        and data[3] == _SETTINGS
        and data[4] == 0
        and data[5:9] == b"\0\0\0\0"
        and int.from_bytes(data[:3], "big") % 6 == 0
        and int.from_bytes(data[:3], "big") <= 6 * 16
    )


def _error_name(code: int) -> str:
    return _ERRORS[code] if 0 <= code < len(_ERRORS) else f"0x{code:x}"


@dataclass(slots=True)
class _Msg:
    """One direction of one stream."""

    fields: list[tuple[str, str]] | None = None
    interim: list[tuple[list[tuple[str, str]], int]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    trailers: list[tuple[str, str]] | None = None
    ended: bool = False
    ts_first: int = 0
    ts_last: int = 0


@dataclass(slots=True)
class _Stream:
    sid: int
    req: _Msg = field(default_factory=_Msg)
    resp: _Msg = field(default_factory=_Msg)
    reset: str | None = None
    pushed_by: int = 0
    request: Request | None = None  # h2c upgrade: stream 1's request is HTTP/1.1 text
    switching: Response | None = None  # and its 101 response


class _Dir:
    """One direction: unconsumed bytes, its HPACK decoder and a header block in progress."""

    __slots__ = ("buf", "cont", "decoder", "preface", "ts")

    def __init__(self, preface: bool) -> None:
        self.buf = bytearray()
        self.decoder = hpack.Decoder(max_header_list_size=_MAX_HEADER_LIST)
        self.preface = preface  # still expecting the client preface
        # (stream id, flags of the HEADERS/PUSH_PROMISE, promised id, block so far)
        self.cont: tuple[int, int, int, bytearray] | None = None
        self.ts = 0


class HTTP2Parser:
    """Both directions of one HTTP/2 connection, passively.

    Same calling convention as :class:`~replaygate.protocol.http1.HTTP1StreamParser`
    (``client_data``/``server_data``/``*_gap``/``*_eof``/``close``), so the assembler
    holds either one."""

    def __init__(
        self,
        conn: ConnectionId | None = None,
        *,
        id_seed: str = "",
        scheme: str | None = None,
        client_preface: bool = True,
    ) -> None:
        self.conn = conn
        self._seed = id_seed
        self._scheme = scheme
        self._client = _Dir(preface=client_preface)
        self._server = _Dir(preface=False)
        self._streams: dict[int, _Stream] = {}
        self.failed: str | None = None
        self.counts: Counter[str] = Counter()
        self.stats = ParserStats()  # the HTTP/1 counters the assembler sums (skipped bytes)
        self.exchanges_emitted = 0
        self.streams_seen = 0
        self._evicted: list[Exchange] = []

    # -- input ------------------------------------------------------------------------------
    def upgraded(self, request: Request, switching: Response | None = None) -> None:
        """An ``Upgrade: h2c`` request was answered 101 (``switching``, kept as an interim
        response): it is stream 1's request, and the client's preface comes next."""
        st = self._stream(1)
        st.request = request
        st.switching = switching
        st.req.ended = True
        st.req.ts_first, st.req.ts_last = request.ts_first_ns, request.ts_last_ns

    def client_data(self, data: bytes, ts_ns: int) -> list[Exchange]:
        return self._data(self._client, True, data, ts_ns)

    def server_data(self, data: bytes, ts_ns: int) -> list[Exchange]:
        return self._data(self._server, False, data, ts_ns)

    def client_gap(self, nbytes: int, ts_ns: int) -> list[Exchange]:
        return self._fail("gap", ts_ns, Flag.REQUEST_GAP)

    def server_gap(self, nbytes: int, ts_ns: int) -> list[Exchange]:
        return self._fail("gap", ts_ns, Flag.RESPONSE_GAP)

    def client_eof(self, ts_ns: int) -> list[Exchange]:
        return []

    def server_eof(self, ts_ns: int) -> list[Exchange]:
        return []

    def close(self, ts_ns: int) -> list[Exchange]:
        """End of the connection (or of the input): streams in flight come out flagged."""
        out: list[Exchange] = []
        for sid in sorted(self._streams):
            st = self._streams.pop(sid)
            ex = self._exchange(st, ts_ns)
            if ex is None:
                continue
            if not st.req.ended:
                ex.flags.add(Flag.REQUEST_TRUNCATED)
            if ex.response is None:
                ex.flags.add(Flag.NO_RESPONSE)
            elif not st.resp.ended:
                ex.flags.add(Flag.RESPONSE_TRUNCATED)
            out.append(ex)
        self.stats.skipped_bytes += len(self._client.buf) + len(self._server.buf)
        self._client.buf.clear()
        self._server.buf.clear()
        return self._numbered(out)

    @property
    def pending(self) -> int:
        return len(self._streams)

    @property
    def has_partial(self) -> bool:
        return bool(self._streams) or bool(self._client.buf) or bool(self._server.buf)

    # -- framing ----------------------------------------------------------------------------
    def _data(self, d: _Dir, client: bool, data: bytes, ts: int) -> list[Exchange]:
        if self.failed is not None:
            self.stats.skipped_bytes += len(data)
            return []
        d.buf += data
        d.ts = ts
        if d.preface:
            n = min(len(d.buf), len(PREFACE))
            if bytes(d.buf[:n]) != PREFACE[:n]:
                return self._fail("midstream", ts, None)
            if n < len(PREFACE):
                return []
            del d.buf[: len(PREFACE)]
            d.preface = False
        out: list[Exchange] = []
        buf = d.buf
        pos = 0
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos : pos + 3], "big")
            if len(buf) - pos - 9 < length:
                break
            ftype, flags = buf[pos + 3], buf[pos + 4]
            sid = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
            payload = bytes(buf[pos + 9 : pos + 9 + length])
            pos += 9 + length
            self.counts["http2_frames"] += 1
            try:
                out += self._frame(d, client, ftype, flags, sid, payload, ts)
            except _Broken as e:
                del buf[:pos]
                return self._numbered(out) + self._fail(e.reason, ts, Flag.PARSE_ERROR)
        del buf[:pos]
        if self._evicted:
            out, self._evicted = self._evicted + out, []
        return self._numbered(out)

    def _frame(
        self, d: _Dir, client: bool, ftype: int, flags: int, sid: int, p: bytes, ts: int
    ) -> list[Exchange]:
        if d.cont is not None and ftype != _CONT:
            raise _Broken("frame_error")  # a header block must be continued right away
        if ftype == _DATA:
            if not sid:
                raise _Broken("frame_error")
            st = self._stream(sid)
            msg = st.req if client else st.resp
            msg.body.append(_unpad(p, flags))
            self._touch(msg, ts)
            if flags & _END_STREAM:
                msg.ended = True
                return self._done(st)
            return []
        if ftype in (_HEADERS, _PUSH):
            if not sid:
                raise _Broken("frame_error")
            block = _unpad(p, flags)
            promised = 0
            if ftype == _HEADERS and flags & _PRIO:
                block = block[5:]
            elif ftype == _PUSH:
                if client or len(block) < 4:
                    raise _Broken("frame_error")
                promised = int.from_bytes(block[:4], "big") & 0x7FFFFFFF
                block = block[4:]
            d.cont = (sid, flags | (0x100 if ftype == _PUSH else 0), promised, bytearray(block))
            if flags & _END_HEADERS:
                return self._block(d, client, ts)
            return []
        if ftype == _CONT:
            if d.cont is None or d.cont[0] != sid:
                raise _Broken("frame_error")
            d.cont[3].extend(p)
            if len(d.cont[3]) > _MAX_HEADER_LIST:  # a CONTINUATION flood, or not HTTP/2
                raise _Broken("header_block_too_large")
            if flags & _END_HEADERS:
                return self._block(d, client, ts)
            return []
        if ftype == _RST:
            if not sid or len(p) != 4:
                raise _Broken("frame_error")
            st = self._stream(sid)
            st.reset = _error_name(int.from_bytes(p, "big"))
            self.counts["http2_rst_stream"] += 1
            return self._done(st, force=True)
        if ftype == _SETTINGS:
            if sid or (len(p) % 6 and not flags & 1):
                raise _Broken("frame_error")
            for i in range(0, len(p) - len(p) % 6, 6):
                ident = int.from_bytes(p[i : i + 2], "big")
                value = int.from_bytes(p[i + 2 : i + 6], "big")
                if ident == 1:  # SETTINGS_HEADER_TABLE_SIZE: bounds the peer's encoder
                    peer = self._server if client else self._client
                    peer.decoder.max_allowed_table_size = max(
                        peer.decoder.max_allowed_table_size, value
                    )
            return []
        if ftype == _GOAWAY:
            self.counts["http2_goaway"] += 1
            return []
        # PRIORITY, PING, WINDOW_UPDATE and extension frames carry nothing we keep
        return []

    def _block(self, d: _Dir, client: bool, ts: int) -> list[Exchange]:
        assert d.cont is not None
        sid, flags, promised, block = d.cont
        d.cont = None
        try:
            decoded = d.decoder.decode(bytes(block), raw=True)
        except (hpack.HPACKError, ValueError, IndexError) as e:
            raise _Broken("hpack_error") from e
        fields = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in decoded]
        if flags & 0x100:  # PUSH_PROMISE: the promised stream's request
            st = self._stream(promised)
            st.pushed_by = sid
            st.req.fields = fields
            st.req.ended = True
            self._touch(st.req, ts)
            return []
        st = self._stream(sid)
        msg = st.req if client else st.resp
        self._touch(msg, ts)
        if msg.fields is None:
            status = next((v for k, v in fields if k == ":status"), "")
            if not client and status[:1] == "1" and status != "101":
                msg.interim.append((fields, ts))
            else:
                msg.fields = fields
        else:
            msg.trailers = fields
        if flags & _END_STREAM:
            msg.ended = True
            return self._done(st)
        return []

    # -- streams ----------------------------------------------------------------------------
    def _stream(self, sid: int) -> _Stream:
        st = self._streams.get(sid)
        if st is None:
            if len(self._streams) >= _MAX_OPEN_STREAMS:  # bounded memory: oldest given up
                oldest = next(iter(self._streams.values()))
                self.counts["http2_too_many_streams"] += 1
                self._evicted += self._done(oldest, force=True)
            st = self._streams[sid] = _Stream(sid)
            self.streams_seen += 1
        return st

    @staticmethod
    def _touch(msg: _Msg, ts: int) -> None:
        if not msg.ts_first:
            msg.ts_first = ts
        msg.ts_last = ts

    def _done(self, st: _Stream, force: bool = False) -> list[Exchange]:
        if not force and not (st.req.ended and st.resp.ended):
            return []
        del self._streams[st.sid]
        ex = self._exchange(st, st.resp.ts_last or st.req.ts_last)
        if ex is None:
            return []
        if st.reset is not None:
            ex.meta["h2.reset"] = st.reset
        if force:
            if not st.req.ended:
                ex.flags.add(Flag.REQUEST_TRUNCATED)
            if ex.response is None:
                ex.flags.add(Flag.NO_RESPONSE)
            elif not st.resp.ended:
                ex.flags.add(Flag.RESPONSE_TRUNCATED)
        return [ex]

    def _exchange(self, st: _Stream, ts: int) -> Exchange | None:
        """The exchange of a stream; None (counted) when it has no usable request."""
        meta: dict[str, str] = {}
        if st.request is not None:
            req = st.request
        elif st.req.fields is None:
            self.counts["http2_stream_without_request"] += 1
            return None
        else:
            try:
                req, meta = h2msg.build_request(
                    st.req.fields,
                    b"".join(st.req.body),
                    st.req.trailers,
                    ts_first_ns=st.req.ts_first,
                    ts_last_ns=st.req.ts_last,
                )
            except h2msg.FieldError:
                self.counts["http2_bad_field"] += 1
                return None
        if "scheme" not in meta and self._scheme:
            meta["scheme"] = self._scheme
        meta["h2.stream"] = str(st.sid)
        if st.pushed_by:
            meta["h2.pushed_by"] = str(st.pushed_by)
        ex = Exchange(id=self._id(st.sid, req.ts_first_ns), request=req, conn=self.conn, meta=meta)
        if st.switching is not None:
            ex.interim.append(st.switching)
        try:
            for fields, its in st.resp.interim:
                ex.interim.append(h2msg.build_response(fields, ts_first_ns=its, ts_last_ns=its))
            if st.resp.fields is not None:
                ex.response = h2msg.build_response(
                    st.resp.fields,
                    b"".join(st.resp.body),
                    st.resp.trailers,
                    ts_first_ns=st.resp.ts_first,
                    ts_last_ns=st.resp.ts_last,
                )
        except h2msg.FieldError:
            self.counts["http2_bad_field"] += 1
            ex.flags.add(Flag.PARSE_ERROR)
        return ex

    def _id(self, sid: int, ts: int) -> str:
        h = hashlib.sha1(usedforsecurity=False)
        h.update(f"{self._seed}\x00{self.conn}\x00h2:{sid}\x00{ts}".encode())
        return h.hexdigest()

    def _numbered(self, out: list[Exchange]) -> list[Exchange]:
        for ex in out:
            self.exchanges_emitted += 1
            ex.seq = self.exchanges_emitted
        return out

    def _fail(self, reason: str, ts: int, flag: Flag | None) -> list[Exchange]:
        """Stop parsing this connection: count why, return the streams in flight flagged."""
        if self.failed is not None:
            return []
        self.failed = reason
        self.counts["http2_" + reason] += 1
        out = self.close(ts)
        if flag is not None:
            for ex in out:
                ex.flags.add(flag)
        return out


class _Broken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _unpad(p: bytes, flags: int) -> bytes:
    if not flags & _PADDED:
        return p
    if not p or p[0] >= len(p):
        raise _Broken("frame_error")
    return p[1 : len(p) - p[0]]
