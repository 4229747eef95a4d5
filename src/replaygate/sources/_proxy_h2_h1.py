"""HTTP/1.1 upstream of an HTTP/2 client connection: a pool of keep-alive connections
(``h11`` client side), one stream at a time each. Request fields are translated by
:mod:`._h2_fields`; a request body without ``content-length`` goes chunked, so request
trailers cross too; the answer comes back as HTTP/2 fields (trailers of a chunked answer
included). See :mod:`._proxy_h2_up` for the interface both upstreams give."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, cast

import h11

from ._h2_fields import h1_request_head, h2_response_fields
from ._proxy_conn import _nodelay
from ._proxy_h2_up import connect, decode_fields, spawn

if TYPE_CHECKING:
    from ._proxy_h2 import H2Conn
    from ._proxy_h2_stream import Stream

__all__ = ["H1Pool"]

_BIG = 1 << 30  # "full": a paused transport


class _H1Conn(asyncio.Protocol):
    def __init__(self, pool: H1Pool) -> None:
        self.pool = pool
        limit = max(64 << 10, pool.conn.front.sh.limits.max_head * 2)
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=limit)
        self.transport: asyncio.Transport | None = None
        self.held: list[bytes] = []
        self.st: Stream | None = None
        self.chunked = False
        self.write_paused = False
        self.dead = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pool.conn.front.sh.open_transports += 1
        _nodelay(self.transport)
        if self.dead:  # its stream was cancelled while connecting
            self.held.clear()
            self.transport.close()
            return
        if self.st is not None:
            self.st.forwarded = True
        for chunk in self.held:
            self.transport.write(chunk)
        self.held.clear()

    def send(self, event: Any) -> None:
        data = self.h11.send(event)
        if not data:
            return
        if self.transport is None:
            self.held.append(data)
        elif not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.pool.conn.front.sh.counts["bytes_from_upstream"] += len(data)
        self.h11.receive_data(data)
        self._events()

    def eof_received(self) -> bool:
        self.h11.receive_data(b"")
        self._events()
        return False

    def _events(self) -> None:
        while self.st is not None:
            st = self.st
            try:
                ev = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                self.pool.conn.front.sh.counts["unframed_responses"] += 1
                self._fail(f"upstream answered with a broken HTTP/1.1 response ({e})")
                return
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                return
            if isinstance(ev, h11.InformationalResponse):
                if ev.status_code != 101:
                    st.on_informational(
                        h2_response_fields(ev.status_code, decode_fields(ev.headers))
                    )
            elif isinstance(ev, h11.Response):
                st.on_response(h2_response_fields(ev.status_code, decode_fields(ev.headers)))
            elif isinstance(ev, h11.Data):
                st.on_data(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                trailers = h2_response_fields(0, decode_fields(ev.headers))[1:]
                st.on_end(trailers or None)
                self._cycle()
            elif isinstance(ev, h11.ConnectionClosed):
                self._fail("upstream closed the connection before answering")
                return

    def _cycle(self) -> None:
        """Both messages done: the connection serves the next stream (or closes)."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.st = None
            self.h11.start_next_cycle()
            self.pool.release(self)
        elif self.h11.our_state is not h11.SEND_BODY and h11.MUST_CLOSE in (
            self.h11.our_state,
            self.h11.their_state,
        ):
            self.st = None
            self.close()

    def _fail(self, message: str) -> None:
        st, self.st = self.st, None
        self.close()
        if st is not None:
            st.on_error(message)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.pool.conn.front.sh.open_transports -= 1
        self.dead = True
        self.pool.forget(self)
        if self.st is not None:
            self._fail("upstream closed the connection")

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.st is not None:
            self.st.up_drained()

    def close(self) -> None:
        self.dead = True
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.close()


