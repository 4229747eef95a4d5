"""One proxied connection as two asyncio Protocols (client side and upstream side).

Protocols rather than streams: each chunk is forwarded from ``data_received`` straight to
the other transport, with no coroutine switch per chunk (that is most of a proxy's cost on
small requests). Flow control is explicit: when one side's write buffer passes its high-water
mark (``pause_writing``), the other side stops reading until it drains, so a slow client or
upstream never makes the proxy buffer whole bodies.

A client's bytes are fed to :class:`~replaygate.protocol.h1recorder.ConnectionRecorder`
*before* forwarding (they are checked there, and the response framer must know the request
method when the answer arrives); an upstream's answer goes to the client first and to the
recorder after, so recording adds nothing to the client's wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..model import ConnectionId
from ..protocol.h1recorder import ConnectionRecorder
from ..protocol.h1rules import Limits, error_response

if TYPE_CHECKING:
    from ..formats._gor_exchange import WholeEncoder

__all__ = ["ClientSide"]


def _nodelay(transport: asyncio.Transport) -> None:
    """Small answers must not wait for Nagle's algorithm (a proxy adds a hop per message)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Shared:
    """What every connection needs from the server (set by ProxyServer)."""

    up_host: str
    up_port: int
    up_ssl: ssl.SSLContext | None
    connect_timeout: float
    upstream_url: str
    max_record: int
    limits: Limits
    server_ssl: ssl.SSLContext | None
    tls_handshake_timeout: float
    counts: dict[str, int]
    conns: set[ClientSide]
    open_transports: int = 0  # until connection_lost: shutdown waits for zero
    connecting: set[asyncio.Task[None]]
    record: Callable[[Any], None]
    # the recording's encoder of a connection's plain exchanges, when it has one (a .gor
    # output, no stages): those go to record_encoded as bytes, without an Exchange
    encoder_for: Callable[[ConnectionId], WholeEncoder | None] | None = None
    record_encoded: Callable[[list[bytes]], None]
    # HTTP/2 (``_proxy_h2``): takes a TLS connection whose ALPN chose h2 (with the bytes
    # decrypted early); None when the proxy speaks HTTP/1 only
    h2_accept: Callable[[asyncio.Transport, list[bytes]], bool] | None = None


def _whole_recorder(
    encode: WholeEncoder, record: Callable[[list[bytes]], None]
) -> Callable[[bytes, int, int, bytes, int, int], None]:
    """The recorder's ``emit_whole``: encode the exchange, hand the bytes on."""

    def emit(req: bytes, first: int, last: int, resp: bytes, ts_ns: int, seq: int) -> None:
        record(encode(req, first, last, resp, ts_ns, seq))

    return emit


class _UpstreamSide(asyncio.Protocol):
    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.client.shared.open_transports += 1
        _nodelay(self.transport)

    def data_received(self, data: bytes) -> None:
        c = self.client
        c.shared.counts["bytes_from_upstream"] += len(data)
        ts = time.time_ns()
        # the client first: recording the exchange (framing, encoding) is off its path
        if c.transport is not None and not c.transport.is_closing():
            c.transport.write(data)
        rec = c.rec
        rec.feed_response(data, ts)
        if rec.req._fwd:
            c.forward(rec.take_forward())  # an upgrade answer released held client bytes
        if rec.req.rejected is not None:
            c.refuse()
        elif c.client_eof and rec.idle and not rec.req.tunnelled:
            c.close()

    def eof_received(self) -> bool:
        return False  # upstream finished: close; the client side follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.shared.open_transports -= 1
        if exc is not None and not self.client.closing:
            self.client.shared.counts["errors"] += 1
        self.client.close()

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        c = self.client
        if c.transport is not None and not c.transport.is_closing() and not c.refused:
            c.transport.resume_reading()


