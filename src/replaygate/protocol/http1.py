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

The parser is split by concern (h11's model): :mod:`._http1_state` (bounds, counters, the
per-side state), :mod:`._http1_messages` (heads and message boundaries), :mod:`._http1_edges`
(bodies, gaps, desync, ends), :mod:`._http1_fast` (a segment that is one whole message, in
one step) and this module (the public API, driving, returning exchanges).
"""

from __future__ import annotations

import hashlib
from collections import deque

from ..model import ConnectionId, Exchange, Flag, Request, Response
from ._http1_fast import FastPaths
from ._http1_state import ENDED, HEAD, TUNNEL, Entry, ParserConfig, ParserStats, Side

__all__ = ["HTTP1StreamParser", "ParserConfig", "ParserStats"]


class HTTP1StreamParser(FastPaths):
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
        self._c = Side()
        self._s = Side()
        self._order: deque[Entry] = deque()  # entries not yet returned, in request order
        self._awaiting: deque[Entry] = deque()  # entries without a final response yet
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
            if c.state == TUNNEL or c.state == ENDED:
                self.stats.tunnel_bytes += len(data)
            elif self.fast_path and self._fast_request(bytes(data), ts_ns):
                s = self._s
                if s.pos < len(s.buf):
                    self._run()
            else:
                c.feed(bytes(data), ts_ns)
                self._run()
        return self._emit()

    def server_data(self, data: bytes, ts_ns: int) -> list[Exchange]:
        """Bytes the server sent, in stream order."""
        if data and not self._closed and not self._s.eof:
            s = self._s
            if s.state == TUNNEL or s.state == ENDED:
                self.stats.tunnel_bytes += len(data)
            elif self.fast_path and self._fast_response(bytes(data), ts_ns):
                c = self._c
                if c.pos < len(c.buf):
                    self._run()
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

    def _finish(self, e: Entry) -> Exchange:
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
            if s.entry is e and s.state != HEAD:
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
