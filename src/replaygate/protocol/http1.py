"""Sans-I/O HTTP/1.x parser for one TCP connection, both directions, pairing FIFO.

Feed it the reassembled bytes of each direction (and gaps, and ends of stream); it returns
the exchanges that became complete, in request order, each keeping the exact raw bytes of its
request, interim 1xx responses and final response.

Design rules (each one is a lesson from real captures):

* A request becomes an *entry* as soon as its request line and head are read, so a response
  that arrives early (413 before the upload ends, 100 Continue) pairs with the right request.
* Responses pair with entries in order. A response with no request waiting becomes an
  ``ORPHAN_RESPONSE`` exchange (the capture missed the request) -- unless the client has
  unparsed bytes buffered, in which case the response waits (boundedly) for that request.
  A response whose first byte was seen before its candidate request's first byte cannot be
  its answer: it is an orphan too, returned before that request.
* Gaps: inside a sized body the lost bytes are skipped by length and the message is flagged;
  anywhere else the message is cut, flagged, and parsing resumes at the next start line. A
  message that began inside a gap still takes its place in the FIFO (flagged), so the pairing
  of the messages after it stays right.
* Exchanges are returned in request order, ``seq`` numbering them as returned; ids are
  ``stable_exchange_id(id_seed, str(conn), seq, request.ts_first_ns)``.
* After a request that may switch protocols (CONNECT, Upgrade) the client side pauses until
  the response says whether it did; if so both sides stop being parsed (the handshake is kept
  and flagged).
* Bytes that are not a message start are skipped to the next plausible start line, counted in
  :attr:`HTTP1StreamParser.stats`, and the next message is flagged ``MIDSTREAM`` (nothing parsed
  yet on that side) or ``DESYNC``.
* Bodies are collected as a list of pieces and joined once, so a 100 MB body costs one copy.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import asdict, dataclass

from ..model import ConnectionId, Exchange, Flag, Request, Response
from . import _http1_grammar as g

__all__ = ["HTTP1StreamParser", "ParserConfig", "ParserStats"]


@dataclass(frozen=True, slots=True)
class ParserConfig:
    """Bounds that keep one connection's memory in check.

    ``max_head_bytes``: a head (start line + headers) longer than this is a parse error.
    ``max_line_bytes``: an unfinished start line longer than this is garbage.
    ``max_paused_bytes``: client bytes held while waiting for the answer to CONNECT/Upgrade;
    beyond it the tunnel is assumed to be up. ``max_held_response_bytes``: server bytes held
    while the client's next request is still incomplete, before they are parsed as orphans.
    Bodies have no limit (100 MB+ bodies are normal); they are kept in pieces and joined once.
    """

    max_head_bytes: int = 1 << 20
    max_line_bytes: int = 64 << 10
    max_paused_bytes: int = 256 << 10
    max_held_response_bytes: int = 64 << 10


@dataclass(slots=True)
class ParserStats:
    """What one parser skipped or stopped parsing, so nothing is lost silently."""

    requests: int = 0
    responses: int = 0
    interim_responses: int = 0
    skipped_bytes: int = 0
    resyncs: int = 0
    parse_errors: int = 0
    malformed_request_lines: int = 0
    tunnel_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# side states
_HEAD, _SIZED, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS, _CLOSE = range(7)
_PAUSED, _TUNNEL, _RESYNC, _ENDED = range(7, 11)
_BODY_STATES = (_SIZED, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS, _CLOSE)


class _Entry:
    """One request (maybe not fully read yet) and what came back for it."""

    __slots__ = (
        "connect",
        "expect_continue",
        "flags",
        "head",
        "http09",
        "interim",
        "method",
        "request",
        "resp_done",
        "response",
        "seq",
        "switched",
        "ts_first",
        "upgrade",
    )

    def __init__(self, seq: int, method: bytes) -> None:
        self.seq = seq
        self.ts_first = 0
        self.method = method
        self.flags: set[Flag] = set()
        self.request: Request | None = None
        self.response: Response | None = None
        self.interim: list[Response] = []
        self.resp_done = False
        self.http09 = False
        self.connect = method == b"CONNECT"
        self.upgrade = False
        self.expect_continue = False
        self.switched = False  # 101 or CONNECT 2xx: the stream is no longer HTTP
        self.head = False  # HEAD request: the response has no body


class _Side:
    """One direction: unconsumed bytes, framing state and the message being read."""

    __slots__ = (
        "after_gap",
        "base",
        "body_seen",
        "buf",
        "entry",
        "eof",
        "final",
        "head_len",
        "interim",
        "last_ts",
        "marks",
        "msg_flags",
        "parts",
        "pending",
        "pos",
        "remaining",
        "scan",
        "scan_at",
        "skipped_run",
        "started",
        "state",
        "ts_first",
    )

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0
        self.base = 0  # stream offset of buf[0]
        self.marks: deque[tuple[int, int]] = deque()  # (stream offset, ts) of each feed
        self.state = _HEAD
        self.remaining = 0
        self.scan = 0  # stream offset the head-end search may resume from ...
        self.scan_at = -1  # ... for the message starting at this stream offset
        self.parts: list[bytes] = []
        self.head_len = 0
        self.ts_first = 0
        self.last_ts = 0
        self.entry: _Entry | None = None
        self.msg_flags: set[Flag] = set()
        self.pending: Flag | None = None  # flag for the next message (MIDSTREAM/DESYNC)
        self.started = False
        self.eof = False
        self.interim = False
        self.final = False
        self.body_seen = 0
        self.skipped_run = 0
        self.after_gap = False

    @property
    def avail(self) -> int:
        return len(self.buf) - self.pos

    def feed(self, data: bytes, ts: int) -> None:
        if self.pos >= len(self.buf):
            self.base += len(self.buf)
            self.buf = data
        else:
            self.base += self.pos
            self.buf = self.buf[self.pos :] + data
        self.pos = 0
        self.marks.append((self.base + len(self.buf) - len(data), ts))
        self.last_ts = ts
        cur = self.base
        marks = self.marks
        while len(marks) > 1 and marks[1][0] < cur:
            marks.popleft()

    def ts_at(self, offset: int) -> int:
        """Capture time of the byte at stream ``offset`` (still buffered or just consumed)."""
        marks = self.marks
        if marks and marks[-1][0] <= offset:
            return marks[-1][1]
        for start, ts in reversed(marks):
            if start <= offset:
                return ts
        return self.marks[0][1] if self.marks else self.last_ts

    def take(self, n: int) -> None:
        """Move ``n`` buffered bytes into the current message."""
        buf, pos = self.buf, self.pos
        if pos == 0 and n == len(buf):
            self.parts.append(buf)
        else:
            self.parts.append(buf[pos : pos + n])
        self.pos = pos + n

    def begin(self, ts_first: int) -> None:
        self.parts = []
        self.head_len = 0
        self.ts_first = ts_first
        self.msg_flags = set()
        self.body_seen = 0
        if self.pending is not None:
            self.msg_flags.add(self.pending)
            self.pending = None

    def raw(self) -> bytes:
        parts = self.parts
        self.parts = []
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def ts_last(self) -> int:
        return self.ts_at(self.base + self.pos - 1)

    def skip(self, n: int, stats: ParserStats) -> None:
        self.pos += n
        stats.skipped_bytes += n
        self.skipped_run += n

    def drop_all(self) -> int:
        n = self.avail
        self.pos = len(self.buf)
        return n


class HTTP1StreamParser:
    """Parse both directions of one connection; see the module docstring for the rules."""

    def __init__(
        self,
        conn: ConnectionId | None = None,
        *,
        config: ParserConfig | None = None,
        id_seed: str = "",
    ) -> None:
        self.conn = conn
        self.config = config or ParserConfig()
        self.stats = ParserStats()
        self._seed = id_seed
        self._conn_text = str(conn) if conn is not None else ""
        self._id_hash = hashlib.sha1(
            f"{id_seed}\x00{self._conn_text}\x00".encode(), usedforsecurity=False
        )
        self._c = _Side()
        self._s = _Side()
        self._order: deque[_Entry] = deque()  # entries not yet returned, in request order
        self._awaiting: deque[_Entry] = deque()  # entries without a final response yet
        self._seq = 0  # exchanges returned so far: the next one's seq
        self._closed = False
        self._hold = True  # may server bytes wait for a request still arriving?
        self._client_ending = False
        self._out: list[Exchange] = []
        self.exchanges_emitted = 0
        self.tunnel_start: tuple[bytes, bytes] | None = None
        self._tunnel_taken = False

    def take_tunnel_start(self) -> tuple[bytes, bytes] | None:
        """The bytes each side had sent past a protocol switch, once (then None)."""
        rest, self.tunnel_start = self.tunnel_start, None
        self._tunnel_taken = True
        return rest

    # -- public API -------------------------------------------------------------------------
    def client_data(self, data: bytes, ts_ns: int) -> list[Exchange]:
        """Bytes the client sent, in stream order."""
        if data and not self._closed and not self._c.eof:
            c = self._c
            if c.state == _TUNNEL or c.state == _ENDED:
                self.stats.tunnel_bytes += len(data)
            else:
                c.feed(bytes(data), ts_ns)
                self._run()
        return self._emit()

    def server_data(self, data: bytes, ts_ns: int) -> list[Exchange]:
        """Bytes the server sent, in stream order."""
        if data and not self._closed and not self._s.eof:
            s = self._s
            if s.state == _TUNNEL or s.state == _ENDED:
                self.stats.tunnel_bytes += len(data)
            else:
                s.feed(bytes(data), ts_ns)
                self._run(server_first=True)
        return self._emit()

    def client_gap(self, nbytes: int, ts_ns: int) -> list[Exchange]:
        """``nbytes`` of the client's stream were never seen (capture loss)."""
        if nbytes > 0 and not self._closed and not self._c.eof:
            self._run()
            self._gap(self._c, nbytes, client=True)
            self._run()
        return self._emit()

    def server_gap(self, nbytes: int, ts_ns: int) -> list[Exchange]:
        """``nbytes`` of the server's stream were never seen (capture loss)."""
        if nbytes > 0 and not self._closed and not self._s.eof:
            self._hold = False  # responses held for a partial request are whole: parse them
            self._run()
            self._hold = True
            self._gap(self._s, nbytes, client=False)
            self._run()
        return self._emit()

    def client_eof(self, ts_ns: int) -> list[Exchange]:
        """The client finished sending (FIN)."""
        if not self._closed and not self._c.eof:
            self._client_eof()
            self._run()
        return self._emit()

    def server_eof(self, ts_ns: int) -> list[Exchange]:
        """The server finished sending (FIN): close-delimited bodies end here."""
        if not self._closed and not self._s.eof:
            self._run()
            self._server_eof()
        return self._emit()

    def close(self, ts_ns: int) -> list[Exchange]:
        """Stop here (expiry, end of input): flush everything outstanding, flagged.

        A body delimited by the connection's close that is still open is flagged
        ``RESPONSE_TRUNCATED``: without the server's FIN nobody knows it was complete (call
        :meth:`server_eof` first when the connection really ended, e.g. on RST).
        """
        if self._closed:
            return []
        if not self._c.eof:
            self._client_eof()
            self._run()
        if not self._s.eof:
            self._server_eof(seen=False)
        self._closed = True
        out = self._emit()
        while self._order:
            out.append(self._finish(self._order.popleft()))
        self._awaiting.clear()
        return out

    @property
    def pending(self) -> int:
        """Requests (and orphan responses) read but not returned yet."""
        return len(self._order)

    @property
    def has_partial(self) -> bool:
        """Is anything outstanding: unreturned entries or unparsed buffered bytes?"""
        return bool(self._order) or self._c.avail > 0 or self._s.avail > 0

    # -- driving ----------------------------------------------------------------------------
    def _run(self, server_first: bool = False) -> None:
        """Advance both sides until neither can make progress."""
        step_c, step_s, c = self._step_client, self._step_server, self._c
        if server_first:
            moved = False
            while step_s():
                moved = True
            if not moved or c.pos >= len(c.buf):
                return
        while True:
            while step_c():
                pass
            moved = False
            while step_s():
                moved = True
            if not moved or c.pos >= len(c.buf):  # the server can only unblock buffered bytes
                return

    def _emit(self) -> list[Exchange]:
        out = self._out
        order = self._order
        s_eof = self._s.eof
        while order:
            e = order[0]
            if e.request is None or not (e.resp_done or s_eof):
                break
            order.popleft()
            out.append(self._finish(e))
        self._out = []
        return out

    def _finish(self, e: _Entry) -> Exchange:
        """Build the Exchange for an entry, flagging whatever is missing."""
        c, s = self._c, self._s
        if e.request is None:  # still being read: return what we have
            side = c
            raw = side.raw() if c.entry is e else b""
            e.request = Request(
                raw,
                ts_first_ns=side.ts_first,
                ts_last_ns=side.last_ts,
                head_len=min(side.head_len or len(raw), len(raw)),
            )
            e.flags |= side.msg_flags
            e.flags.add(Flag.REQUEST_TRUNCATED)
            side.entry = None
        if not e.resp_done:
            if s.entry is e and s.state != _HEAD:
                raw = s.raw()
                resp = Response(
                    raw,
                    ts_first_ns=s.ts_first,
                    ts_last_ns=s.last_ts,
                    head_len=min(s.head_len, len(raw)),
                )
                e.flags |= s.msg_flags
                if s.interim:
                    e.interim.append(resp)
                    e.flags.add(Flag.NO_RESPONSE)
                else:
                    e.response = resp
                    e.flags.add(Flag.RESPONSE_TRUNCATED)
                s.entry = None
            elif e.response is None and Flag.RESPONSE_GAP not in e.flags:
                e.flags.add(Flag.NO_RESPONSE)
            e.resp_done = True
        req = e.request
        e.seq = self._seq  # numbered when returned, so seq follows the order of return
        self._seq += 1
        self.exchanges_emitted += 1
        return Exchange(
            id=self._exchange_id(e.seq, req.ts_first_ns),
            request=req,
            response=e.response,
            conn=self.conn,
            seq=e.seq,
            flags=e.flags,
            interim=e.interim,
        )

    def _exchange_id(self, seq: int, ts_first_ns: int) -> str:
        """``stable_exchange_id(id_seed, str(conn), seq, ts_first_ns)``, with the constant
        prefix hashed once per connection."""
        h = self._id_hash.copy()
        h.update(f"{seq}\x00{ts_first_ns}\x00".encode())
        return h.hexdigest()

    # -- client side ------------------------------------------------------------------------
    def _step_client(self) -> bool:
        c = self._c
        st = c.state
        if c.pos >= len(c.buf) or st >= _PAUSED:
            if st == _PAUSED and c.avail > self.config.max_paused_bytes and c.entry is None:
                self._pause_overflow()
                return True
            if st == _RESYNC and c.avail:
                return self._resync(c, client=True)
            return False
        if st == _HEAD:
            return self._client_head()
        return self._body(c, client=True)

    def _client_head(self) -> bool:
        c = self._c
        buf, pos = c.buf, c.pos
        if buf[pos] in b"\r\n":
            m0 = g.BLANK_LINES.match(buf, pos)
            assert m0 is not None
            c.pos = m0.end()
            return True
        m = g.REQUEST_LINE.match(buf, pos)
        malformed = False
        if m is None:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if c.avail <= self.config.max_line_bytes and (
                    g.is_request_prefix(buf, pos) or g.MALFORMED_PREFIX.match(buf, pos)
                ):
                    return False  # wait for the rest of the line
                return self._to_resync(c)
            m = g.MALFORMED_REQUEST_LINE.match(buf, pos)
            if m is None:
                m9 = g.REQUEST_LINE_09.match(buf, pos)
                if m9 is not None and c.pending is None:
                    self._new_request(m9.group(1), m9.end() - pos, g.Framing(), http09=True)
                    return True
                return self._to_resync(c)
            malformed = True  # still plainly a request line: kept, flagged
        elif m.group(3) == b"2":  # "PRI * HTTP/2.0": an HTTP/2 connection, not ours to parse
            self._tunnel()
            return True
        line_end = m.end()
        here = c.base + pos
        end = g.find_head_end(
            buf, max(line_end - 1, c.scan - here + pos if c.scan_at == here else 0)
        )
        if end < 0 or end - pos > self.config.max_head_bytes:
            if end >= 0 or c.avail > self.config.max_head_bytes:
                self.stats.parse_errors += 1
                c.pending = Flag.PARSE_ERROR
                size = self.config.max_head_bytes + 1  # cut where a stream fed in pieces would
                self._new_request(m.group(1), size, g.Framing(), cut=True)
                return True
            c.scan_at = here
            c.scan = c.base + max(len(buf) - 2, line_end - 1)
            return False
        framing = g.framing_headers(buf, line_end, end)
        if malformed:
            self.stats.malformed_request_lines += 1
        self._new_request(m.group(1), end - pos, framing, malformed=malformed)
        return True

    def _new_request(
        self,
        method: bytes,
        head_len: int,
        framing: g.Framing,
        *,
        http09: bool = False,
        cut: bool = False,
        malformed: bool = False,
    ) -> None:
        c = self._c
        c.begin(c.ts_at(c.base + c.pos))
        e = _Entry(self._seq, method)
        e.ts_first = c.ts_first
        self.stats.requests += 1
        e.http09 = http09
        e.head = method == b"HEAD"
        e.upgrade = framing.upgrade
        e.expect_continue = framing.expect_continue
        if http09:
            c.msg_flags.add(Flag.HTTP09)
        if malformed:
            c.msg_flags.add(Flag.MALFORMED_REQUEST_LINE)
        c.started = True
        c.entry = e
        c.take(head_len)
        c.head_len = head_len
        self._order.append(e)
        self._awaiting.append(e)
        if cut:
            self._end_request()
            c.state = _RESYNC
            return
        if framing.transfer_encoding:
            if framing.chunked:
                c.state = _CHUNK_SIZE
                return
            # a request body cannot be close-delimited (RFC 9112 6.3): framing is unknown
            self.stats.parse_errors += 1
            c.msg_flags.add(Flag.PARSE_ERROR)
        elif framing.length_invalid:
            self.stats.parse_errors += 1
            c.msg_flags.add(Flag.PARSE_ERROR)
        elif framing.content_length:
            c.state = _SIZED
            c.remaining = framing.content_length
            return
        self._end_request()

    def _end_request(self) -> None:
        """The request being read is complete."""
        c = self._c
        e = c.entry
        assert e is not None
        raw = c.raw()
        e.request = Request(
            raw, ts_first_ns=c.ts_first, ts_last_ns=c.ts_last(), head_len=min(c.head_len, len(raw))
        )
        e.flags |= c.msg_flags
        c.entry = None
        if c.state != _RESYNC:
            c.state = _HEAD
        if e.resp_done:
            if e.switched:
                self._tunnel()
        elif (e.connect or e.upgrade) and c.state == _HEAD:
            c.state = _PAUSED
            c.entry = None

    def _pause_overflow(self) -> None:
        """So many client bytes after CONNECT/Upgrade with no answer: it is a tunnel."""
        for e in self._awaiting:
            if e.connect or e.upgrade:
                e.flags.add(Flag.CONNECT if e.connect else Flag.UPGRADE)
                break
        self._tunnel()

    def _tunnel(self) -> None:
        """Stop parsing both directions; count what is left as tunnel bytes. What was left
        is kept in :attr:`tunnel_start` (client, server) for whoever speaks the new protocol
        (the assembler hands an ``Upgrade: h2c`` connection to the HTTP/2 parser)."""
        if self.tunnel_start is None and not self._tunnel_taken:
            c, s = self._c, self._s
            self.tunnel_start = (bytes(c.buf[c.pos :]), bytes(s.buf[s.pos :]))
        for side in (self._c, self._s):
            self.stats.tunnel_bytes += side.drop_all()
            side.state = _TUNNEL

    # -- server side ------------------------------------------------------------------------
    def _step_server(self) -> bool:
        s = self._s
        st = s.state
        if s.pos >= len(s.buf) or st >= _PAUSED:
            if st == _RESYNC and s.avail:
                return self._resync(s, client=False)
            return False
        if st == _HEAD:
            return self._server_head()
        return self._body(s, client=False)

    def _server_head(self) -> bool:
        s, c = self._s, self._c
        # A response with no request: wait if the client is mid-request, else orphan.
        if (
            not self._awaiting
            and not s.eof
            and self._hold
            and (
                c.avail
                and not c.eof
                and c.state in (_HEAD, _RESYNC)
                and s.avail <= self.config.max_held_response_bytes
            )
        ):
            return False
        buf, pos = s.buf, s.pos
        e = self._awaiting[0] if self._awaiting else None
        before = None
        if e is not None and s.ts_at(s.base + pos) < e.ts_first:
            # This response began before the request it would pair with: the capture missed
            # its request (e.g. a join mid-upload), so it is an orphan placed before that one.
            before, e = e, None
        if e is not None and e.http09 and not g.is_status_prefix(buf, pos):
            self._new_response(e, 0, status=0, http09=True)
            return True
        if buf[pos] in b"\r\n":  # stray line ends between (or before) responses
            m0 = g.BLANK_LINES.match(buf, pos)
            assert m0 is not None
            s.pos = m0.end()
            return True
        m = g.STATUS_LINE.match(buf, pos)
        if m is None:
            nl = buf.find(b"\n", pos)
            if nl < 0 and s.avail <= self.config.max_line_bytes and g.is_status_prefix(buf, pos):
                return False
            return self._to_resync(s)
        line_end = m.end()
        here = s.base + pos
        end = g.find_head_end(
            buf, max(line_end - 1, s.scan - here + pos if s.scan_at == here else 0)
        )
        if end < 0 or end - pos > self.config.max_head_bytes:
            if end >= 0 or s.avail > self.config.max_head_bytes:
                self.stats.parse_errors += 1
                s.pending = Flag.PARSE_ERROR
                size = self.config.max_head_bytes + 1  # cut where a stream fed in pieces would
                self._new_response(e, size, status=int(m.group(3)), cut=True, before=before)
                return True
            s.scan_at = here
            s.scan = s.base + max(len(buf) - 2, line_end - 1)
            return False
        framing = g.framing_headers(buf, line_end, end)
        self._new_response(e, end - pos, status=int(m.group(3)), framing=framing, before=before)
        return True

    def _new_response(
        self,
        e: _Entry | None,
        head_len: int,
        *,
        status: int,
        framing: g.Framing | None = None,
        http09: bool = False,
        cut: bool = False,
        before: _Entry | None = None,
    ) -> None:
        s = self._s
        ts = s.ts_at(s.base + s.pos)
        if e is None:
            e = _Entry(self._seq, b"")
            e.ts_first = ts
            e.request = Request(b"", ts_first_ns=ts, ts_last_ns=ts, head_len=0)
            e.flags.add(Flag.ORPHAN_RESPONSE)
            if before is not None and before in self._order:
                self._order.insert(self._order.index(before), e)
                self._awaiting.appendleft(e)
            else:
                self._order.append(e)
                self._awaiting.append(e)
        s.begin(ts)
        s.entry = e
        s.started = True
        s.take(head_len)
        s.head_len = head_len
        s.interim = 100 <= status < 200 and status != 101
        if s.interim:
            self.stats.interim_responses += 1
        else:
            self.stats.responses += 1
        if http09:
            s.msg_flags.add(Flag.HTTP09)
            s.state = _CLOSE
            return
        if cut or framing is None:
            s.state = _RESYNC
            self._end_response()
            return
        if status == 101:
            e.switched = True
            s.msg_flags.add(Flag.UPGRADE)
        elif e.connect and 200 <= status < 300:
            e.switched = True
            s.msg_flags.add(Flag.CONNECT)
        elif s.interim or status in (204, 304) or e.head:
            pass
        elif framing.transfer_encoding:
            if framing.chunked:
                s.state = _CHUNK_SIZE
                return
            s.msg_flags.add(Flag.CLOSE_DELIMITED)
            s.state = _CLOSE
            return
        elif framing.length_invalid:
            self.stats.parse_errors += 1
            s.msg_flags.add(Flag.PARSE_ERROR)
            s.msg_flags.add(Flag.CLOSE_DELIMITED)
            s.state = _CLOSE
            return
        elif framing.content_length is not None:
            if framing.content_length:
                s.state = _SIZED
                s.remaining = framing.content_length
                return
        else:
            s.msg_flags.add(Flag.CLOSE_DELIMITED)
            s.state = _CLOSE
            return
        self._end_response()

    def _end_response(self) -> None:
        """The response being read is complete: interim ones wait for more, finals pair."""
        s, c = self._s, self._c
        e = s.entry
        assert e is not None
        raw = s.raw()
        resp = Response(
            raw, ts_first_ns=s.ts_first, ts_last_ns=s.ts_last(), head_len=min(s.head_len, len(raw))
        )
        s.entry = None
        if s.state != _RESYNC:
            s.state = _HEAD
        if s.interim:
            e.interim.append(resp)
            e.flags |= s.msg_flags
            return
        e.response = resp
        e.flags |= s.msg_flags
        e.resp_done = True
        if self._awaiting and self._awaiting[0] is e:
            self._awaiting.popleft()
        if e.switched:
            if e.request is not None:
                self._tunnel()
            else:  # the request is still arriving; the server already speaks another protocol
                self.stats.tunnel_bytes += s.drop_all()
                s.state = _TUNNEL
            return
        if (
            c.state == _PAUSED
            and c.entry is None
            and not any(x.connect or x.upgrade for x in self._awaiting if x.request is not None)
        ):
            c.state = _HEAD

    # -- bodies (both sides) ----------------------------------------------------------------
    def _body(self, side: _Side, *, client: bool) -> bool:
        st = side.state
        if st in (_SIZED, _CHUNK_DATA):
            if client and side.body_seen == 0 and (refused := self._expect_refused(side)):
                if refused < 0:
                    return False  # wait: the start of a line that may be the next request
                self._end_request()
                return True
            avail = len(side.buf) - side.pos
            n = side.remaining if side.remaining < avail else avail
            side.take(n)
            side.body_seen += n
            side.remaining -= n
            if side.remaining:
                return True
            if st == _CHUNK_DATA:
                side.state = _CHUNK_CRLF
                return True
            self._end_message(side, client)
            return True
        if st == _CLOSE:
            n = side.avail
            side.take(n)
            side.body_seen += n
            return True
        buf, pos = side.buf, side.pos
        if st == _CHUNK_CRLF:
            if buf.startswith(b"\r\n", pos):
                side.take(2)
            elif buf.startswith(b"\n", pos):
                side.take(1)
            elif buf.startswith(b"\r", pos) and side.avail == 1:
                return False
            side.state = _CHUNK_SIZE
            return True
        if st == _CHUNK_SIZE:
            if client and side.body_seen == 0 and (refused := self._expect_refused(side)):
                if refused < 0:
                    return False  # wait: the start of a line that may be the next request
                self._end_request()
                return True
            nl = buf.find(b"\n", pos, pos + 4096)
            if nl < 0:
                if side.avail < 4096:
                    return False
                return self._framing_error(side, client)
            size = g.parse_chunk_size(buf[pos:nl])
            if size is None:
                return self._framing_error(side, client)
            side.take(nl + 1 - pos)
            side.body_seen += 1
            if size:
                side.remaining = size
                side.state = _CHUNK_DATA
            else:
                side.state = _TRAILERS
            return True
        # _TRAILERS
        if buf.startswith(b"\r\n", pos) or buf.startswith(b"\n", pos):
            side.take(2 if buf[pos] == 13 else 1)
            self._end_message(side, client)
            return True
        if side.avail == 1 and buf[pos] == 13:
            return False
        end = g.find_head_end(buf, pos)
        if end < 0:
            if side.avail > self.config.max_head_bytes:
                return self._framing_error(side, client)
            return False
        side.take(end - pos)
        self._end_message(side, client)
        return True

    def _end_message(self, side: _Side, client: bool) -> None:
        if client:
            self._end_request()
        else:
            self._end_response()

    def _framing_error(self, side: _Side, client: bool) -> bool:
        """Chunk framing is broken: keep what we have, flag it, look for the next message."""
        self.stats.parse_errors += 1
        side.msg_flags.add(Flag.PARSE_ERROR)
        side.state = _RESYNC
        self._end_message(side, client)
        return True

    def _expect_refused(self, side: _Side) -> int:
        """Expect: 100-continue and the bytes where the body should start are a request line:
        the server refused (417, 401, ...) and the client skipped the body, as it may.

        1: skip the body; -1: undecided (a final answer came and the bytes so far could still
        be a request line: wait for the line to end); 0: the body it is."""
        e = side.entry
        if e is None or not e.expect_continue:
            return 0
        buf, pos = side.buf, side.pos
        if g.REQUEST_LINE.match(buf, pos) is not None:
            return 1
        if (
            e.response is not None
            and not self._client_ending
            and buf.find(b"\n", pos) < 0
            and len(buf) - pos <= self.config.max_line_bytes
            and g.is_request_prefix(buf, pos)
        ):
            return -1
        return 0

    # -- desync, gaps, ends -----------------------------------------------------------------
    def _to_resync(self, side: _Side) -> bool:
        side.state = _RESYNC
        self.stats.resyncs += 1
        return True

    def _resync(self, side: _Side, *, client: bool) -> bool:
        """Skip to the next plausible start line (or keep the last partial line)."""
        buf, pos = side.buf, side.pos
        strict = g.RESYNC_REQUEST if client else g.RESYNC_STATUS
        if strict.match(buf, pos) is None:
            if client:
                m = g.RESYNC_REQUEST_ANY.search(buf, pos)
                m2 = g.RESYNC_REQUEST_NL.search(buf, pos, m.start() if m is not None else len(buf))
                if m2 is not None:
                    m = m2
            else:
                m = g.RESYNC_STATUS_ANY.search(buf, pos)
            if m is None:
                nl = buf.rfind(b"\n", pos)
                keep_from = nl + 1 if nl >= 0 else pos
                if len(buf) - keep_from > self.config.max_line_bytes:
                    keep_from = len(buf)
                side.skip(keep_from - pos, self.stats)
                return False
            side.skip(m.start(1) - pos, self.stats)
        if side.skipped_run and not side.after_gap:
            side.pending = Flag.DESYNC if side.started else Flag.MIDSTREAM
        side.after_gap = False
        side.skipped_run = 0
        side.state = _HEAD
        return True

    def _gap(self, side: _Side, n: int, *, client: bool) -> None:
        """``n`` bytes lost: flag the message they fell in, skip them inside a sized body, and
        keep pairing right by accounting for a message that started inside the gap."""
        st = side.state
        flag = Flag.REQUEST_GAP if client else Flag.RESPONSE_GAP
        if st in (_TUNNEL, _ENDED):
            self.stats.tunnel_bytes += n
            return
        side.after_gap = True
        side.skipped_run = 0
        if st == _PAUSED:
            self.stats.skipped_bytes += side.drop_all()
            side.state = _RESYNC
            return
        if st == _CLOSE:
            side.msg_flags.add(flag)
            return
        if (st in (_SIZED, _CHUNK_DATA)) and n < side.remaining:
            side.msg_flags.add(flag)
            side.remaining -= n
            return
        if st == _SIZED:
            over = n - side.remaining
            side.remaining = 0
            side.msg_flags.add(flag)
            self._end_message(side, client)
            if over == 0:
                side.after_gap = False
                return
            if side.state != _HEAD:
                return
            # the gap ran past the end of the message: the next one started inside it
            self._lost_start(side, client, flag)
            side.state = _RESYNC
            return
        if st in _BODY_STATES:
            side.msg_flags.add(flag)
            side.state = _RESYNC
            self._end_message(side, client)
            return
        if st == _HEAD:
            self._lost_start(side, client, flag)
        side.state = _RESYNC
        self.stats.resyncs += 1

    def _lost_start(self, side: _Side, client: bool, flag: Flag) -> None:
        """A message began before or inside a gap and will never be whole. Keep whatever of it
        was seen as a flagged message, so the FIFO pairing of later messages stays right."""
        buf, pos = side.buf, side.pos
        if client:
            m = g.REQUEST_LINE.match(buf, pos)
            if side.avail == 0 or m is not None or g.is_request_prefix(buf, pos):
                method = m.group(1) if m is not None else buf[pos : pos + 33].split(b" ", 1)[0]
                side.pending = flag
                self._new_request(method if side.avail else b"", side.avail, g.Framing(), cut=True)
                return
        elif side.avail == 0:
            if self._awaiting:  # its response started inside the gap
                lost = self._awaiting.popleft()
                lost.flags.add(flag)
                lost.resp_done = True
            return
        elif g.is_status_prefix(buf, pos):
            ms = g.STATUS_LINE.match(buf, pos)
            side.pending = flag
            e = self._awaiting[0] if self._awaiting else None
            status = int(ms.group(3)) if ms is not None else 0
            self._new_response(e, side.avail, status=status, cut=True)
            return
        self.stats.skipped_bytes += side.drop_all()

    def _client_eof(self) -> None:
        c = self._c
        self._client_ending = True  # no more bytes: nothing may wait for the rest of a line
        self._run()
        if c.state == _PAUSED:
            c.state = _HEAD
            self._run()
        if c.state in _BODY_STATES and c.entry is not None:
            e = c.entry
            if not (e.expect_continue and e.response is not None and c.body_seen == 0):
                c.msg_flags.add(Flag.REQUEST_TRUNCATED)
            self._end_request()
        elif c.state == _HEAD and c.avail:
            if g.REQUEST_LINE.match(c.buf, c.pos) or (
                c.avail < self.config.max_line_bytes and g.is_request_prefix(c.buf, c.pos)
            ):
                method = c.buf[c.pos :].split(b" ", 1)[0]
                c.pending = Flag.REQUEST_TRUNCATED
                self._new_request(method, c.avail, g.Framing(), cut=True)
            else:
                c.skip(c.avail, self.stats)
        elif c.state == _RESYNC:
            c.skip(c.avail, self.stats)
        if c.state != _TUNNEL:
            self.stats.skipped_bytes += c.drop_all()
        else:
            self.stats.tunnel_bytes += c.drop_all()
        c.state = _ENDED if c.state != _TUNNEL else _TUNNEL
        c.eof = True

    def _server_eof(self, seen: bool = True) -> None:
        s = self._s
        s.eof = True  # also releases server bytes held for an incomplete request
        self._run()
        if s.state == _CLOSE and s.entry is not None:
            if not seen:  # no FIN or RST: the capture ended, not necessarily the body
                s.msg_flags.add(Flag.RESPONSE_TRUNCATED)
            self._end_response()
        elif s.state in _BODY_STATES and s.entry is not None:
            s.msg_flags.add(Flag.RESPONSE_TRUNCATED)
            self._end_response()
        elif s.state == _HEAD and s.avail:
            if g.STATUS_LINE.match(s.buf, s.pos) or (
                s.avail < self.config.max_line_bytes and g.is_status_prefix(s.buf, s.pos)
            ):
                s.pending = Flag.RESPONSE_TRUNCATED
                e = self._awaiting[0] if self._awaiting else None
                ms = g.STATUS_LINE.match(s.buf, s.pos)
                status = int(ms.group(3)) if ms is not None else 0
                self._new_response(e, s.avail, status=status, cut=True)
            else:
                s.skip(s.avail, self.stats)
        elif s.state == _RESYNC:
            s.skip(s.avail, self.stats)
        if s.state == _TUNNEL:
            self.stats.tunnel_bytes += s.drop_all()
        else:
            self.stats.skipped_bytes += s.drop_all()
            s.state = _ENDED
