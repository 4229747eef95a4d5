"""The recording proxy against real servers on loopback, with real clients."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from replaygate.errors import CaptureError, ConfigError
from replaygate.formats import open_reader
from replaygate.formats.gor import GorWriter
from replaygate.model import Exchange, Flag
from replaygate.sources import proxy as proxy_module
from replaygate.sources.proxy import ProxyConfig, ProxyServer, parse_hostport
from replaygate.testing import MemorySink
from replaygate.testing.servers import free_port

from .httpserver import SCENARIO_REQUESTS, RawHTTPServer, assert_same, run_scenario


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawHTTPServer]:
    with RawHTTPServer() as s:
        yield s


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return str(crt), str(key)


def test_scenario_recorded_byte_exact(upstream: RawHTTPServer) -> None:
    sink = MemorySink()
    px = ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink)
    with px:
        conns = run_scenario("127.0.0.1", px.port)
    assert sink.closed
    assert len(sink.exchanges) == SCENARIO_REQUESTS
    assert_same(conns, sink.exchanges)
    st = px.stats
    assert st["recorded"] == st["forwarded"] == SCENARIO_REQUESTS
    assert st["dropped_recordings"] == 0 and st["errors"] == 0
    assert st["active_connections"] == 0
    big = [e for e in sink.exchanges if e.request.method == "POST" and len(e.request.raw) > 1e6]
    assert len(big) == 1 and b"20971520" in big[0].response.raw  # type: ignore[union-attr]


def test_records_to_gor_file(upstream: RawHTTPServer, tmp_path: Path) -> None:
    out = tmp_path / "rec.gor"
    with (
        ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), GorWriter(out)) as px,
        socket.create_connection(("127.0.0.1", px.port)) as s,
    ):
        s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
    back = list(open_reader(out))
    assert len(back) == 1 and back[0].request.target == "/a"
    assert back[0].response is not None and back[0].response.status == 200


def test_body_streams_before_it_is_complete() -> None:
    """The upstream sees the first body bytes while the client is still sending."""
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    seen = threading.Event()

    def serve() -> None:
        conn, _ = lsock.accept()
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf or len(buf.split(b"\r\n\r\n", 1)[1]) < 1000:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            seen.set()
            conn.sendall(
                b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )

    t = threading.Thread(target=serve)
    t.start()
    sink = MemorySink()
    with (
        lsock,
        ProxyServer(
            ProxyConfig(upstream=f"http://127.0.0.1:{port}", listen="127.0.0.1:0"), sink
        ) as px,
        socket.create_connection(("127.0.0.1", px.port)) as c,
    ):
        c.sendall(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"a" * 1000)
        assert seen.wait(10), "upstream never saw the partial body"
        c.settimeout(10)
        assert c.recv(1000).startswith(b"HTTP/1.1 413")
        t.join()
    # the early answer is recorded; the request is flagged as cut, not passed off as whole
    assert len(sink.exchanges) == 1
    ex = sink.exchanges[0]
    assert ex.response is not None and ex.response.status == 413
    assert Flag.REQUEST_TRUNCATED in ex.flags and not ex.complete


def test_websocket_upgrade_is_tunnelled(upstream: RawHTTPServer) -> None:
    sink = MemorySink()
    with (
        ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink) as px,
        socket.create_connection(("127.0.0.1", px.port)) as s,
    ):
        s.settimeout(10)
        s.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 101")
        frame = b"\x81\x05hello GET / HTTP/1.1\r\n\r\n"  # looks like HTTP, must not be parsed
        s.sendall(frame)
        echoed = b""
        while len(echoed) < len(frame):
            echoed += s.recv(4096)
        assert echoed == frame
    assert len(sink.exchanges) == 1
    ex = sink.exchanges[0]
    assert Flag.UPGRADE in ex.flags and ex.response is not None and ex.response.status == 101
    assert px.stats["tunnels"] == 1


def test_connect_is_tunnelled(upstream: RawHTTPServer) -> None:
    sink = MemorySink()
    with (
        ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink) as px,
        socket.create_connection(("127.0.0.1", px.port)) as s,
    ):
        s.settimeout(10)
        s.sendall(b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200")
        s.sendall(b"\x16\x03\x01 binary tls-ish bytes")
        echoed = b""
        while len(echoed) < 24:
            echoed += s.recv(4096)
    assert [Flag.CONNECT in e.flags for e in sink.exchanges] == [True]


def test_tls_listener_with_real_clients(upstream: RawHTTPServer, cert: tuple[str, str]) -> None:
    crt, key = cert
    sink = MemorySink()
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", tls_cert=crt, tls_key=key)
    with ProxyServer(cfg, sink) as px:
        ctx = ssl.create_default_context(cafile=crt)
        with (
            socket.create_connection(("127.0.0.1", px.port)) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as s,
        ):
            s.sendall(b"GET /secure HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200")
        if shutil.which("curl"):
            r = subprocess.run(
                ["curl", "-sS", "--cacert", crt, f"https://localhost:{px.port}/curl?x=1"],
                capture_output=True,
                timeout=30,
            )
            assert r.returncode == 0, r.stderr
            assert b"hello GET /curl?x=1" in r.stdout
    targets = sorted(e.request.target for e in sink.exchanges)
    assert "/secure" in targets
    assert all(e.complete for e in sink.exchanges)


def test_https_upstream(upstream: RawHTTPServer, cert: tuple[str, str]) -> None:
    """Proxy B -> (https) proxy A -> plain server: upstream TLS verified against our CA."""
    crt, key = cert
    sink_a, sink_b = MemorySink(), MemorySink()
    cfg_a = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", tls_cert=crt, tls_key=key)
    with ProxyServer(cfg_a, sink_a) as a:
        cfg_b = ProxyConfig(
            upstream=f"https://localhost:{a.port}", listen="127.0.0.1:0", upstream_ca=crt
        )
        with ProxyServer(cfg_b, sink_b) as b:
            conns = run_scenario("127.0.0.1", b.port, big=1 << 20)
    assert_same(conns, sink_b.exchanges)
    assert len(sink_a.exchanges) == SCENARIO_REQUESTS


def test_untrusted_https_upstream_is_an_error_not_a_hang(
    upstream: RawHTTPServer, cert: tuple[str, str]
) -> None:
    crt, key = cert
    cfg_a = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", tls_cert=crt, tls_key=key)
    with ProxyServer(cfg_a, MemorySink()) as a:
        cfg_b = ProxyConfig(upstream=f"https://localhost:{a.port}", listen="127.0.0.1:0")
        with (
            ProxyServer(cfg_b, MemorySink()) as b,
            socket.create_connection(("127.0.0.1", b.port)) as s,
        ):
            s.settimeout(10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 502")
        assert b.stats["upstream_connect_errors"] == 1


class SlowSink(MemorySink):
    def write(self, ex: Exchange) -> None:
        time.sleep(0.05)
        super().write(ex)


def test_slow_recorder_drops_recordings_not_traffic(upstream: RawHTTPServer) -> None:
    sink = SlowSink()
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", max_queue=2)
    n = 60
    with (
        ProxyServer(cfg, sink) as px,
        socket.create_connection(("127.0.0.1", px.port)) as s,
    ):
        s.settimeout(10)
        s.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
        got = b""
        while got.count(b"HTTP/1.1 200") < n:
            got += s.recv(1 << 16)
    st = px.stats
    assert st["forwarded"] == n
    assert st["dropped_recordings"] > 0
    assert (
        st["recorded"] + st["dropped_recordings"]
        == n
        == len(sink.exchanges) + st["dropped_recordings"]
    )


class SteadySink(MemorySink):
    """Slower than the proxy, but always making progress."""

    def write(self, ex: Exchange) -> None:
        time.sleep(0.002)
        super().write(ex)


def test_a_writer_behind_is_let_catch_up_instead_of_dropping(
    upstream: RawHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy_module, "CATCH_UP_WAIT_S", 10.0)  # a busy box: generous
    sink = SteadySink()
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", max_queue=8)
    n = 100
    with (
        ProxyServer(cfg, sink) as px,
        socket.create_connection(("127.0.0.1", px.port)) as s,
    ):
        s.settimeout(30)
        s.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
        got = b""
        while got.count(b"HTTP/1.1 200") < n:
            got += s.recv(1 << 16)
    st = px.stats
    assert st["forwarded"] == st["recorded"] == len(sink.exchanges) == n
    assert st["dropped_recordings"] == 0 and st["recorder_waits"] > 0


def test_upstream_down_gives_502_and_counts() -> None:
    port = free_port()
    sink = MemorySink()
    with (
        ProxyServer(
            ProxyConfig(upstream=f"http://127.0.0.1:{port}", listen="127.0.0.1:0"), sink
        ) as px,
        socket.create_connection(("127.0.0.1", px.port)) as s,
    ):
        s.settimeout(10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 502")
    assert px.stats["upstream_connect_errors"] == 1 and sink.exchanges == []


def test_ipv6_listen_and_upstream() -> None:
    try:
        srv = RawHTTPServer("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    sink = MemorySink()
    with srv, ProxyServer(ProxyConfig(upstream=srv.url, listen="[::1]:0"), sink) as px:
        conns = run_scenario("::1", px.port, big=1 << 16)
    assert_same(conns, sink.exchanges)


def test_port_in_use_is_one_line_error(upstream: RawHTTPServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        px = ProxyServer(
            ProxyConfig(upstream=upstream.url, listen=f"127.0.0.1:{port}"), MemorySink()
        )
        with pytest.raises(CaptureError, match="cannot listen"):
            px.start()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upstream": "ftp://x"}, "--upstream"),
        ({"upstream": ""}, "--upstream"),
        ({"upstream": "http://x", "listen": "nope"}, "--listen"),
        ({"upstream": "http://x", "listen": "1.2.3.4:99999"}, "out of range"),
        ({"upstream": "http://x", "tls_key": "k.pem"}, "--tls-key"),
        ({"upstream": "http://x", "tls_cert": "/nonexistent.pem"}, "not found"),
    ],
)
def test_bad_config(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ProxyServer(ProxyConfig(**kwargs), MemorySink())  # type: ignore[arg-type]


def test_parse_hostport() -> None:
    assert parse_hostport("[::1]:80") == ("::1", 80)
    assert parse_hostport(":8080") == ("0.0.0.0", 8080)
    assert parse_hostport("localhost:0") == ("localhost", 0)


def test_stop_closes_idle_keepalive_connections_at_once(upstream: RawHTTPServer) -> None:
    sink = MemorySink()
    px = ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink)
    px.start()
    with socket.create_connection(("127.0.0.1", px.port)) as s:
        s.settimeout(10)
        s.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        px.stop()  # the connection stays open, idle: closed at once, not after the drain
        assert s.recv(10) == b""  # closed by the proxy
    assert [e.request.target for e in sink.exchanges] == ["/idle"]
    assert px.stats["closed_idle_on_stop"] == 1 and px.stats["aborted_on_stop"] == 0


def test_stop_aborts_what_does_not_finish_in_time(upstream: RawHTTPServer) -> None:
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", drain_timeout_s=0.2)
    sink = MemorySink()
    px = ProxyServer(cfg, sink)
    px.start()
    with socket.create_connection(("127.0.0.1", px.port)) as s:
        s.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        for _ in range(1000):
            if px.stats["bytes_from_clients"]:
                break
            time.sleep(0.01)
        px.stop()
    assert px.stats["aborted_on_stop"] == 1
    # the unfinished request is recorded flagged, not passed off as complete
    assert len(sink.exchanges) == 1 and not sink.exchanges[0].complete
    assert Flag.REQUEST_TRUNCATED in sink.exchanges[0].flags


class _SniffingUpstream:
    """Records every byte it receives per connection and answers each head with a 200
    (bodies are not expected: the test sends GETs upstream and refused requests never
    arrive)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.received: list[bytes] = []
        self._threads: list[threading.Thread] = []
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        got = b""
        answered = 0
        with conn:
            conn.settimeout(30)
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                got += data
                while got.count(b"\r\n\r\n") > answered:
                    answered += 1
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.received.append(got)

    def close(self) -> None:
        self.sock.close()
        for t in self._threads:
            t.join(30)


