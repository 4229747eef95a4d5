"""Fuzz targets for the proxy's HTTP/2 side.

* ``proxy_h2_sniff``: what a cleartext connection's first bytes are. Never raises, and a
  decision, once made, stays the same however many bytes follow (the proxy decides once).
* ``proxy_h2_conn``: a client connection (``H2Conn``) fed the client preface and arbitrary
  bytes in arbitrary cuts, with an in-memory upstream that echoes each request body back.
  Never raises; everything written to the client is valid HTTP/2 framing from ``h2``; every
  recorded exchange is an HTTP/2 one whose request is one the client opened; on close no
  stream is left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection

from replaygate.model import Exchange
from replaygate.protocol.h1rules import Limits
from replaygate.protocol.http2 import PREFACE
from replaygate.sources._h2_fields import Sniffed, sniff
from replaygate.sources._proxy_h2 import H2Conn
from replaygate.sources._proxy_h2_front import H2Front
from replaygate.sources._proxy_h2_stream import Stream

__all__ = ["SEEDS", "TARGETS"]


def fuzz_proxy_h2_sniff(data: bytes) -> None:
    decided: str | None = None
    for end in range(0, len(data) + 1, max(1, len(data) // 16)):
        kind = sniff(data[:end], 300)
        if decided is not None:
            assert kind == decided, (decided, kind, end)
        elif kind != Sniffed.NEED_MORE:
            decided = kind
        if kind == Sniffed.H2:
            assert data.startswith(PREFACE)
        if kind == Sniffed.NEED_MORE:
            assert end <= 300 + 4 or data[:end].startswith(PREFACE[: min(end, 24)])


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        self.out.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


class _EchoUpstream:
    """Answers 200 at once and echoes the request body; trailers echo the request's."""

    gone = False

    def open(self, st: Stream, end: bool) -> None:
        st.forwarded = True
        st.on_response([(":status", "200"), ("x-echo", "1")])
        if end:
            st.on_end(None)

    def send_data(self, st: Stream, data: bytes) -> None:
        st.on_data(data)

    def end_request(self, st: Stream) -> None:
        st.on_end(st.req_trailers)

    def buffered(self, st: Stream) -> int:
        return 0

    def consumed(self, st: Stream, n: int) -> None:
        pass

    def pause(self, st: Stream) -> None:
        pass

    def resume(self, st: Stream) -> None:
        pass

    def cancel(self, st: Stream) -> None:
        pass

    def finished(self, st: Stream) -> None:
        pass

    def close(self) -> None:
        pass


class _Sh:
    def __init__(self, out: list[Exchange]) -> None:
        self.limits = Limits(max_line=256, max_head=2048)
        self.counts: dict[str, int] = {"connections": 0, "active_connections": 0,
                                       "bytes_from_clients": 0, "requests_without_response": 0,
                                       "rejected_requests": 0, "closed_idle_on_stop": 0}  # fmt: skip
        self.record = out.append
        self.open_transports = 0
        self.max_record = 4096
        self.up_ssl = None


def fuzz_proxy_h2_conn(data: bytes) -> None:
    out: list[Exchange] = []
    sh: Any = _Sh(out)
    front = H2Front(sh, max_streams=8, upstream_http2=False, up_tls=False, make_up_ssl=None)  # type: ignore[arg-type]
    tr = _Transport()
    conn = H2Conn(front, tr, scheme="http", via="prior-knowledge")
    conn.up = _EchoUpstream()  # type: ignore[assignment]
    conn.start()
    step = (data[0] % 61 + 1) if data else 1
    stream = PREFACE + data
    for i in range(0, len(stream), step):
        conn.data_received(stream[i : i + step])
        if tr.closed:
            break
    conn.close()
    assert not conn.streams
    assert sh.counts["active_connections"] == 0
    # what the client got parses as HTTP/2 from a server
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    try:
        client.receive_data(b"".join(tr.out))
    except h2.exceptions.ProtocolError:
        pass  # our answers to streams the client never opened properly: fine for the client
    for ex in out:
        assert ex.request.version == "HTTP/2"
        assert ex.meta["h2.stream"].isdigit() and int(ex.meta["h2.stream"]) % 2 == 1


def _client_bytes(*streams: tuple[list[tuple[str, str]], bytes, bool]) -> bytes:
    # seeds include odd requests (CONNECT with a path) that newer h2 refuses to send
    cfg = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False)
    c = h2.connection.H2Connection(cfg)
    c.initiate_connection()
    for fields, body, reset in streams:
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, fields, end_stream=not body)
        if body:
            c.send_data(sid, body, end_stream=not reset)
        if reset:
            c.reset_stream(sid)
    c.close_connection()
    return c.data_to_send()[len(PREFACE) :]


_GET = [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/x")]
_POST = [(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/p"),
         ("content-type", "application/grpc")]  # fmt: skip
_CONNECT = [(":method", "CONNECT"), (":scheme", "http"), (":authority", "a:443"), (":path", "/")]

TARGETS: dict[str, Callable[[bytes], None]] = {
    "proxy_h2_sniff": fuzz_proxy_h2_sniff,
    "proxy_h2_conn": fuzz_proxy_h2_conn,
}

SEEDS: dict[str, list[bytes]] = {
    "proxy_h2_sniff": [
        PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        b"PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n",
    ],
    "proxy_h2_conn": [
        _client_bytes((_GET, b"", False)),
        _client_bytes((_GET, b"", False), (_POST, b"\x00\x00\x00\x00\x02hi" * 50, False)),
        _client_bytes((_POST, b"x" * 5000, True), (_CONNECT, b"", False)),
        _client_bytes(*[(_GET, b"", False)] * 12),
    ],
}
