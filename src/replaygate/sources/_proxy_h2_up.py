"""The upstream side of an HTTP/2 client connection: HTTP/2 or HTTP/1.1.

* :class:`H2Upstream`: one upstream connection per client connection (like the HTTP/1
  path), streams multiplexed on it (``h2`` client side). h2c by prior knowledge for an
  ``http://`` upstream, ALPN for ``https://``: with ``--upstream-http2`` ALPN must choose
  ``h2``; without it, ``h2`` is offered first and an upstream that picks ``http/1.1`` gets
  HTTP/1.1 from then on (learned once per proxy). Request DATA goes out as the upstream's
  windows allow; response DATA is acknowledged to the upstream only once the client took it.
* ``H1Pool`` (:mod:`._proxy_h2_h1`): HTTP/1.1 connections (``h11`` client side), one
  stream at a time each, kept alive and reused; request fields translated by
  :mod:`._h2_fields`. A request body without ``content-length`` goes chunked, so request
  trailers cross too.

Both give the client connection the same small interface (``Upstream``): open, send_data,
end_request, buffered, consumed, pause/resume, cancel, finished, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from ._h2_fields import is_grpc
from ._proxy_conn import _nodelay

if TYPE_CHECKING:
    from ._proxy_h2 import H2Conn
    from ._proxy_h2_stream import Stream

__all__ = ["H2Upstream", "Upstream", "connect", "decode_fields", "spawn", "upstream_for"]

_LOW = 64 << 10
_BIG = 1 << 30  # "full": a paused transport
_UP_WINDOW = 1 << 20


class Upstream(Protocol):
    gone: bool

    def open(self, st: Stream, end: bool) -> None: ...
    def send_data(self, st: Stream, data: bytes) -> None: ...
    def end_request(self, st: Stream) -> None: ...
    def buffered(self, st: Stream) -> int: ...
    def consumed(self, st: Stream, n: int) -> None: ...
    def pause(self, st: Stream) -> None: ...
    def resume(self, st: Stream) -> None: ...
    def cancel(self, st: Stream) -> None: ...
    def finished(self, st: Stream) -> None: ...
    def close(self) -> None: ...


def upstream_for(conn: H2Conn, st: Stream) -> Upstream | None:
    """The upstream for a new stream of ``conn`` (None: gRPC to an HTTP/1.1 upstream)."""
    from ._proxy_h2_h1 import H1Pool  # it uses this module's helpers

    if conn.up is None or conn.up.gone:
        if conn.up is not None:
            conn.retired.append(conn.up)
        conn.up = H2Upstream(conn) if conn.front.upstream_http2 else H1Pool(conn)
    if isinstance(conn.up, H1Pool) and is_grpc(st.fields):
        return None
    return conn.up


def decode_fields(headers: Any) -> list[tuple[str, str]]:
    return [
        (
            k.decode("latin-1") if isinstance(k, bytes) else k,
            v.decode("latin-1") if isinstance(v, bytes) else v,
        )
        for k, v in headers
    ]


async def connect(conn: H2Conn, proto: asyncio.Protocol, ctx: ssl.SSLContext | None) -> bool:
    sh = conn.front.sh
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(
            loop.create_connection(
                lambda: proto,
                sh.up_host,
                sh.up_port,
                ssl=ctx,
                server_hostname=sh.up_host if ctx is not None else None,
            ),
            sh.connect_timeout,
        )
    except (OSError, TimeoutError, ssl.SSLError) as e:
        sh.counts["upstream_connect_errors"] += 1
        sh.counts["errors"] += 1
        conn.front.last_connect_error = f"upstream {sh.upstream_url} unreachable: {e}"
        return False
    return True


def spawn(conn: H2Conn, coro: Any) -> None:
    sh = conn.front.sh
    task = asyncio.get_running_loop().create_task(coro)
    sh.connecting.add(task)
    task.add_done_callback(sh.connecting.discard)


# -- HTTP/2 -------------------------------------------------------------------------------------


class _Up:
    """An upstream stream's state (``Stream.up_state``)."""

    def __init__(self, end: bool) -> None:
        self.sid: int | None = None
        self.end = end
        self.end_sent = False
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0
        self.trailers: list[tuple[str, str]] | None = None