GOOD = b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n",
            "cl_and_te",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n"
            b"hello",
            "cl_and_te",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            "bad_transfer_encoding",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 20\r\n\r\nx",
            "duplicate_content_length",
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", "obs_fold"),
    ],
)
@pytest.mark.parametrize("first", [True, False], ids=["first", "after-one"])
def test_ambiguous_request_is_refused_never_forwarded(bad: bytes, reason: str, first: bool) -> None:
    """RFC 9112 6.3 as an intermediary: 400 and close, nothing of it reaches the upstream,
    the recording holds exactly what was forwarded, the refusal is counted by reason."""
    up = _SniffingUpstream()
    sink = MemorySink()
    before = b"" if first else GOOD
    try:
        with (
            ProxyServer(
                ProxyConfig(upstream=f"http://127.0.0.1:{up.port}", listen="127.0.0.1:0"), sink
            ) as px,
            socket.create_connection(("127.0.0.1", px.port)) as c,
        ):
            c.settimeout(30)
            c.sendall(before + bad + b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
            got = b""
            while chunk := c.recv(65536):
                got += chunk
    finally:
        up.close()
    answers = got.split(b"HTTP/1.1 ")[1:]
    assert len(answers) == (1 if first else 2), got
    assert answers[-1].startswith(b"400 Bad Request") and reason.encode() in answers[-1]
    assert b"".join(up.received) == before
    assert [e.request.raw for e in sink.exchanges] == ([] if first else [GOOD])
    st = px.stats
    assert st["rejected_requests"] == 1 and st[f"rejected_{reason}"] == 1, st


def test_endless_trailer_is_refused_while_other_clients_are_served(
    upstream: RawHTTPServer,
) -> None:
    """A chunked request whose trailer never ends gets 431 once it passes --max-header-size
    and is closed; a normal client beside it is answered all along."""
    sink = MemorySink()
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0")
    with (
        ProxyServer(cfg, sink) as px,
        socket.create_connection(("127.0.0.1", px.port)) as evil,
        socket.create_connection(("127.0.0.1", px.port)) as normal,
    ):
        evil.settimeout(30)
        normal.settimeout(30)
        evil.sendall(b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
        line = b"X-T: " + b"t" * 1000 + b"\r\n"
        answered = 0
        sent = 0
        try:
            while sent < 2 * cfg.max_header_bytes:
                evil.sendall(line * 4)
                sent += 4 * len(line)
                normal.sendall(b"GET /n HTTP/1.1\r\nHost: a\r\n\r\n")
                got = b""
                while b"hello GET /n\n" not in got:
                    chunk = normal.recv(65536)
                    assert chunk, "the normal client was closed"
                    got += chunk
                answered += 1
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy closed the evil connection: expected once it is refused
        refused = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := evil.recv(65536):
                refused += chunk
    assert refused.startswith(b"HTTP/1.1 431 "), refused
    assert answered >= 10
    st = px.stats
    assert st["rejected_trailers_too_large"] == 1 and st["rejected_requests"] == 1
    assert [e.request.target for e in sink.exchanges if e.request.target == "/n"] == [
        "/n"
    ] * answered
    # the refused request is recorded as far as it was forwarded (head and last chunk), flagged
    (t,) = [e for e in sink.exchanges if e.request.target == "/t"]
    assert t.request.raw.endswith(b"\r\n\r\n0\r\n") and Flag.REQUEST_TRUNCATED in t.flags
    assert not t.complete


def test_failed_tls_handshakes_are_counted(upstream: RawHTTPServer, cert: tuple[str, str]) -> None:
    """Plain HTTP to a TLS listener, a client that distrusts the certificate, and one that
    hangs up mid-handshake: each is a counted tls_handshake_error, and the proxy serves on."""
    crt, key = cert
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", tls_cert=crt, tls_key=key)
    with ProxyServer(cfg, MemorySink()) as px:
        with socket.create_connection(("127.0.0.1", px.port)) as s:
            s.settimeout(30)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):
                while s.recv(65536):
                    pass
        distrust = ssl.create_default_context()  # system CAs: our self-signed cert fails
        with (
            socket.create_connection(("127.0.0.1", px.port)) as raw,
            pytest.raises(ssl.SSLError),
        ):
            distrust.wrap_socket(raw, server_hostname="localhost")
        trusting = ssl.create_default_context(cafile=crt)
        with (
            socket.create_connection(("127.0.0.1", px.port)) as raw,
            trusting.wrap_socket(raw, server_hostname="localhost") as s,
        ):
            s.sendall(b"GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 30
        while px.stats["tls_handshake_errors"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert px.stats["tls_handshake_errors"] == 2, px.stats


@pytest.mark.parametrize("ext", [".gor", ".jsonl", ".har"])
def test_recordings_name_their_upstream_so_replay_refuses_it(
    upstream: RawHTTPServer, tmp_path: Path, ext: str
) -> None:
    """The Host a client sends and the proxy's own address say nothing about where the
    requests ran: the upstream is recorded (meta upstream) and the replay safety rule
    refuses unsafe methods to it."""
    from replaygate.errors import ReplayError
    from replaygate.formats import open_writer
    from replaygate.replay import ReplayConfig, run_replay

    out = tmp_path / f"rec{ext}"
    with (
        ProxyServer(
            ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), open_writer(out)
        ) as px,
        socket.create_connection(("127.0.0.1", px.port)) as s,
    ):
        s.sendall(b"POST /orders HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2\r\n"
                  b"Connection: close\r\n\r\n{}")  # fmt: skip
        while s.recv(65536):
            pass
    back = list(open_reader(out))
    assert [e.meta.get("upstream") for e in back] == [upstream.url]
    with pytest.raises(ReplayError, match="allow-unsafe-target"):
        run_replay(back, ReplayConfig(targets=[upstream.url]))


class SteadyGorWriter(GorWriter):
    """The .gor writer (its batches encoded by the event loop), slower than the proxy."""

    def write_encoded(self, batch: Sequence[list[bytes]]) -> None:
        time.sleep(0.002 * len(batch))
        super().write_encoded(batch)


def test_a_gor_writer_behind_is_let_catch_up_and_keeps_every_recording(
    upstream: RawHTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(proxy_module, "CATCH_UP_WAIT_S", 10.0)  # a busy box: generous
    sink = SteadyGorWriter(tmp_path / "s.gor")
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", max_queue=8)
    n = 100
    with (
        ProxyServer(cfg, sink) as px,
        socket.create_connection(("127.0.0.1", px.port)) as s,
    ):
        assert px._recording._encode is not None  # the loop encodes, the writer writes
        s.settimeout(30)
        s.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
        got = b""
        while got.count(b"HTTP/1.1 200") < n:
            got += s.recv(1 << 16)
    st = px.stats
    assert st["forwarded"] == st["recorded"] == n
    assert st["dropped_recordings"] == 0 and st["recorder_waits"] > 0
    got_targets = [ex.request.target for ex in open_reader(tmp_path / "s.gor")]
    assert got_targets == [f"/{i}" for i in range(n)]