class H1Pool:
    """HTTP/1.1 connections for one HTTP/2 client connection: a stream per connection."""

    gone = False

    def __init__(self, conn: H2Conn) -> None:
        self.conn = conn
        self.idle: list[_H1Conn] = []
        self.busy: set[_H1Conn] = set()
        self.closed = False

    def _conn_of(self, st: Stream) -> _H1Conn | None:
        c = st.up_state
        return c if isinstance(c, _H1Conn) else None

    def open(self, st: Stream, end: bool) -> None:
        sh = self.conn.front.sh
        method, target, headers = h1_request_head(st.fields)
        if not headers[0][1]:
            headers[0] = ("host", f"{sh.up_host}:{sh.up_port}")
        chunked = not end and not any(k == "content-length" for k, _ in headers)
        if chunked:
            headers.append(("transfer-encoding", "chunked"))
        while self.idle:
            c = self.idle.pop()
            if not c.dead and c.transport is not None and not c.transport.is_closing():
                break
        else:
            c = _H1Conn(self)
            spawn(self.conn, self._connect(c, st))
        self.busy.add(c)
        c.st, c.chunked = st, chunked
        st.up_state = c
        if c.transport is not None:
            st.forwarded = True
        try:
            c.send(h11.Request(method=method, target=target, headers=headers))
            if end:
                c.send(h11.EndOfMessage())
        except h11.LocalProtocolError as e:
            self._refuse(c, st, e)

    async def _connect(self, c: _H1Conn, st: Stream) -> None:
        front = self.conn.front
        if not await connect(self.conn, c, front.sh.up_ssl):
            c.dead = True
            self.busy.discard(c)
            if c.st is st:
                c.st = None
                st.on_error(front.last_connect_error)
            return
        if self.closed or c.dead:
            c.close()
        elif c.st is st:
            st.up_drained()

    def _refuse(self, c: _H1Conn, st: Stream, e: Exception) -> None:
        self.conn.front.count("h2_untranslatable")
        c.st = None
        c.close()
        st.forwarded = False
        st.on_error(f"cannot forward this request as HTTP/1.1: {e}")

    def send_data(self, st: Stream, data: bytes) -> None:
        c = self._conn_of(st)
        if c is None or c.st is not st:
            return
        try:
            c.send(h11.Data(data=data))
        except h11.LocalProtocolError as e:
            self._refuse(c, st, e)

    def end_request(self, st: Stream) -> None:
        c = self._conn_of(st)
        if c is None or c.st is not st or c.h11.our_state is not h11.SEND_BODY:
            return
        trailers = st.req_trailers or []
        if trailers and not c.chunked:
            self.conn.front.count("h2_trailers_dropped")
            trailers = []
        try:
            c.send(h11.EndOfMessage(headers=[(k, v) for k, v in trailers if k != "te"]))
        except h11.LocalProtocolError as e:
            self._refuse(c, st, e)
            return
        if c.h11.their_state is h11.DONE:
            c._cycle()

    def buffered(self, st: Stream) -> int:
        c = self._conn_of(st)
        if c is None or c.dead:
            return 0
        if c.transport is None:
            return sum(map(len, c.held))
        return _BIG if c.write_paused else c.transport.get_write_buffer_size()

    def consumed(self, st: Stream, n: int) -> None:
        pass

    def pause(self, st: Stream) -> None:
        c = self._conn_of(st)
        if c is not None and c.transport is not None and not c.transport.is_closing():
            c.transport.pause_reading()

    def resume(self, st: Stream) -> None:
        c = self._conn_of(st)
        if c is not None and c.transport is not None and not c.transport.is_closing():
            c.transport.resume_reading()

    def cancel(self, st: Stream) -> None:
        c = self._conn_of(st)
        if c is not None and c.st is st:
            c.st = None  # HTTP/1.1 cannot cancel one request: the connection goes
            c.close()

    def finished(self, st: Stream) -> None:
        self.cancel(st)
        st.up_state = None

    def release(self, c: _H1Conn) -> None:
        self.busy.discard(c)
        if self.closed or c.dead:
            c.close()
        else:
            if c.transport is not None:
                c.transport.resume_reading()
            self.idle.append(c)

    def forget(self, c: _H1Conn) -> None:
        self.busy.discard(c)
        with contextlib.suppress(ValueError):
            self.idle.remove(c)

    def close(self) -> None:
        self.closed = True
        for c in [*self.idle, *self.busy]:
            c.st = None
            c.close()