class H2Upstream(asyncio.Protocol):
    """One HTTP/2 upstream connection carrying a client connection's streams."""

    def __init__(self, conn: H2Conn) -> None:
        self.conn = conn
        self.front = conn.front
        # the client's fields were validated by h2 on the way in: not again on the way out
        cfg = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(cfg)
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 20,
            },
        )
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self._send_scheduled = False
        self.spoke = False  # the upstream sent something
        self.gone = False
        self.write_paused = False
        self.by_sid: dict[int, Stream] = {}
        self.waiting: deque[Stream] = deque()
        spawn(conn, self._dial())

    async def _dial(self) -> None:
        ctx = self.front.up_ssl_h2 if self.front.sh.up_ssl is not None else None
        if not await connect(self.conn, self, ctx):
            err = self.front.last_connect_error
            if self.front.forced and "no application protocol" in err.lower():
                err = (
                    f"upstream {self.front.sh.upstream_url} did not agree to HTTP/2 (ALPN: no "
                    "h2) and --upstream-http2 asks for it"
                )
            self._fail_all(err)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # everything happens here, not after the connect returns: the upstream's first
        # frames may arrive before that coroutine runs again, and our preface must go first
        self.transport = cast(asyncio.Transport, transport)
        self.front.sh.open_transports += 1
        _nodelay(self.transport)
        if self.gone:
            self.transport.close()
            return
        if self.front.sh.up_ssl is not None:
            sslobj = self.transport.get_extra_info("ssl_object")
            alpn = sslobj.selected_alpn_protocol() if sslobj is not None else None
            if alpn != "h2":
                self._not_h2(alpn)
                return
        self.front.count("h2_upstream_connections")
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_UP_WINDOW - 65535)
        self.ready = True
        self._open_waiting()
        self.send()

    def _not_h2(self, alpn: str | None) -> None:
        assert self.transport is not None
        self.transport.close()
        self.gone = True
        if self.front.forced:
            self._fail_all(
                f"upstream {self.front.sh.upstream_url} did not agree to HTTP/2 "
                f"(ALPN chose {alpn or 'nothing'}) and --upstream-http2 asks for it"
            )
            return
        self.front.upstream_http2 = False  # learned: this upstream speaks HTTP/1.1
        self.front.count("upstream_alpn_http1")
        waiting, self.waiting = list(self.waiting), deque()
        for st in waiting:
            state = cast(_Up, st.up_state)
            st.up = st.up_state = None
            self.conn.reroute(st, state.end, list(state.pending))

    def send(self) -> None:
        """Write what ``h2`` has for the upstream, once per turn of the event loop."""
        if not self._send_scheduled:
            self._send_scheduled = True
            asyncio.get_running_loop().call_soon(self._write_out)

    def _write_out(self) -> None:
        self._send_scheduled = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # -- streams out -----------------------------------------------------------------------------
    def open(self, st: Stream, end: bool) -> None:
        st.up_state = _Up(end)
        self.waiting.append(st)
        if self.ready:
            self._open_waiting()
            self.send()

    def _open_waiting(self) -> None:
        while self.waiting and not self.gone:
            st = self.waiting[0]
            state = cast(_Up, st.up_state)
            if self.h2.open_outbound_streams + 1 > self.h2.remote_settings.max_concurrent_streams:
                return
            sid = self.h2.get_next_available_stream_id()
            end_now = state.end and not state.pending and not st.req_trailers
            try:
                self.h2.send_headers(sid, st.fields, end_stream=end_now)
            except h2.exceptions.ProtocolError as e:
                self.waiting.popleft()
                self.front.count("h2_untranslatable")
                st.on_error(f"cannot forward this request over HTTP/2: {e}")
                continue
            self.waiting.popleft()
            state.sid, state.end_sent = sid, end_now
            self.by_sid[sid] = st
            st.forwarded = True
            self._flush(st)

    def _flush(self, st: Stream) -> None:
        state = st.up_state
        if not isinstance(state, _Up) or state.sid is None or state.end_sent:
            return
        try:
            self._send_body(st, state, state.sid)
        except h2.exceptions.ProtocolError:
            # the upstream closed the stream (its RST_STREAM is in the same batch of events,
            # or came first): nothing more goes out on it
            state.pending.clear()
            state.pending_bytes = 0
            state.end_sent = True
        self.send()
        if state.pending_bytes < _LOW:
            st.up_drained()

    def _send_body(self, st: Stream, state: _Up, sid: int) -> None:
        while state.pending:
            room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if room <= 0:
                break
            chunk = state.pending[0]
            if len(chunk) > room:
                state.pending[0] = chunk[room:]
                chunk = chunk[:room]
            else:
                state.pending.popleft()
            self.h2.send_data(sid, chunk)
            state.pending_bytes -= len(chunk)
        if not state.pending and state.end:
            state.end_sent = True
            if st.req_trailers:
                self.h2.send_headers(sid, list(st.req_trailers), end_stream=True)
            else:
                self.h2.end_stream(sid)

    def send_data(self, st: Stream, data: bytes) -> None:
        state = st.up_state
        if isinstance(state, _Up):
            state.pending.append(data)
            state.pending_bytes += len(data)
            self._flush(st)

    def end_request(self, st: Stream) -> None:
        state = st.up_state
        if isinstance(state, _Up):
            state.end = True
            self._flush(st)

    def buffered(self, st: Stream) -> int:
        state = st.up_state
        if not isinstance(state, _Up):
            return 0
        return _BIG if self.write_paused else state.pending_bytes

    def consumed(self, st: Stream, n: int) -> None:
        state = st.up_state
        if isinstance(state, _Up) and state.sid is not None and not self.gone:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.acknowledge_received_data(n, state.sid)
            self.send()

    def pause(self, st: Stream) -> None:
        pass  # flow control: what the client has not taken is not acknowledged

    def resume(self, st: Stream) -> None:
        pass

    def cancel(self, st: Stream) -> None:
        state = st.up_state
        if not isinstance(state, _Up):
            return
        if state.sid is None:
            with contextlib.suppress(ValueError):
                self.waiting.remove(st)
            return
        if self.by_sid.pop(state.sid, None) is not None and not self.gone:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.reset_stream(state.sid, h2.errors.ErrorCodes.CANCEL)
            self.send()
        self._open_waiting()

    def finished(self, st: Stream) -> None:
        self.cancel(st)
        st.up_state = None

    # -- upstream bytes --------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.front.sh.counts["bytes_from_upstream"] += len(data)
        if not self.spoke and data[:5] == b"HTTP/":
            self.front.count("h2_protocol_errors")
            self._fail_all(
                f"upstream {self.front.sh.upstream_url} answered in HTTP/1: it does not speak "
                "HTTP/2 by prior knowledge (h2c); drop --upstream-http2"
            )
            return
        self.spoke = True
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.front.count("h2_protocol_errors")
            self.send()
            self._fail_all(f"upstream broke HTTP/2 ({type(e).__name__}: {e})")
            return
        for ev in events:
            self._event(ev)
        self.send()

    def _event(self, ev: Any) -> None:
        sid = getattr(ev, "stream_id", None)
        st = self.by_sid.get(sid) if sid else None
        if isinstance(ev, h2.events.DataReceived):
            padding = ev.flow_controlled_length - len(ev.data)
            if st is None or st.closed:
                padding = ev.flow_controlled_length
            if padding:
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self.h2.acknowledge_received_data(padding, ev.stream_id)
            if st is not None and not st.closed:
                st.on_data(ev.data)
        elif isinstance(ev, h2.events.ResponseReceived) and st is not None:
            st.on_response(decode_fields(ev.headers))
        elif isinstance(ev, h2.events.InformationalResponseReceived) and st is not None:
            st.on_informational(decode_fields(ev.headers))
        elif isinstance(ev, h2.events.TrailersReceived) and st is not None:
            cast(_Up, st.up_state).trailers = decode_fields(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded) and st is not None:
            st.on_end(cast(_Up, st.up_state).trailers)
        elif isinstance(ev, h2.events.StreamReset) and st is not None:
            self.by_sid.pop(ev.stream_id, None)
            st.on_reset(ev.error_code)
        elif isinstance(ev, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            for s in list(self.by_sid.values()):
                self._flush(s)
            self._open_waiting()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self._goaway(ev.last_stream_id or 0)

    def _goaway(self, last: int) -> None:
        self.front.count("h2_goaway_from_upstream")
        self.gone = True  # no new streams here; the next ones get a new connection
        for sid, st in list(self.by_sid.items()):
            if sid > last:
                del self.by_sid[sid]
                st.on_error(
                    "upstream refused the stream (GOAWAY)", h2.errors.ErrorCodes.REFUSED_STREAM
                )
        waiting, self.waiting = list(self.waiting), deque()
        for st in waiting:
            state = cast(_Up, st.up_state)
            st.up = st.up_state = None
            self.conn.reroute(st, state.end, list(state.pending))
        if not self.by_sid and self.transport is not None:
            self.transport.close()

    def _fail_all(self, message: str) -> None:
        self.gone = True
        streams = [*self.by_sid.values(), *self.waiting]
        self.by_sid.clear()
        self.waiting.clear()
        for st in streams:
            st.on_error(message)
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.front.sh.open_transports -= 1
        if exc is not None and not self.conn.closing:
            self.front.sh.counts["errors"] += 1
        self._fail_all("upstream closed the connection")

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        for st in list(self.by_sid.values()):
            st.up_drained()

    def close(self) -> None:
        self.gone = True
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection()
            self._write_out()
            self.transport.close()
