"""The recording proxy with HTTP/2 clients (curl, the h2 library) on 127.0.0.1, forwarding to
an HTTP/1.1 upstream: each stream is forwarded and recorded as one HTTP/2 exchange."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import pytest

from replaygate.model import Exchange
from replaygate.protocol import h2msg
from replaygate.sources.proxy import GRPC_NEEDS_HTTP2, ProxyConfig, ProxyServer
from replaygate.testing import MemorySink
from replaygate.testing.servers import free_port

from ..protocol.tlsconv import cert_files
from .h2client import H2Request, h2_exchange
from .httpserver import RawHTTPServer


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawHTTPServer]:
    with RawHTTPServer() as s:
        yield s


def _curl(*args: str) -> bytes:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    r = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _by_target(sink: MemorySink) -> dict[str, list[Exchange]]:
    out: dict[str, list[Exchange]] = {}
    for e in sink.exchanges:
        out.setdefault(e.request.target, []).append(e)
    return out


def test_curl_prior_knowledge_and_upgrade(upstream: RawHTTPServer, tmp_path: Path) -> None:
    body = bytes(range(256)) * 1200  # 300 kB: several windows' worth
    (tmp_path / "body.bin").write_bytes(body)
    sink = MemorySink()
    with ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink) as px:
        base = f"http://127.0.0.1:{px.port}"
        assert _curl("--http2-prior-knowledge", f"{base}/pk?a=1") == b"hello GET /pk?a=1\n"
        digest = hashlib.sha256(body).hexdigest()
        assert _curl("--http2-prior-knowledge", "--data-binary", f"@{tmp_path}/body.bin",
                     f"{base}/upload") == f"POST {len(body)} {digest}\n".encode()  # fmt: skip
        assert _curl("--http2", f"{base}/up?b=2") == b"hello GET /up?b=2\n"  # Upgrade: h2c
        assert _curl("--http2", "-d", "k=v", f"{base}/up-post") == (
            f"POST 3 {hashlib.sha256(b'k=v').hexdigest()}\n".encode()
        )
        assert _curl("--http1.1", f"{base}/plain") == b"hello GET /plain\n"  # still HTTP/1
    st = px.stats
    assert st["h2_connections"] == 4 and st["h2_streams"] == 4 and st["h2c_upgrades"] == 2
    assert st["recorded"] == st["forwarded"] == 5 and st["errors"] == 0
    got = _by_target(sink)
    pk, up = got["/pk?a=1"][0], got["/up?b=2"][0]
    for e, via in ((pk, "prior-knowledge"), (up, "upgrade")):
        assert e.request.version == "HTTP/2" and e.complete, e.flags
        assert e.meta["h2.via"] == via and e.meta["h2.stream"] == "1"
        assert e.meta["scheme"] == "http" and e.meta["upstream"] == upstream.url
        fields, _, _ = h2msg.request_fields(e.request, e.meta)
        assert fields[:4] == [(":method", "GET"), (":scheme", "http"),
                              (":authority", f"127.0.0.1:{px.port}"),
                              (":path", e.request.target)]  # fmt: skip
        assert e.response is not None and e.response.version == "HTTP/2"
        assert (
            e.response.status == 200
            and e.response.body() == f"hello GET {e.request.target}\n".encode()
        )
        assert e.conn is not None and e.conn.dport == px.port
    # the upgrade's own fields (connection, upgrade, http2-settings) are not the request's
    assert not {"connection", "upgrade", "http2-settings"} & {k for k, _ in up.request.headers}
    upload = got["/upload"][0]
    assert upload.request.body() == body and upload.complete
    assert got["/up-post"][0].request.body() == b"k=v"
    assert got["/plain"][0].request.version == "HTTP/1.1"


def test_curl_http2_over_tls(upstream: RawHTTPServer) -> None:
    crt, key = cert_files()
    sink = MemorySink()
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", tls_cert=crt, tls_key=key)
    with ProxyServer(cfg, sink) as px:
        url = f"https://localhost:{px.port}/tls?x=1"
        res = ("--cacert", crt, "--resolve", f"localhost:{px.port}:127.0.0.1")
        assert _curl("--http2", *res, url) == b"hello GET /tls?x=1\n"
        assert _curl("--http1.1", *res, url) == b"hello GET /tls?x=1\n"
    h2, h1 = sorted(sink.exchanges, key=lambda e: e.request.version, reverse=True)
    assert h2.request.version == "HTTP/2" and h2.meta["h2.via"] == "alpn"
    assert h2.meta["scheme"] == "https" and h2.request.header("host") == f"localhost:{px.port}"
    assert h1.request.version == "HTTP/1.1"
    assert px.stats["h2_connections"] == 1


def test_no_http2_offers_only_http1(upstream: RawHTTPServer) -> None:
    crt, key = cert_files()
    sink = MemorySink()
    cfg = ProxyConfig(
        upstream=upstream.url, listen="127.0.0.1:0", tls_cert=crt, tls_key=key, http2=False
    )
    with ProxyServer(cfg, sink) as px:
        res = ("--cacert", crt, "--resolve", f"localhost:{px.port}:127.0.0.1")
        assert _curl("--http2", *res, f"https://localhost:{px.port}/a") == b"hello GET /a\n"
    assert [e.request.version for e in sink.exchanges] == ["HTTP/1.1"]
    assert "h2_connections" not in px.stats


def test_many_streams_with_large_bodies(upstream: RawHTTPServer) -> None:
    """30 streams at once on one connection: large downloads and uploads cross the flow
    control windows both ways; each stream's bytes arrive intact and are recorded whole."""
    up_body = [bytes([i]) * (150_000 + i) for i in range(10)]
    reqs = (
        [H2Request(f"/big?n={300_000 + i}") for i in range(10)]
        + [H2Request(f"/up{i}", "POST", up_body[i]) for i in range(10)]
        + [H2Request(f"/small{i}") for i in range(10)]
    )
    sink = MemorySink()
    with ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink) as px:
        answers = h2_exchange(px.port, reqs)
    for i, (r, a) in enumerate(zip(reqs, answers, strict=True)):
        assert a.status == 200 and a.reset is None, (r.path, a)
        if i < 10:
            n = 300_000 + i
            assert len(a.body) == n and a.body[:32] == hashlib.sha256(r.path.encode()).digest()
        elif i < 20:
            assert a.body == f"POST {len(r.body)} {hashlib.sha256(r.body).hexdigest()}\n".encode()
        else:
            assert a.body == f"hello GET {r.path}\n".encode()
    st = px.stats
    assert st["h2_streams"] == 30 and st["recorded"] == 30 and st["errors"] == 0
    got = _by_target(sink)
    for i in range(10):
        assert got[f"/up{i}"][0].request.body() == up_body[i]
        big = got[f"/big?n={300_000 + i}"][0]
        assert big.response is not None and len(big.response.body()) == 300_000 + i
    assert all(e.complete for e in sink.exchanges)
    assert len({e.meta["h2.stream"] for e in sink.exchanges}) == 30
    assert len({e.conn for e in sink.exchanges}) == 1


