"""HTTP/2 servers on 127.0.0.1 for the replay tests.

``Hypercorn`` runs a real HTTP/2 server (hypercorn, h2c prior knowledge and h2 over TLS with
ALPN) in a thread, serving a small JSON API whose ``version`` 2 changes exactly two things:
the price of item 3 and the status of ``/api/items/13`` (404 instead of 200, same body).
``/api/login`` issues a new session cookie each time, ``/api/me`` answers 401 without one. Every request
is recorded with the HTTP version it came over.

``RawH2Server`` is an ``h2``-library server driven by a script per path, to make the
misbehaviours a real server rarely shows: ``/goaway`` (on the first connection, GOAWAY after
answering the first stream, later streams unprocessed), ``/refuse`` (RST_STREAM REFUSED_STREAM
once per path), ``/reset`` (RST_STREAM INTERNAL_ERROR after the head), ``/hang`` (never
answers), ``/small-window`` (the server's stream windows are 1 KiB: large bodies need
WINDOW_UPDATEs), ``/early`` (answered before its body arrives, and from then on one stream at
a time), ``/big-head`` (a 2 KB field), anything else 200 with the request body's
length (and the path) as JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import threading
from types import TracebackType
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

__all__ = ["Http11TlsServer", "Hypercorn", "RawH2Server", "tls_certs"]


def _items(version: int, item: int) -> tuple[int, dict[str, Any]]:
    price = 10 * item + (1 if version == 2 and item == 3 else 0)
    status = 404 if version == 2 and item == 13 else 200  # the same body: only the status
    return status, {"id": item, "name": f"item {item}", "price": price, "tags": ["a", "b"]}


def make_app(version: int, seen: list[tuple[str, str, str]]) -> Any:
    sessions: set[str] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path = scope["path"]
        seen.append((scope["http_version"], scope["method"], path))
        status, out = 200, {"ok": True}
        if path.startswith("/api/items/"):
            status, out = _items(version, int(path.rsplit("/", 1)[1]))
        elif path == "/api/login":  # a new session token each time
            token = f"tok{len(sessions)}x{id(sessions) % 100000:05d}zz"
            sessions.add(token)
            head = [
                (b"content-type", b"application/json"),
                (b"set-cookie", b"sid=%s; Path=/" % token.encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": b'{"ok": true}'})
            return
        elif path == "/api/me":
            cookies = [v.decode() for k, v in scope["headers"] if k == b"cookie"]
            sid = next((c.split("=", 1)[1] for c in cookies if c.startswith("sid=")), "")
            status, out = (200, {"user": "u"}) if sid in sessions else (401, {"error": "login"})
        elif path == "/api/echo":
            out = {"len": len(body), "sha": hashlib.sha256(body).hexdigest()[:16]}
        elif path == "/api/big":
            qs = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
            n = int(qs.get("n", "1000"))
            data = (b"x" * 1023 + b"\n") * (n // 1024) + b"y" * (n % 1024)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": data})
            return
        raw = json.dumps(out).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": raw})

    return app


class Hypercorn:
    """hypercorn on 127.0.0.1 serving :func:`make_app` (h2c, or h2/TLS with ``certs``)."""

    def __init__(self, version: int = 1, certs: tuple[str, str] | None = None) -> None:
        self.version = version
        self.certs = certs
        self.seen: list[tuple[str, str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self._fd = self._sock.detach()  # hypercorn owns (and closes) the listening socket
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.certs else 'http'}://127.0.0.1:{self.port}"

    def _run(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        cfg = Config()
        cfg.bind = [f"fd://{self._fd}"]
        if self.certs:
            cfg.certfile, cfg.keyfile = self.certs
        cfg.accesslog = None
        cfg.errorlog = None
        cfg.graceful_timeout = 0.5
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            self._ready.set()
            await serve(make_app(self.version, self.seen), cfg, shutdown_trigger=self._stop.wait)

        self._loop.run_until_complete(main())
        self._loop.close()

    def __enter__(self) -> Hypercorn:
        self._thread.start()
        assert self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        stop = self._stop
        assert stop is not None
        self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(30)


class RawH2Server:
    """A scripted h2c server (thread per connection) for flow control, GOAWAY and resets."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self.requests: list[tuple[int, str, int]] = []  # (connection, path, body length)
        self._refused: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    def __enter__(self) -> RawH2Server:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(10)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                n = self.connections
            self._conns.append(c)
            t = threading.Thread(target=self._serve, args=(c, n), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, sock: socket.socket, n: int) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        small = False
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        heads: dict[int, dict[str, str]] = {}
        bodies: dict[int, int] = {}
        answered = 0
        gone = False
        sock.settimeout(0.2)
        try:
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        h = {k.decode(): v.decode() for k, v in ev.headers}
                        heads[ev.stream_id] = h
                        bodies[ev.stream_id] = 0
                        if h[":path"] == "/small-window" and not small:
                            small = True
                            conn.update_settings(
                                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024}
                            )
                        if h[":path"] == "/early":  # answer now, before the body; one stream
                            conn.update_settings(
                                {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
                            )
                            with self._lock:
                                self.requests.append((n, "/early", 0))
                            answered = self._answer(conn, ev.stream_id, "/early", 0, answered)
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] = bodies.get(ev.stream_id, 0) + len(ev.data)
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamReset):
                        with self._lock:
                            self.requests.append((n, "reset-by-client", ev.stream_id))
                    elif isinstance(ev, h2.events.StreamEnded):
                        sid = ev.stream_id
                        if heads[sid][":path"] == "/early":
                            continue
                        path = heads[sid][":path"]
                        with self._lock:
                            self.requests.append((n, path, bodies[sid]))
                        if not gone:
                            goaway = path == "/goaway" and n == 1
                            answered = self._answer(conn, sid, path, bodies[sid], answered, goaway)
                            gone = goaway
                sock.sendall(conn.data_to_send())
                if gone:
                    return  # GOAWAY sent: the later streams stay unprocessed
        except OSError:
            return
        finally:
            sock.close()

    def _answer(
        self,
        conn: h2.connection.H2Connection,
        sid: int,
        path: str,
        size: int,
        answered: int,
        goaway: bool = False,
    ) -> int:
        if path == "/hang":
            return answered
        if path == "/refuse":
            with self._lock:
                first = path not in self._refused
                self._refused.add(path)
            if first:
                conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                return answered
        body = json.dumps({"path": path, "len": size}).encode()
        head = [(":status", "200"), ("content-type", "application/json")]
        if path == "/reset":
            conn.send_headers(sid, head)
            conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return answered + 1
        if path == "/big-head":
            head.append(("x-big", "v" * 2000))
        conn.send_headers(sid, [*head, ("content-length", str(len(body)))])
        conn.send_data(sid, body, end_stream=True)
        if goaway:
            conn.close_connection(last_stream_id=sid)
        return answered + 1


def tls_certs(tmp: str) -> tuple[tuple[str, str], ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1 (cert, key) and a context trusting it."""
    from ._servers import self_signed

    cert, key = self_signed(tmp)
    ctx = ssl.create_default_context(cafile=cert)
    return (cert, key), ctx


class Http11TlsServer:
    """A TLS server that agrees to ALPN ``http/1.1`` only, and then reads until the client
    goes (the client must refuse it before sending anything)."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        ctx.set_alpn_protocols(["http/1.1"])
        self._ctx = ctx
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.received = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Http11TlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except TimeoutError:
                continue
            try:
                with self._ctx.wrap_socket(c, server_side=True) as s:
                    s.settimeout(5)
                    while data := s.recv(4096):
                        self.received += data
            except (OSError, ssl.SSLError):
                pass
