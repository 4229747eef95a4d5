"""A small real HTTP/1.1 server and a raw-socket client for capture and proxy tests.

The server speaks keep-alive, pipelining, chunked uploads and downloads, ``Expect:
100-continue``, HEAD, 304 and ``Connection: close``; it runs on 127.0.0.1 or ::1. The client
sends exact bytes over raw sockets and frames what comes back with the proxy's own framer,
so each scenario yields the exchanges a perfect recorder must produce.
"""

from __future__ import annotations

import hashlib
import os
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from replaygate.model import Exchange
from replaygate.protocol.h1recorder import ConnectionRecorder


class _Handler(socketserver.StreamRequestHandler):
    rbufsize = 1 << 16

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(65537)
            while line in (b"\r\n", b"\n"):
                line = self.rfile.readline(65537)
            if not line:
                return
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, target = parts[0], parts[1]
            version = parts[2] if len(parts) > 2 else "HTTP/1.0"
            headers: dict[str, str] = {}
            while True:
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            if headers.get("expect", "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = self._read_body(headers)
            if method == "CONNECT" or "upgrade" in headers:
                ok = (
                    b"200 Connection Established"
                    if method == "CONNECT"
                    else b"101 Switching Protocols"
                )
                extra = (
                    b"" if method == "CONNECT" else b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                )
                self.wfile.write(b"HTTP/1.1 " + ok + b"\r\n" + extra + b"\r\n")
                self._echo()
                return
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            self.wfile.write(_respond(method, target, body, headers, close))
            if close:
                return

    def _echo(self) -> None:
        """After an upgrade: echo bytes until the client closes."""
        while True:
            data = self.rfile.read1(65536)
            if not data:
                return
            self.wfile.write(data)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            out = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(out)
                out.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(headers.get("content-length", "0") or 0)
        return self.rfile.read(n) if n else b""


def _respond(method: str, target: str, body: bytes, headers: dict[str, str], close: bool) -> bytes:
    conn = b"Connection: close\r\n" if close else b""
    if target.startswith("/status/304"):
        return b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n' + conn + b"\r\n"
    if target.startswith("/trailers"):
        data = b"5\r\nhello\r\n0\r\nX-Checksum: 5d41402a\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n"
        return head + conn + b"\r\n" + (b"" if method == "HEAD" else data)
    if target.startswith("/chunked"):
        chunks = [b"first chunk;", b"second;", b"x" * 5000]
        data = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + conn + b"\r\n"
        return head + (b"" if method == "HEAD" else data)
    if target.startswith("/big"):
        n = int(target.split("n=", 1)[1]) if "n=" in target else 100_000
        payload = (hashlib.sha256(target.encode()).digest() * (n // 32 + 1))[:n]
    elif body:
        payload = f"{method} {len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()
    else:
        payload = f"hello {method} {target}\n".encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Req: %s\r\nContent-Length: %d\r\n" % (
        target.encode("latin-1")[:200],
        len(payload),
    )
    return head + conn + b"\r\n" + (b"" if method == "HEAD" else payload)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = True
    request_queue_size = 128


class _TCP6Server(_TCPServer):
    address_family = socket.AF_INET6


class RawHTTPServer:
    """``with RawHTTPServer("::1") as s: s.port``: a threaded HTTP/1.1 server on loopback."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        cls = _TCP6Server if ":" in host else _TCPServer
        self._srv = cls((host, 0), _Handler)
        self.port = int(self._srv.server_address[1])
        self._t = threading.Thread(target=self._srv.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}"

    def __enter__(self) -> RawHTTPServer:
        self._t.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._t.join()


# --------------------------------------------------------------------------------------------
# the client side: exact bytes out, framed exchanges back
# --------------------------------------------------------------------------------------------


@dataclass
class ClientConn:
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    exchanges: list[Exchange] = field(default_factory=list)
    local_port: int = 0


def _req(method: str, target: str, extra: str = "", body: bytes = b"", host: str = "t") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rg-test\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _talk(host: str, port: int, steps: list[bytes | str], expect: int) -> ClientConn:
    """Send ``steps`` (bytes are sent; the string "100" waits for a 100 Continue) and read
    until ``expect`` responses are framed."""
    cc = ClientConn()
    rec = ConnectionRecorder(None, cc.exchanges.append)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect((host, port))
        cc.local_port = int(s.getsockname()[1])

        def recv_some() -> bool:
            data = s.recv(1 << 20)
            if not data:
                return False
            cc.received += data
            rec.feed_response(data, time.time_ns())
            return True

        for step in steps:
            if step == "100":
                while b" 100 Continue\r\n\r\n" not in cc.received:
                    assert recv_some(), "connection closed before 100 Continue"
                continue
            assert isinstance(step, bytes)
            cc.sent += step
            rec.feed_request(step, time.time_ns())
            s.sendall(step)
        while len(cc.exchanges) < expect and recv_some():
            pass
        if len(cc.exchanges) < expect:
            rec.close(time.time_ns())
    assert len(cc.exchanges) == expect, (len(cc.exchanges), expect, bytes(cc.received[:300]))
    return cc


BIG = 20 << 20


def run_scenario(host: str, port: int, *, big: int = BIG) -> list[ClientConn]:
    """The N varied requests of the capture/proxy acceptance tests; returns each connection."""
    big_body = os.urandom(big)
    conns = [
        _talk(
            host,
            port,
            [
                _req("GET", "/"),
                _req("GET", "/big?n=100000"),
                _req("HEAD", "/"),
                _req("GET", "/status/304", 'If-None-Match: "v1"\r\n'),
                _req("GET", "/chunked"),
            ],
            5,
        ),
        _talk(host, port, [_req("POST", "/upload", body=big_body)], 1),
    ]
    chunked_head = _req("POST", "/chunked-upload", "Transfer-Encoding: chunked\r\n")
    conns.append(
        _talk(
            host,
            port,
            [
                chunked_head,
                b"5\r\nhello\r\n",
                b"6;ext=1\r\n world\r\n",
                b"0\r\n\r\n",
                _req("GET", "/after"),
            ],
            2,
        )
    )
    cont_body = os.urandom(1 << 20)
    cont_head = _req("PUT", "/continue", "Expect: 100-continue\r\n", b"")[:-2] + (
        f"Content-Length: {len(cont_body)}\r\n\r\n".encode()
    )
    conns.append(_talk(host, port, [cont_head, "100", cont_body], 1))
    pipelined = b"".join(_req("GET", f"/pipe/{i}") for i in range(10))
    conns.append(_talk(host, port, [pipelined], 10))
    conns.append(_talk(host, port, [_req("GET", "/close", "Connection: close\r\n")], 1))
    conns.append(_talk(host, port, [b"GET /http10 HTTP/1.0\r\nHost: t\r\n\r\n"], 1))
    return conns


SCENARIO_REQUESTS = 21


def _by_conn(recorded: list[Exchange]) -> dict[int, list[Exchange]]:
    out: dict[int, list[Exchange]] = {}
    for ex in recorded:
        assert ex.conn is not None
        out.setdefault(ex.conn.sport, []).append(ex)
    return out


def assert_same(conns: list[ClientConn], recorded: list[Exchange]) -> None:
    """Every exchange the client saw is recorded byte-exact, in order, with latency."""
    got = _by_conn(recorded)
    for cc in conns:
        rec = sorted(got.get(cc.local_port, []), key=lambda e: e.seq)
        assert len(rec) == len(cc.exchanges), cc.exchanges[0].request
        for want, have in zip(cc.exchanges, rec, strict=True):
            assert have.request.raw == want.request.raw
            assert have.response is not None and want.response is not None
            assert have.response.raw == want.response.raw
            assert [i.raw for i in have.interim] == [i.raw for i in want.interim]
            assert have.latency_ns is not None and have.latency_ns >= 0
            assert have.complete, have.flags
    assert sum(len(c.exchanges) for c in conns) == len(recorded)