def test_trailers_cross_and_are_recorded(upstream: RawHTTPServer) -> None:
    sink = MemorySink()
    with ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink) as px:
        (a, b) = h2_exchange(
            px.port,
            [H2Request("/trailers"),
             H2Request("/with-req-trailers", "POST", b"abc", trailers=[("x-sum", "1")])],
        )  # fmt: skip
    assert a.body == b"hello" and a.trailers == [("x-checksum", "5d41402a")]
    assert b.body.startswith(b"POST 3 ")  # sent chunked to HTTP/1.1, trailer included
    got = _by_target(sink)
    rec = got["/trailers"][0].response
    assert rec is not None and h2msg.trailers(rec) == [("x-checksum", "5d41402a")]
    assert not {"transfer-encoding"} & {k for k, _ in h2msg.fields(rec)}
    req = got["/with-req-trailers"][0].request
    assert h2msg.trailers(req) == [("x-sum", "1")] and req.body() == b"abc"


def test_resets_and_goaway_are_counted(upstream: RawHTTPServer) -> None:
    sink = MemorySink()
    with ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink) as px:
        answers = h2_exchange(
            px.port, [H2Request("/kept"), H2Request("/big?n=5000000", reset_after_headers=True)]
        )
        assert answers[0].status == 200
        _wait(lambda: px.stats.get("h2_goaway_from_client") == 1)
    st = px.stats
    assert st["h2_resets_from_client"] == 1 and st["h2_goaway_from_client"] == 1
    assert st["active_connections"] == 0
    kept = _by_target(sink)["/kept"][0]
    assert kept.complete
    cancelled = _by_target(sink).get("/big?n=5000000", [])
    for e in cancelled:  # recorded only if it reached the upstream before the reset
        assert e.meta["h2.reset"] == "CANCEL" and not e.complete


def _wait(cond: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_grpc_to_an_http1_upstream_says_what_to_do(upstream: RawHTTPServer) -> None:
    sink = MemorySink()
    with ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink) as px:
        (a,) = h2_exchange(
            px.port,
            [H2Request("/shop.Cart/Get", "POST", b"\x00\x00\x00\x00\x00",
                       headers=[("content-type", "application/grpc"), ("te", "trailers")])],
        )  # fmt: skip
    h = dict(a.headers)
    assert a.status == 200 and h["grpc-status"] == "14"
    assert "--upstream-http2" in h["grpc-message"]
    assert px.stats["grpc_needs_http2_upstream"] == 1 and "--upstream-http2" in GRPC_NEEDS_HTTP2
    assert sink.exchanges == []


