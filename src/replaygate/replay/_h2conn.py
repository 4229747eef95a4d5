"""One HTTP/2 connection of the replay client (:mod:`._h2client`): the I/O around an
``h2`` state machine, carrying many streams.

A stream's request is sent as soon as the mux hands it over, its body as the peer's windows
allow (resumed on ``WINDOW_UPDATE``/``SETTINGS``); received data is acknowledged as it
arrives. Writes are batched: what the state machine queued while handling one read, or the
requests handed over in one loop iteration, leave in one write. Results are delivered
through the mux, always from a later loop callback.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from ..protocol import h2msg
from ._h2convert import Fields
from ._h2lazy import defer_frame_reprs
from .client import MAX_INTERIM, Result

if TYPE_CHECKING:
    from ._h2client import H2Mux

__all__ = ["CONN_WINDOW", "STREAM_WINDOW", "H2Conn", "Stream"]

_perf_ns = time.perf_counter_ns
_time_ns = time.time_ns

STREAM_WINDOW = 1 << 24
CONN_WINDOW = 1 << 30
_CANCEL = h2.errors.ErrorCodes.CANCEL
defer_frame_reprs()  # h2 builds a repr of every received frame for a log line nobody reads
_REFUSED = h2.errors.ErrorCodes.REFUSED_STREAM


class Stream:
    """One request and what came back so far."""

    __slots__ = (
        "body",
        "body_pos",
        "cb",
        "chunks",
        "deadline",
        "fields",
        "head",
        "interim",
        "res",
        "resp_trailers",
        "sid",
        "size",
        "trailers",
        "tries",
    )

    def __init__(
        self, fields: Fields, body: bytes, trailers: Fields | None, cb: Callable[[Result], None]
    ) -> None:
        self.fields = fields
        self.body = body
        self.trailers = trailers
        self.cb = cb
        self.res = Result()
        self.sid = 0
        self.body_pos = 0
        self.head: list[tuple[bytes, bytes]] | None = None
        self.resp_trailers: list[tuple[bytes, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.interim: list[bytes] = []
        self.deadline = 0.0
        self.tries = 0


def _text(fields: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]


def _interim_head(fields: list[tuple[bytes, bytes]]) -> bytes:
    status = b"100"
    lines = [b""]
    for k, v in fields:
        if k == b":status":
            status = v
        elif not k.startswith(b":"):
            lines.append(k + b": " + v)
    return b"HTTP/2 " + status + b"\r\n".join(lines) + b"\r\n\r\n"


class H2Conn(asyncio.Protocol):
    """One HTTP/2 connection carrying many streams; owned by its :class:`H2Mux`."""

    def __init__(self, mux: H2Mux) -> None:
        self.mux = mux
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                # our fields are already lower-case and free of connection-specific ones
                # (_h2convert); what the server answers is recorded as it came
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=False,
            )
        )
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: mux.max_header,
            },
        )
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Stream] = {}
        self.blocked: dict[int, Stream] = {}  # streams whose body waits for a window
        self.closed = False
        self.draining = False  # GOAWAY received or sent: no new streams
        self.answered = 0  # streams completed on this connection
        self.closed_here = False  # closed by us: nothing in flight is sent again
        self.alpn_refused = False  # TLS without ALPN h2: not a byte of HTTP/2 was sent
        self.ready = False
        # set by the mux while connecting: None once the server's SETTINGS came, else the
        # error kind of a connection that ended before (a target that is not HTTP/2)
        self.settled: asyncio.Future[str | None] | None = None
        self._flush_soon = False

    # -- capacity --------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        if self.closed or self.draining or not self.ready:
            return 0
        limit: int = min(self.mux.streams, self.h2.remote_settings.max_concurrent_streams)
        return limit - len(self.streams)

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.mux.tracker.open.add(self)
        if self.mux.target.tls:
            sslobj = transport.get_extra_info("ssl_object")
            if sslobj is None or sslobj.selected_alpn_protocol() != "h2":
                self.alpn_refused = True  # not a byte of HTTP/2 to a server that did not agree
                return
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONN_WINDOW - 65535)
        self.transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            for ev in self.h2.receive_data(data):
                t = type(ev)
                if t is h2.events.DataReceived:
                    self._on_data(cast(h2.events.DataReceived, ev))
                elif t is h2.events.ResponseReceived:
                    self._on_head(cast(h2.events.ResponseReceived, ev))
                elif t is h2.events.StreamEnded:
                    st = self.streams.get(cast(h2.events.StreamEnded, ev).stream_id)
                    if st is not None:
                        self._finish_ok(st)
                elif t is h2.events.TrailersReceived:
                    tr = cast(h2.events.TrailersReceived, ev)
                    st = self.streams.get(tr.stream_id)
                    if st is not None:
                        st.resp_trailers = list(tr.headers)
                else:
                    self._on_other(ev)
        except h2.exceptions.H2Error:
            # not HTTP/2, or a peer that broke the protocol: nothing on it can be trusted
            if not self.ready:
                self._settle("not_http2")
            self.mux.stats.http2["protocol_error"] += 1
            self._fail_all("bad_response", retry=False)
            self._flush()
            self.close()
            return
        self._flush()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.mux.tracker.open.discard(self)
        self.mux.tracker.waiting.discard(self)
        kind = "closed"
        if isinstance(exc, ConnectionResetError):
            kind = "reset"
        elif isinstance(exc, ssl.SSLError):
            kind = "tls"
        # closed before its SETTINGS: the target did not take the HTTP/2 preface
        self._settle("not_http2" if kind == "closed" else kind)
        self.mux.conn_gone(self)
        self._fail_all(kind, retry=not self.closed_here)
        self.mux.refill()

    # -- events ----------------------------------------------------------------------------
    def _on_other(self, ev: Any) -> None:
        if isinstance(ev, h2.events.StreamReset):
            st = self.streams.get(ev.stream_id)
            if st is None:
                return
            counts = self.mux.stats.http2
            if ev.error_code == _REFUSED and not st.res.received_any:
                counts["refused_stream"] += 1
                self._retry_or_fail(st, "stream_reset")
            else:
                counts["rst_stream"] += 1
                self._finish_error(st, "stream_reset")
        elif isinstance(ev, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            if self.blocked:
                for st in list(self.blocked.values()):
                    self._send_body(st)
            if isinstance(ev, h2.events.RemoteSettingsChanged) and not self.ready:
                self.ready = True
                self._settle(None)
                self.mux.conn_ready(self)
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.res.received_any = True
                st.interim.append(_interim_head(ev.headers))
                st.size += sum(len(k) + len(v) + 32 for k, v in ev.headers)
                if len(st.interim) > MAX_INTERIM or st.size > self.mux.max_header:
                    self._cancel(st, "headers_too_large")
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.mux.stats.http2["goaway"] += 1
            self.draining = True
            self.mux.conn_gone(self)
            last = ev.last_stream_id or 0  # h2 types it Optional; a GOAWAY frame always has it
            for st in list(self.streams.values()):
                if st.sid > last:  # never processed: safe to send again
                    self._retry_or_fail(st, "closed")
            if ev.error_code:
                self._fail_all("closed", retry=False)
            if not self.streams:
                self.close()
            self.mux.refill()

    def _on_head(self, ev: h2.events.ResponseReceived) -> None:
        st = self.streams.get(ev.stream_id)
        if st is None:
            return
        st.res.received_any = True
        st.head = list(ev.headers)
        st.size += sum(len(k) + len(v) + 4 for k, v in st.head) + 16
        if st.size > self.mux.max_header:
            self._cancel(st, "headers_too_large")

    def _on_data(self, ev: h2.events.DataReceived) -> None:
        n = ev.flow_controlled_length
        if n:
            self.h2.acknowledge_received_data(n, ev.stream_id)
        st = self.streams.get(ev.stream_id)
        if st is None:
            return
        data = ev.data
        st.size += len(data)
        if st.size > self.mux.max_response:
            keep = len(data) - (st.size - self.mux.max_response)
            st.chunks.append(data[: max(0, keep)])
            st.res.truncated = True
            self._reset(st.sid)
            self._finish_ok(st)
            return
        st.chunks.append(data)

    # -- streams ---------------------------------------------------------------------------
    def start(self, st: Stream) -> None:
        """Open a stream for ``st`` (the caller checked :attr:`capacity`)."""
        h = self.h2
        try:
            sid = h.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            # 2^30 streams on one connection (a long soak): a new connection takes over
            self.draining = True
            self.mux.stats.http2["stream_ids_used_up"] += 1
            self.mux.conn_gone(self)
            if not self.streams:
                self.close()
            self.mux.submit(st)
            return
        st.sid = sid
        st.deadline = time.monotonic() + self.mux.timeout
        self.streams[sid] = st
        if len(self.streams) == 1:
            self.mux.tracker.waiting.add(self)
        res = st.res
        res.sent_ns = _time_ns()
        res.sent_perf = _perf_ns()
        end = not st.body and st.trailers is None
        try:
            h.send_headers(sid, st.fields, end_stream=end)
        except h2.exceptions.H2Error:  # fields the encoder refuses: this request only
            self._done(st)
            st.res.error = "bad_request"
            st.res.done_perf = _perf_ns()
            self.mux.deliver(st)  # (no pull: the caller is starting streams already)
            return
        if not end:
            self._send_body(st)

    def _send_body(self, st: Stream) -> None:
        h = self.h2
        sid = st.sid
        body = st.body
        n = len(body)
        try:
            while st.body_pos < n:
                room = min(h.local_flow_control_window(sid), h.max_outbound_frame_size)
                if room <= 0:
                    self.blocked[sid] = st
                    return
                chunk = body[st.body_pos : st.body_pos + room]
                st.body_pos += len(chunk)
                h.send_data(sid, chunk, end_stream=st.body_pos >= n and st.trailers is None)
            self.blocked.pop(sid, None)
            if st.trailers is not None:
                h.send_headers(sid, st.trailers, end_stream=True)
            elif not n:
                h.end_stream(sid)
        except h2.exceptions.StreamClosedError:
            self.blocked.pop(sid, None)  # the server answered (or reset) before the body ended

    def flush_soon(self) -> None:
        """Write what the h2 state machine has queued once this loop iteration is done (the
        requests handed over in one iteration leave in one write)."""
        if not self._flush_soon:
            self._flush_soon = True
            self.mux.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _done(self, st: Stream) -> None:
        self.streams.pop(st.sid, None)
        if self.blocked.pop(st.sid, None) is not None:
            # answered before its body was all sent: close our side too, or the stream
            # would keep counting against the server's concurrency limit
            self._reset(st.sid)
        if not self.streams:
            self.mux.tracker.waiting.discard(self)
            if self.draining:
                self.close()

    def _finish_ok(self, st: Stream) -> None:
        self._done(st)
        self.answered += 1
        res = st.res
        res.done_perf = _perf_ns()
        head = st.head
        if head is None:
            res.error = "bad_response"
        else:
            try:
                resp = h2msg.build_response(
                    _text(head),
                    b"".join(st.chunks),
                    None if st.resp_trailers is None or res.truncated else _text(st.resp_trailers),
                )
            except h2msg.FieldError:
                res.error = "bad_response"
            else:
                res.raw = resp.raw
                res.head_len = resp.head_len
                res.status = resp.status
                res.interim = tuple(st.interim)
        self.mux.deliver(st)
        self.mux.pull(self)

    def _finish_error(self, st: Stream, kind: str) -> None:
        self._done(st)
        st.res.error = kind
        st.res.done_perf = _perf_ns()
        self.mux.deliver(st)
        self.mux.pull(self)

    def _reset(self, sid: int) -> None:
        """Cancel stream ``sid`` (nothing to do when it has ended already)."""
        if not self.closed:
            try:
                self.h2.reset_stream(sid, _CANCEL)
            except h2.exceptions.H2Error:
                pass

    def _cancel(self, st: Stream, kind: str) -> None:
        self._reset(st.sid)
        self._finish_error(st, kind)

    def _retry_or_fail(self, st: Stream, kind: str) -> None:
        self._done(st)
        if st.tries == 0 and not self.mux.closed:
            st.tries += 1
            st.res = Result()
            st.head = None
            st.resp_trailers = None
            st.chunks = []
            st.size = 0
            st.interim = []
            st.body_pos = 0
            self.mux.stats.retries += 1
            self.mux.stats.http2["retried"] += 1
            self.mux.submit(st)
        else:
            st.res.error = kind
            st.res.done_perf = _perf_ns()
            self.mux.deliver(st)

    def _fail_all(self, kind: str, retry: bool) -> None:
        for st in list(self.streams.values()):
            unprocessed = not st.res.received_any and self.answered > 0
            if retry and unprocessed:
                self._retry_or_fail(st, kind)
            else:
                self._done(st)
                st.res.error = kind
                st.res.done_perf = _perf_ns()
                self.mux.deliver(st)

    def _settle(self, kind: str | None) -> None:
        f = self.settled
        if f is not None and not f.done():
            f.set_result(kind)

    def check_timeout(self, now: float) -> None:
        """Called by the engine's sweeper: cancel the streams past their deadline."""
        late = [st for st in self.streams.values() if now >= st.deadline]
        for st in late:
            self._cancel(st, "timeout")
        if late:
            self._flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.closed_here = True
        self.draining = True
        t = self.transport
        if t is not None and not t.is_closing():
            try:
                self.h2.close_connection()
                t.write(self.h2.data_to_send())
            except h2.exceptions.H2Error:
                pass
            t.close()

    def abort(self) -> None:
        self.closed = True
        self.closed_here = True
        if self.transport is not None:
            self.transport.abort()
