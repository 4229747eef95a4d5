"""HTTP/2 upstreams of the recording proxy: nginx with ``http2`` (h2c, and h2 over TLS by
ALPN), an HTTP/1.1-only TLS nginx (ALPN falls back), and what ``--upstream-http2`` says when
the upstream cannot speak HTTP/2. Clients: curl and the h2 library, all on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from replaygate.sources.proxy import ProxyConfig, ProxyServer
from replaygate.testing import MemorySink
from replaygate.testing.servers import NginxServer, free_port, nginx_binary

from ..protocol.tlsconv import cert_files
from .h2client import H2Request, h2_exchange
from .httpserver import RawHTTPServer


class Nginx:
    def __init__(self, ng: NginxServer, h2c: int, h2: int, h1tls: int) -> None:
        self.ng, self.h2c, self.h2, self.h1tls = ng, h2c, h2, h1tls
        self.big = b""


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    cert, key = cert_files()
    h2c, h2, h1tls, plain = free_port(), free_port(), free_port(), free_port()
    # more server blocks after the default one; NginxServer closes the last
    locations = f"""
        location = /posted {{ return 201 "posted"; }}
        location / {{ return 200 "plain"; }}
    }}
    server {{
        listen 127.0.0.1:{h2c} http2;
        location /static/ {{ alias %(root)s/static/; }}
        location = /missing {{ return 404 "nope"; }}
        location = /post {{ proxy_pass http://127.0.0.1:{plain}/posted; }}
        location / {{ add_header x-proto $server_protocol; return 200 "h2c $request_uri"; }}
    }}
    server {{
        listen 127.0.0.1:{h1tls} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ add_header x-proto $server_protocol; return 200 "h1tls $request_uri"; }}
    }}
    server {{
        listen 127.0.0.1:{h2} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location /static/ {{ alias %(root)s/static/; }}
        location / {{ add_header x-proto $server_protocol; return 200 "h2 $request_uri"; }}
    """
    with NginxServer(locations, port=plain) as ng:
        n = Nginx(ng, h2c, h2, h1tls)
        n.big = os.urandom(700_000)
        (ng.root / "static" / "big.bin").write_bytes(n.big)
        yield n


def test_h2c_upstream_multiplexed(nginx: Nginx) -> None:
    sink = MemorySink()
    cfg = ProxyConfig(
        upstream=f"http://127.0.0.1:{nginx.h2c}", listen="127.0.0.1:0", upstream_http2=True
    )
    with ProxyServer(cfg, sink) as px:
        reqs = [H2Request("/a?x=1"), H2Request("/missing"), H2Request("/static/big.bin"),
                H2Request("/post", "POST", b"k=v" * 30_000,
                          headers=[("content-length", "90000")])] * 3  # fmt: skip
        answers = h2_exchange(px.port, reqs)
        if shutil.which("curl"):
            out = subprocess.run(
                ["curl", "-sS", "--http2-prior-knowledge", f"http://127.0.0.1:{px.port}/curl"],
                capture_output=True, timeout=60, check=True,
            ).stdout  # fmt: skip
            assert out == b"h2c /curl"
    got = [(a.status, len(a.body)) for a in answers]
    assert got == [(200, 10), (404, 4), (200, len(nginx.big)), (201, 6)] * 3
    assert answers[2].body == nginx.big
    assert dict(answers[0].headers)["x-proto"] == "HTTP/2.0"  # nginx saw HTTP/2
    st = px.stats
    assert st["h2_upstream_connections"] == 2  # one per client connection, streams multiplexed
    assert st["recorded"] == len(reqs) + (1 if shutil.which("curl") else 0)
    assert st["errors"] == 0
    recorded = sorted(sink.exchanges, key=lambda e: (str(e.conn), int(e.meta["h2.stream"])))
    assert all(e.complete and e.request.version == "HTTP/2" for e in recorded)
    big = [e for e in recorded if e.request.target == "/static/big.bin"]
    assert [e.response.body() for e in big] == [nginx.big] * 3  # type: ignore[union-attr]
    post = next(e for e in recorded if e.request.method == "POST")
    assert post.request.body() == b"k=v" * 30_000
    assert (post.response.header("server") or "").startswith("nginx")  # type: ignore[union-attr]


def test_https_upstream_by_alpn(nginx: Nginx) -> None:
    """Without --upstream-http2, an https upstream that offers h2 by ALPN gets HTTP/2; one
    that answers http/1.1 gets HTTP/1.1 (learned once)."""
    for port, proto, learned in ((nginx.h2, "HTTP/2.0", 0), (nginx.h1tls, "HTTP/1.1", 1)):
        sink = MemorySink()
        cfg = ProxyConfig(
            upstream=f"https://127.0.0.1:{port}", listen="127.0.0.1:0", upstream_insecure=True
        )
        with ProxyServer(cfg, sink) as px:
            answers = h2_exchange(px.port, [H2Request(f"/r{i}") for i in range(5)])
            again = h2_exchange(px.port, [H2Request("/again")])
        assert [a.status for a in answers + again] == [200] * 6, [
            (a.status, a.body) for a in answers + again
        ]
        assert {dict(a.headers)["x-proto"] for a in answers + again} == {proto}
        assert px.stats.get("upstream_alpn_http1", 0) == learned
        assert px.stats["recorded"] == 6


def test_upstream_http2_required_but_refused(nginx: Nginx) -> None:
    cfg = ProxyConfig(
        upstream=f"https://127.0.0.1:{nginx.h1tls}",
        listen="127.0.0.1:0",
        upstream_insecure=True,
        upstream_http2=True,
    )
    sink = MemorySink()
    with ProxyServer(cfg, sink) as px:
        (a,) = h2_exchange(px.port, [H2Request("/x")])
    assert a.status == 502 and b"did not agree to HTTP/2" in a.body
    assert b"--upstream-http2" in a.body
    assert sink.exchanges == []


def test_upstream_http2_to_an_http1_server_fails_clearly() -> None:
    with RawHTTPServer() as up:
        cfg = ProxyConfig(upstream=up.url, listen="127.0.0.1:0", upstream_http2=True)
        with ProxyServer(cfg, MemorySink()) as px:
            a, b = h2_exchange(px.port, [H2Request("/x"), H2Request("/y")])
    assert a.status == b.status == 502 and b"does not speak HTTP/2" in a.body
    assert px.stats["h2_protocol_errors"] == 1