def test_streams_over_the_limit_are_refused_not_the_connection(upstream: RawHTTPServer) -> None:
    """A client that opens more streams than MAX_CONCURRENT_STREAMS (before it read our
    SETTINGS) gets REFUSED_STREAM for the extra ones; the others are served."""
    sink = MemorySink()
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", max_concurrent_streams=2)
    with ProxyServer(cfg, sink) as px:
        answers = h2_exchange(px.port, [H2Request(f"/big?n={200_000 + i}") for i in range(4)])
    assert [(a.status, len(a.body)) for a in answers[:2]] == [(200, 200_000), (200, 200_001)]
    assert [a.reset for a in answers[2:]] == [7, 7]  # REFUSED_STREAM: safe to retry
    assert px.stats["h2_refused_streams"] == 2 and px.stats["recorded"] == 2


def test_rapid_reset_ends_the_connection(upstream: RawHTTPServer) -> None:
    """Streams opened and cancelled at once (CVE-2023-44487): past 100 resets making up most
    of the streams, the client gets GOAWAY(ENHANCE_YOUR_CALM)."""
    sink = MemorySink()
    with ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), sink) as px:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        with socket.create_connection(("127.0.0.1", px.port), timeout=30) as sock:
            for i in range(150):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                        (":authority", "a"), (":path", f"/r{i}")])  # fmt: skip
                conn.reset_stream(sid)
            sock.sendall(conn.data_to_send())
            events = []
            while data := sock.recv(65536):  # until the proxy closes
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    events += conn.receive_data(data)
        goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert [e.error_code for e in goaway] == [h2.errors.ErrorCodes.ENHANCE_YOUR_CALM]
        assert px.stats["h2_rapid_reset"] == 1
        (ok,) = h2_exchange(px.port, [H2Request("/calm")])  # other clients are served
        assert ok.status == 200
    assert px.stats["active_connections"] == 0


def test_unreachable_upstream_is_a_502_per_stream() -> None:
    port = free_port()
    sink = MemorySink()
    cfg = ProxyConfig(upstream=f"http://127.0.0.1:{port}", listen="127.0.0.1:0")
    with ProxyServer(cfg, sink) as px:
        a, b = h2_exchange(px.port, [H2Request("/x"), H2Request("/y")])
    assert a.status == b.status == 502 and b"unreachable" in a.body
    st = px.stats
    assert st["upstream_connect_errors"] == 2 and st["recorded"] == 0


def test_oversized_header_list_is_refused(upstream: RawHTTPServer) -> None:
    sink = MemorySink()
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", max_header_bytes=16 << 10)
    with ProxyServer(cfg, sink) as px:
        with pytest.raises((AssertionError, OSError)):
            h2_exchange(px.port, [H2Request("/x", headers=[("x-big", "a" * 40_000)])])
        _wait(lambda: px.stats.get("h2_protocol_errors") == 1)
        (ok,) = h2_exchange(px.port, [H2Request("/after")])  # others are still served
        assert ok.status == 200
    assert [e.request.target for e in sink.exchanges] == ["/after"]


def test_stop_closes_idle_http2_connections_at_once(upstream: RawHTTPServer) -> None:
    import h2.config
    import h2.connection

    px = ProxyServer(ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0"), MemorySink())
    px.start()
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    with socket.create_connection(("127.0.0.1", px.port), timeout=30) as s:
        s.sendall(conn.data_to_send())
        assert s.recv(65536)  # the proxy's SETTINGS: it is an HTTP/2 connection now
        _wait(lambda: px.stats.get("h2_connections") == 1)
        started = time.monotonic()
        px.stop()
        assert time.monotonic() - started < px.config.drain_timeout_s
    assert px.stats["closed_idle_on_stop"] == 1 and px.stats["active_connections"] == 0


def test_tls_context_offers_h2(upstream: RawHTTPServer) -> None:
    crt, key = cert_files()
    cfg = ProxyConfig(upstream=upstream.url, listen="127.0.0.1:0", tls_cert=crt, tls_key=key)
    with ProxyServer(cfg, MemorySink()) as px:
        ctx = ssl.create_default_context(cafile=crt)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        (a,) = h2_exchange(px.port, [H2Request("/s")], tls=ctx)
    assert a.status == 200 and a.body == b"hello GET /s\n"
