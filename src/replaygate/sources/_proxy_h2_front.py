"""Where an HTTP/2 client connection starts: :class:`H2Front` holds what every HTTP/2
connection of one proxy shares (settings, counters, the upstream choice) and takes TLS
connections whose ALPN chose ``h2``; :class:`Sniffer` reads a cleartext connection's first
bytes and hands it to the HTTP/1 path (``ClientSide``) or to :class:`~._proxy_h2.H2Conn`
(prior knowledge, ``Upgrade: h2c``)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, cast

from ._h2_fields import Sniffed, sniff
from ._proxy_conn import ClientSide, _Shared
from ._proxy_h2 import H2Conn
from ._proxy_h2_stream import GRPC_NEEDS_HTTP2

__all__ = ["GRPC_NEEDS_HTTP2", "H2Front", "Sniffer"]


class H2Front:
    """What every HTTP/2 client connection shares: settings, counters, the upstream choice."""

    def __init__(
        self,
        sh: _Shared,
        *,
        max_streams: int,
        upstream_http2: bool,
        up_tls: bool,
        make_up_ssl: Callable[[list[str]], ssl.SSLContext],
    ) -> None:
        self.sh = sh
        self.max_streams = max_streams
        self.conns: set[Any] = set()  # H2Conn and undecided Sniffer
        # HTTP/2 upstream: forced (--upstream-http2), or offered by ALPN to an https
        # upstream (learned once: an upstream that answers http/1.1 gets HTTP/1.1 from then)
        self.upstream_http2 = upstream_http2 or up_tls
        self.forced = upstream_http2
        self.up_ssl_h2: ssl.SSLContext | None = (
            make_up_ssl(["h2"] if upstream_http2 else ["h2", "http/1.1"]) if up_tls else None
        )
        self.last_connect_error = ""

    def count(self, key: str, n: int = 1) -> None:
        c = self.sh.counts
        c[key] = c.get(key, 0) + n

    def sniffer(self) -> asyncio.Protocol:
        return Sniffer(self)

    def accept_tls(self, transport: asyncio.Transport, early: list[bytes]) -> bool:
        """After the TLS handshake: take the connection if ALPN chose h2."""
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is None or sslobj.selected_alpn_protocol() != "h2":
            return False
        conn = H2Conn(self, transport, scheme="https", via="alpn")
        transport.set_protocol(conn)
        conn.start()
        for chunk in early:
            conn.data_received(chunk)
        early.clear()
        return True

    def drain(self) -> None:
        for c in list(self.conns):
            c.drain()

    def abort(self) -> None:
        for c in list(self.conns):
            self.sh.counts["aborted_on_stop"] += 1
            c.abort()


class Sniffer(asyncio.Protocol):
    """A cleartext connection until its first bytes say HTTP/1 or HTTP/2."""

    def __init__(self, front: H2Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.front.conns.add(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        kind = sniff(self.buf, self.front.sh.limits.max_head)
        if kind == Sniffed.NEED_MORE:
            return
        self.front.conns.discard(self)
        assert self.transport is not None
        buf, self.buf = self.buf, b""
        if kind == Sniffed.HTTP1:
            self._http1(buf)
            return
        conn = H2Conn(self.front, self.transport, scheme="http", via="prior-knowledge")
        self.transport.set_protocol(conn)
        if kind == Sniffed.H2:
            conn.start()
            conn.data_received(buf)
        else:
            conn.via = "upgrade"
            conn.upgrade(buf)

    def _http1(self, buf: bytes) -> ClientSide:
        assert self.transport is not None
        side = ClientSide(self.front.sh)
        self.transport.set_protocol(side)
        side.connection_made(self.transport)
        if buf:
            side.data_received(buf)
        return side

    def eof_received(self) -> bool:
        self.front.conns.discard(self)
        buf, self.buf = self.buf, b""
        return self._http1(buf).eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.conns.discard(self)

    def drain(self) -> None:
        self.abort()  # nothing was asked yet: nothing is owed

    def abort(self) -> None:
        self.front.conns.discard(self)
        if self.transport is not None:
            self.transport.abort()