class ClientSide(asyncio.Protocol):
    """The accepted client connection; opens its own upstream connection."""

    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.transport: asyncio.Transport | None = None
        self.up: _UpstreamSide | None = None
        self.rec: ConnectionRecorder = ConnectionRecorder(None, shared.record)
        self.client_eof = False
        self.closing = False
        self.refused = False
        self.done: asyncio.Future[None] | None = None
        self._held: list[bytes] = []
        self._early: list[bytes] = []  # TLS: bytes decrypted before start_tls returned
        self._connecting: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sh = self.shared
        sh.open_transports += 1
        if sh.server_ssl is not None:
            # TLS is started here rather than by create_server(ssl=...), whose failed
            # handshakes are swallowed by the event loop (SSLError is an OSError): this way
            # each one is counted. Reading waits for start_tls (the ClientHello is its).
            task = asyncio.get_running_loop().create_task(self._start_tls(transport))
            sh.connecting.add(task)
            task.add_done_callback(sh.connecting.discard)
            return
        self._setup(transport)

    async def _start_tls(self, raw: asyncio.Transport) -> None:
        sh = self.shared
        assert sh.server_ssl is not None
        loop = asyncio.get_running_loop()
        # Bytes that arrived before start_tls (the ClientHello, usually) reached this
        # protocol: hand them to the TLS protocol once start_tls installed it and called its
        # connection_made (scheduled before start_tls first yields: hence two hops).
        loop.call_soon(loop.call_soon, self._replay_hello, raw)
        try:
            tls = await loop.start_tls(
                raw,
                self,
                sh.server_ssl,
                server_side=True,
                ssl_handshake_timeout=sh.tls_handshake_timeout,
            )
        except BaseException as e:
            if not isinstance(e, asyncio.CancelledError):
                sh.counts["tls_handshake_errors"] += 1
            raw.abort()
            loop.call_soon(self._raw_gone)
            if not isinstance(e, Exception):
                raise
            return
        if tls is None or tls.is_closing():
            loop.call_soon(self._raw_gone)
            return
        if sh.h2_accept is not None and sh.h2_accept(tls, self._early):
            return
        self._setup(tls)
        early, self._early = self._early, []
        for chunk in early:
            self.data_received(chunk)

    def _replay_hello(self, raw: asyncio.Transport) -> None:
        data, self._early = b"".join(self._early), []
        if not data or raw.is_closing():
            return
        proto: Any = raw.get_protocol()
        if hasattr(proto, "get_buffer"):  # uvloop's TLS protocol is a BufferedProtocol
            view = memoryview(data)
            while view:
                buf = proto.get_buffer(len(view))
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                proto.buffer_updated(n)
                view = view[n:]
        else:
            proto.data_received(data)

    def _raw_gone(self) -> None:
        self.shared.open_transports -= 1

    def _setup(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        _nodelay(transport)
        sh = self.shared
        sh.counts["connections"] += 1
        sh.counts["active_connections"] += 1
        sh.conns.add(self)
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        conn = ConnectionId(str(peer[0]), int(peer[1]), str(local[0]), int(local[1]))
        enc = sh.encoder_for(conn) if sh.encoder_for is not None else None
        self.rec = ConnectionRecorder(
            conn,
            sh.record,
            max_record=sh.max_record,
            on_tunnel=self._tunnel,
            strict=True,
            limits=sh.limits,
            emit_whole=_whole_recorder(enc, sh.record_encoded) if enc is not None else None,
        )
        loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        transport.pause_reading()
        self._connecting = loop.create_task(self._connect())
        sh.connecting.add(self._connecting)
        self._connecting.add_done_callback(sh.connecting.discard)

    async def _connect(self) -> None:
        sh = self.shared
        loop = asyncio.get_running_loop()
        try:
            _, up = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _UpstreamSide(self),
                    sh.up_host,
                    sh.up_port,
                    ssl=sh.up_ssl,
                    server_hostname=sh.up_host if sh.up_ssl else None,
                ),
                sh.connect_timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as e:
            sh.counts["upstream_connect_errors"] += 1
            sh.counts["errors"] += 1
            self._bad_gateway(e)
            return
        if self.closing:
            assert up.transport is not None
            up.transport.close()
            return
        self.up = up
        assert up.transport is not None
        for chunk in self._held:
            up.transport.write(chunk)
        self._held.clear()
        if self.client_eof and up.transport.can_write_eof():
            up.transport.write_eof()
        if self.transport is not None and not self.transport.is_closing() and not self.refused:
            self.transport.resume_reading()

    def _bad_gateway(self, e: BaseException) -> None:
        body = f"replaygate proxy: upstream {self.shared.upstream_url} unreachable: {e}\n".encode()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        self.close()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            self._early.append(data)
            return
        self.shared.counts["bytes_from_clients"] += len(data)
        rec = self.rec
        fwd = rec.feed_request(data, time.time_ns())
        up = self.up
        if fwd and up is not None and up.transport is not None:
            up.transport.write(fwd)  # what forward() does, inlined: the path of every request
        else:
            self.forward(fwd)
        if rec.req.rejected is not None:
            self.refuse()

    def forward(self, data: bytes) -> None:
        """Send client bytes the framer accepted (held until the upstream is connected)."""
        if not data:
            return
        up = self.up
        if up is None or up.transport is None:
            self._held.append(data)
        else:
            up.transport.write(data)

    def refuse(self) -> None:
        """The client's bytes were refused (ambiguous framing, a limit): read no more; once
        the requests forwarded before have their answers, answer 400/414/431 and close."""
        rejected = self.rec.rejected
        assert rejected is not None
        counts = self.shared.counts
        if not self.refused:
            self.refused = True
            counts["rejected_requests"] += 1
            key = "rejected_" + rejected[1]
            counts[key] = counts.get(key, 0) + 1
            if self.transport is not None and not self.transport.is_closing():
                self.transport.pause_reading()
        if self.closing or not self.rec.answered_before_rejection:
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(error_response(rejected[1]))
        self.close()

    def eof_received(self) -> bool:
        """The client stopped sending: pass the half-close on, keep answering."""
        self.client_eof = True
        up = self.up
        if up is not None and up.transport is not None:
            if up.transport.can_write_eof():
                up.transport.write_eof()
            elif self.rec.idle and not self.rec.req.tunnelled:
                self.close()  # TLS upstream cannot half-close; nothing is owed: done
        return True  # keep our side open for the answers still coming

    def pause_writing(self) -> None:
        if self.up is not None and self.up.transport is not None:
            self.up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self.up
        if up is not None and up.transport is not None and not up.transport.is_closing():
            up.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return  # lost during the TLS handshake: _start_tls accounts for it
        self.shared.open_transports -= 1
        self.close()

    def close(self) -> None:
        """Close both sides once; what was framed is recorded (the rest flagged)."""
        if self.closing:
            return
        self.closing = True
        if self.transport is not None:
            self.transport.close()  # flushes what is buffered for the client
        if self.up is not None and self.up.transport is not None:
            self.up.transport.close()
        sh = self.shared
        if self.up is not None:  # nothing was forwarded without an upstream: record nothing
            self.rec.close(time.time_ns())
            sh.counts["requests_without_response"] += self.rec.without_response
            sh.counts["unframed_responses"] += self.rec.resp.gave_up
        sh.counts["active_connections"] -= 1
        sh.conns.discard(self)
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def abort(self) -> None:
        """Stop now (shutdown after the drain timeout)."""
        if self.transport is not None:
            self.transport.abort()
        if self.up is not None and self.up.transport is not None:
            self.up.transport.abort()
        self.close()

    def _tunnel(self) -> None:
        self.shared.counts["tunnels"] += 1
