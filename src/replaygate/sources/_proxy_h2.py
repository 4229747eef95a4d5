"""HTTP/2 clients of the recording proxy (:class:`H2Conn`): each stream forwarded, and
recorded as one exchange.

How a connection becomes HTTP/2 (:mod:`._proxy_h2_front`): TLS with ALPN ``h2``
(``ClientSide`` hands the connection over after the handshake), or cleartext h2c, decided
from the first bytes by ``Sniffer`` (:func:`~replaygate.sources._h2_fields.sniff`): the
client preface (prior knowledge) or an HTTP/1.1 request with ``Upgrade: h2c`` (answered
``101``, then that request is stream 1, RFC 7540 §3.2). Anything else goes to the HTTP/1
path untouched. A stream's state and its recording are :mod:`._proxy_h2_stream`'s.

Framing and HPACK are the ``h2`` library's (sans-I/O); this module moves bytes and events.
Each stream goes to the upstream through :mod:`._proxy_h2_up` (HTTP/2 multiplexed on one
upstream connection, or HTTP/1.1 on a pool of connections, one stream at a time each).

**Flow control, both ways, bounded.** Client DATA is acknowledged (WINDOW_UPDATE) only once
the upstream took it, so a slow upstream closes the client's window instead of filling
memory. Upstream bytes wait in the stream's ``out`` queue until the client's window lets
them go; past ``_HIGH`` bytes the upstream is no longer read for that stream (HTTP/1: its
connection is paused; HTTP/2: its window is not reopened). The header list is bounded by
``--max-header-size`` (SETTINGS_MAX_HEADER_LIST_SIZE, enforced by the HPACK decoder); what
is recorded of a body is capped like HTTP/1's (flagged ``*_truncated`` beyond).

Counters (created when first needed, next to the HTTP/1 ones): ``h2_connections``,
``h2_streams``, ``h2_resets_from_client`` / ``_from_upstream`` / ``_sent``,
``h2_goaway_from_client`` / ``_from_upstream``, ``h2_protocol_errors``, ``h2_bad_fields``,
``grpc_needs_http2_upstream``...
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11

from ..model import ConnectionId
from ._h2_fields import h2_request_fields, is_grpc
from ._proxy_conn import _nodelay
from ._proxy_h2_stream import GRPC_NEEDS_HTTP2, Stream, decode, error_name, exchange_of
from ._proxy_h2_stream import HIGH as _HIGH
from ._proxy_h2_stream import LOW as _LOW

if TYPE_CHECKING:
    from ._proxy_h2_front import H2Front
    from ._proxy_h2_up import Upstream

__all__ = ["H2Conn"]

_CONN_WINDOW = 1 << 20  # connection receive window offered to clients (bounds buffering)
_MAX_UNREAD = 16 << 20  # bytes for a client that does not read, before it is cut off
_MAX_RESETS = 100  # client resets on one connection before the share of resets is judged
_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


class H2Conn(asyncio.Protocol):
    """One client connection speaking HTTP/2 (server side of ``h2``)."""

    def __init__(self, front: H2Front, transport: asyncio.Transport, *, scheme: str, via: str):
        self.front = front
        self.transport = transport
        self.scheme = scheme
        self.via = via
        sh = front.sh
        # what we send was validated on its way in (h2 on the upstream's HTTP/2 fields; h11
        # and _h2_fields' translation on HTTP/1.1 ones): h2 need not check it again
        cfg = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(cfg)
        self.h2.local_settings = self._settings(front.max_streams)
        self.h2.decoder.max_header_list_size = sh.limits.max_head
        self.streams: dict[int, Stream] = {}
        self.seq = 0
        self.resets = 0
        self.up: Upstream | None = None
        self.retired: list[Upstream] = []  # upstreams that said GOAWAY, finishing streams
        self.closing = False
        self.draining = False
        self.write_paused = False
        self._send_scheduled = False
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        self.cid = ConnectionId(str(peer[0]), int(peer[1]), str(local[0]), int(local[1]))

    # -- setup -----------------------------------------------------------------------------------
    def _settings(self, max_streams: int) -> h2.settings.Settings:
        return h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self.front.sh.limits.max_head,
            },
        )

    def _enforce_streams_ourselves(self) -> None:
        """Our SETTINGS (with MAX_CONCURRENT_STREAMS) are queued: from now on ``h2`` may let
        more streams in, and we refuse the extra ones with RST_STREAM(REFUSED_STREAM), the
        stream error RFC 9113 §5.1.2 allows (``h2`` itself would end the whole connection,
        with the streams in flight)."""
        self.h2.local_settings = self._settings(2**31 - 1)

    def _opened(self) -> None:
        sh = self.front.sh
        _nodelay(self.transport)
        sh.open_transports += 1
        sh.counts["connections"] += 1
        sh.counts["active_connections"] += 1
        self.front.count("h2_connections")
        self.front.conns.add(self)

    def start(self) -> None:
        """Prior knowledge or ALPN: our SETTINGS first, the client's preface comes."""
        self._opened()
        self.h2.initiate_connection()
        self._enforce_streams_ourselves()
        self.h2.increment_flow_control_window(_CONN_WINDOW - 65535)
        self.send()

    def upgrade(self, buf: bytes) -> None:
        """``Upgrade: h2c``: read the HTTP/1.1 request (and its body), answer 101, and make
        it stream 1; the bytes after it are the client's preface."""
        self._opened()
        self.front.count("h2c_upgrades")
        self._h11: h11.Connection | None = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.front.sh.limits.max_head + 1024
        )
        self._up_req: h11.Request | None = None
        self._up_body: list[bytes] = []
        self._upgrade_data(buf)

    def _upgrade_data(self, data: bytes) -> None:
        c = self._h11
        assert c is not None
        c.receive_data(data)
        while True:
            try:
                ev = c.next_event()
            except h11.RemoteProtocolError:
                self.front.sh.counts["rejected_requests"] += 1
                self.transport.write(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                )
                self.close()
                return
            if ev is h11.NEED_DATA:
                return
            if isinstance(ev, h11.Request):
                self._up_req = ev
            elif isinstance(ev, h11.Data):
                self._up_body.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage) or ev is h11.PAUSED:
                break
        req = self._up_req
        assert req is not None
        rest = c.trailing_data[0]
        self._h11 = None
        headers = decode(req.headers)
        settings = next(v for k, v in headers if k == "http2-settings")
        try:
            self.h2.initiate_upgrade_connection(settings.encode("latin-1"))
            self._enforce_streams_ourselves()
        except Exception:  # bad base64 or bad SETTINGS payload: a client error
            self.front.sh.counts["rejected_requests"] += 1
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            )
            self.close()
            return
        self.transport.write(_SWITCHING)
        self.h2.increment_flow_control_window(_CONN_WINDOW - 65535)
        self.send()
        fields = h2_request_fields(
            req.method.decode("latin-1"), req.target.decode("latin-1"), headers, self.scheme
        )
        st = self._new_stream(1, fields)
        body = b"".join(self._up_body)
        st.req_kept, st.req_cut = st.keep(st.req_body, 0, body)
        st.req_ended = True
        self._begin(st, end=not body)
        if body and st.up is not None:
            st.up.send_data(st, body)
        if body and st.up is not None:
            st.up.end_request(st)
        if rest:
            self.data_received(bytes(rest))

    # -- client bytes ----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.front.sh.counts["bytes_from_clients"] += len(data)
        if getattr(self, "_h11", None) is not None:
            self._upgrade_data(data)
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.front.count("h2_protocol_errors")
            self.send()
            self.close()
            return
        for ev in events:
            if self.closing:
                return
            self._event(ev)
        self.send()

    def _event(self, ev: Any) -> None:
        if isinstance(ev, h2.events.RequestReceived):
            if len(self.streams) >= self.front.max_streams or self.draining:
                self.front.count("h2_refused_streams")
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self.h2.reset_stream(ev.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                return
            new = self._new_stream(ev.stream_id, decode(ev.headers))
            self._begin(new, end=ev.stream_ended is not None)
            return
        if isinstance(ev, h2.events.ConnectionTerminated):
            self.front.count("h2_goaway_from_client")
            self.draining = True
            if not self.streams:
                self.close()
            return
        if isinstance(ev, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            sid = getattr(ev, "stream_id", 0)
            for s in list(self.streams.values()):
                if not sid or s.sid == sid:
                    self.flush(s)
            return
        st = self.streams.get(getattr(ev, "stream_id", 0))
        if isinstance(ev, h2.events.DataReceived):
            if st is None or st.closed or st.up is None:
                self._ack_now(ev.stream_id, ev.flow_controlled_length)
                return
            st.req_ts[1] = time.time_ns()
            st.req_kept, cut = st.keep(st.req_body, st.req_kept, ev.data)
            st.req_cut |= cut
            st.unacked += ev.flow_controlled_length
            st.up.send_data(st, ev.data)
            self.ack(st)
        elif isinstance(ev, h2.events.StreamReset):
            self.front.count("h2_resets_from_client")
            self.resets += 1
            if self.resets > _MAX_RESETS and self.resets * 2 > self.seq:
                # "rapid reset" (CVE-2023-44487): streams opened and cancelled at once, each
                # costing an upstream request; the client is told to calm down
                self.front.count("h2_rapid_reset")
                self.h2.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
                self.send()
                self.close()
                return
            if st is not None:
                st.reset = error_name(ev.error_code)
                st.closed = True
                if st.up is not None:
                    st.up.cancel(st)
                self.maybe_done(st, force=True)
        elif st is None:
            return
        elif isinstance(ev, h2.events.TrailersReceived):
            st.req_trailers = decode(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded) and not st.req_ended:
            st.req_ended = True
            st.req_ts[1] = time.time_ns()
            if st.up is not None and not st.closed:
                st.up.end_request(st)
            self.maybe_done(st)

    def _new_stream(self, sid: int, fields: list[tuple[str, str]]) -> Stream:
        self.front.count("h2_streams")
        st = Stream(self, sid, fields, self.seq)
        self.seq += 1
        self.streams[sid] = st
        return st

    def _begin(self, st: Stream, end: bool) -> None:
        """Send the request on: to the upstream, or refused with a clear answer."""
        if end:
            st.req_ended = True
        method = next((v for k, v in st.fields if k == ":method"), "")
        if method == "CONNECT":
            self.front.count("h2_connect_refused")
            self._answer(st, 501, "replaygate proxy: CONNECT over HTTP/2 is not forwarded\n")
            return
        self.reroute(st, end, [])

    def reroute(self, st: Stream, end: bool, pending: list[bytes]) -> None:
        """Give a stream to this connection's upstream (again, after a GOAWAY or when an
        https upstream answered ALPN with http/1.1), with the body bytes it already has."""
        if st.closed or self.closing:
            return
        from ._proxy_h2_up import upstream_for

        up = upstream_for(self, st)
        if up is None:  # HTTP/1.1 upstream and a gRPC call
            self.front.count("grpc_needs_http2_upstream")
            self._grpc_refuse(st)
            return
        st.up = up
        up.open(st, end and not pending)
        for data in pending:
            up.send_data(st, data)
        if end and pending:
            up.end_request(st)

    def ack(self, st: Stream) -> None:
        """Acknowledge the client's DATA once the upstream can take more."""
        if st.unacked and (st.up is None or st.closed or st.up.buffered(st) < _LOW):
            n, st.unacked = st.unacked, 0
            self._ack_now(st.sid, n)
            self.send()

    def _ack_now(self, sid: int, n: int) -> None:
        if n and not self.closing:
            try:
                self.h2.acknowledge_received_data(n, sid)
            except h2.exceptions.ProtocolError:
                pass

    # -- toward the client -------------------------------------------------------------------------
    def send(self) -> None:
        """Write what ``h2`` has for the client, once per turn of the event loop: the
        frames of every stream touched in one turn go out in one write."""
        if self._send_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without a loop (the fuzz target)
            self._write_out()
            return
        self._send_scheduled = True
        loop.call_soon(self._write_out)

    def _write_out(self) -> None:
        self._send_scheduled = False
        data = self.h2.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)
            # a client that sends (PING, SETTINGS, ...) but never reads makes h2 answer into
            # a buffer that only grows: past _MAX_UNREAD it is cut off
            if self.write_paused and self.transport.get_write_buffer_size() > _MAX_UNREAD:
                self.front.count("h2_flood")
                self.abort()

    def _alive(self, st: Stream) -> bool:
        return not (st.closed or self.closing)

    def send_headers(self, st: Stream, fields: list[tuple[str, str]], end: bool) -> None:
        if not self._alive(st):
            return
        try:
            self.h2.send_headers(st.sid, fields, end_stream=end)
        except h2.exceptions.StreamClosedError:
            return  # the client reset it: its StreamReset event follows in this batch
        except h2.exceptions.ProtocolError:
            # a field HTTP/2 cannot carry: the client gets a reset, we count it
            self.front.count("h2_bad_fields")
            self.reset_stream(st, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return
        self.send()

    def flush(self, st: Stream) -> None:
        """Send a stream's queued response bytes as far as the client's windows allow."""
        try:
            sent = self._send_body(st)
        except h2.exceptions.ProtocolError:
            # the client closed the stream (its RST_STREAM is in this batch of events)
            sent, st.resp_sent = st.out_bytes, True
            st.out.clear()
        if sent:
            st.out_bytes -= sent
            if st.up is not None:
                st.up.consumed(st, sent)
        self.send()
        if st.up is not None:
            if st.up_paused and st.out_bytes < _LOW:
                st.up_paused = False
                st.up.resume(st)
            elif not st.up_paused and st.out_bytes > _HIGH:
                st.up_paused = True
                st.up.pause(st)
        if st.resp_sent:
            self.maybe_done(st)

    def _send_body(self, st: Stream) -> int:
        sent = 0
        while st.out and self._alive(st) and not self.write_paused:
            room = min(self.h2.local_flow_control_window(st.sid), self.h2.max_outbound_frame_size)
            if room <= 0:
                break
            chunk = st.out[0]
            if len(chunk) > room:
                st.out[0] = chunk[room:]
                chunk = chunk[:room]
            else:
                st.out.popleft()
            self.h2.send_data(st.sid, chunk)
            sent += len(chunk)
        if st.resp_done and not st.out and not st.resp_sent and self._alive(st):
            st.resp_sent = True
            if not st.headers_sent:
                pass
            elif st.resp_trailers:
                self.h2.send_headers(st.sid, st.resp_trailers, end_stream=True)
            else:
                self.h2.end_stream(st.sid)
        return sent

    def reset_stream(self, st: Stream, code: int) -> None:
        if self._alive(st):
            self.front.count("h2_resets_sent")
            st.reset = error_name(code)
            try:
                self.h2.reset_stream(st.sid, code)
            except h2.exceptions.ProtocolError:
                pass
            self.send()
        st.closed = True
        if st.up is not None:
            st.up.cancel(st)
        self.maybe_done(st, force=True)

    def _answer(self, st: Stream, status: int, text: str) -> None:
        """The proxy's own answer (the upstream gave none): sent, never recorded as a
        response (the exchange, if it was forwarded, is recorded without one)."""
        body = text.encode()
        fields = [(":status", str(status)), ("content-type", "text/plain"),
                  ("content-length", str(len(body)))]  # fmt: skip
        st.resp_done = True
        if self._alive(st) and not st.headers_sent:
            st.headers_sent = True
            self.send_headers(st, fields, end=False)
            st.out.append(body)
            st.out_bytes += len(body)
        self.flush(st)
        self.maybe_done(st)

    def bad_gateway(self, st: Stream, message: str) -> None:
        if is_grpc(st.fields):
            self._grpc_error(st, 14, message)  # UNAVAILABLE
            return
        self._answer(st, 502, f"replaygate proxy: {message}\n")

    def _grpc_refuse(self, st: Stream) -> None:
        self._grpc_error(st, 14, f"replaygate proxy: {GRPC_NEEDS_HTTP2}")

    def _grpc_error(self, st: Stream, code: int, message: str) -> None:
        """A trailers-only gRPC answer: the client's library shows ``message``."""
        fields = [(":status", "200"), ("content-type", "application/grpc"),
                  ("grpc-status", str(code)), ("grpc-message", message.replace("\n", " "))]  # fmt: skip
        st.resp_done = True
        if self._alive(st) and not st.headers_sent:
            st.headers_sent = True
            self.send_headers(st, fields, end=True)
        st.resp_sent = True
        self.maybe_done(st)

    # -- the end of a stream ---------------------------------------------------------------------
    def maybe_done(self, st: Stream, force: bool = False) -> None:
        if self.streams.get(st.sid) is not st:
            return
        if not force and not ((st.req_ended or st.closed) and (st.resp_sent or st.closed)):
            return
        del self.streams[st.sid]
        st.closed = True
        if st.unacked:
            self._ack_now(st.sid, st.unacked)
            st.unacked = 0
        if st.up is not None:
            st.up.finished(st)
        if st.forwarded:
            self._record(st)
        if self.draining and not self.streams:
            self.send()
            self.close()

    def _record(self, st: Stream) -> None:
        ex = exchange_of(st, self.cid, self.scheme, self.via, self.front.count)
        if ex is None:
            return
        if ex.response is None:
            self.front.sh.counts["requests_without_response"] += 1
        self.front.sh.record(ex)

    # -- flow control of the client transport ------------------------------------------------------
    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        for st in list(self.streams.values()):
            self.flush(st)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.sh.open_transports -= 1
        self.close()

    # -- shutdown ----------------------------------------------------------------------------------
    def drain(self) -> None:
        """Stop: no new streams (GOAWAY); close once the streams in flight are answered."""
        if not self.streams:
            self.front.sh.counts["closed_idle_on_stop"] += 1
            self.close()
            return
        if not self.draining:
            self.draining = True
            self.h2.close_connection()
            self.send()

    def close(self) -> None:
        if self.closing:
            return
        self._write_out()  # a GOAWAY or the last frames queued in this turn
        self.closing = True
        self.transport.close()
        for st in list(self.streams.values()):
            st.closed = True
            if st.up is not None:
                st.up.cancel(st)
            self.maybe_done(st, force=True)
        for up in [*self.retired, *([self.up] if self.up is not None else [])]:
            up.close()
        sh = self.front.sh
        sh.counts["active_connections"] -= 1
        self.front.conns.discard(self)

    def abort(self) -> None:
        self.transport.abort()
        self.close()
