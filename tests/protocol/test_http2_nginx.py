"""HTTP/2 from real traffic: nginx with ``http2`` (cleartext h2c by prior knowledge, and h2
over TLS with ALPN) and curl as the client, captured with tcpdump on lo, read back with the
pcap reader. The client's requests and nginx's answers are the ground truth. Root-only
(tcpdump); skipped with the reason otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from replaygate.formats import ReadOptions
from replaygate.formats.pcap import read
from replaygate.pipeline import Counters
from replaygate.protocol import h2msg
from replaygate.testing.servers import NginxServer, free_port, nginx_binary

from .test_tls_nginx import Tcpdump, _need
from .tlsconv import cert_files

pytestmark = pytest.mark.root


class H2Nginx:
    def __init__(self, ng: NginxServer, h2c: int, h2: int) -> None:
        self.ng, self.h2c, self.h2 = ng, h2c, h2


@pytest.fixture(scope="module")
def h2_nginx() -> Iterator[H2Nginx]:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    cert, key = cert_files()
    h2c, h2, plain = free_port(), free_port(), free_port()
    # a second and third server block; NginxServer closes the last one
    locations = f"""
        location = /posted {{ return 200 "posted"; }}
        location / {{ return 200 "plain"; }}
    }}
    server {{
        listen 127.0.0.1:{h2c} http2;
        location = /post {{ proxy_pass http://127.0.0.1:{plain}/posted; }}
        location /static/ {{ alias %(root)s/static/; }}
        location = /missing {{ return 404 "nope"; }}
        location / {{ return 200 "h2c"; }}
    }}
    server {{
        listen 127.0.0.1:{h2} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location /static/ {{ alias %(root)s/static/; }}
        location / {{ return 200 "h2-tls"; }}
    """
    with NginxServer(locations, port=plain) as ng:
        (ng.root / "static" / "big.bin").write_bytes(os.urandom(300_000))
        yield H2Nginx(ng, h2c, h2)


def _curl(*args: str, keylog: Path | None = None) -> None:
    env = {**os.environ}
    if keylog is not None:
        env["SSLKEYLOGFILE"] = str(keylog)
    subprocess.run(["curl", "-sS", "-o", "/dev/null", *args], env=env, check=True, timeout=60)


def _multiplexed(port: int, paths: list[str]) -> None:
    """Open one h2c connection and send every request before reading any answer."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for i, path in enumerate(paths):
            conn.send_headers(1 + 2 * i, [(":method", "GET"), (":scheme", "http"),
                                          (":authority", f"127.0.0.1:{port}"), (":path", path),
                                          ("user-agent", "h2-test")], end_stream=True)  # fmt: skip
        sock.sendall(conn.data_to_send())
        open_streams = len(paths)
        while open_streams:
            data = sock.recv(65536)
            assert data, "nginx closed the connection"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    open_streams -= 1
            sock.sendall(conn.data_to_send())
        conn.close_connection()
        sock.sendall(conn.data_to_send())


def test_h2c_and_h2_from_a_capture(tmp_path: Path, h2_nginx: H2Nginx, needs_root: None) -> None:
    _need("tcpdump", "curl")
    keylog = tmp_path / "keys.log"
    pcap = tmp_path / "h2.pcap"
    ng = h2_nginx
    dump = Tcpdump(pcap, (ng.h2c, ng.h2, ng.ng.port))
    base = f"http://127.0.0.1:{ng.h2c}"
    try:
        dump.wait_for(ng.ng.port, "/probe-start")
        # several streams at once on one connection (the h2 library as the client; curl
        # 7.88 cannot reuse a prior-knowledge connection), then curl: a POST body, h2 in TLS
        _multiplexed(ng.h2c, ["/a?x=1", "/missing", "/static/big.bin"])
        _curl("--http2-prior-knowledge", "--data-binary", "k=v" * 1000, f"{base}/post")
        for path in ("/tls1", "/static/hello.txt"):
            _curl("--http2", "-k", "--resolve", f"localhost:{ng.h2}:127.0.0.1",
                  f"https://localhost:{ng.h2}{path}", keylog=keylog)  # fmt: skip
        dump.wait_for(ng.ng.port, "/probe-end")
    finally:
        dump.stop()
    counters = Counters()
    exchanges = list(read(str(pcap), ReadOptions(counters=counters,
                                                 extra={"tls_keylog": str(keylog)})))  # fmt: skip
    h2 = sorted((e for e in exchanges if e.request.version == "HTTP/2"), key=lambda e: e.ts_ns)
    got = [(e.meta.get("scheme"), e.request.method, e.request.target,
            e.response.status if e.response else None, len(e.request.body()),
            len(e.response.body()) if e.response else None) for e in h2]  # fmt: skip
    assert got == [
        ("http", "GET", "/a?x=1", 200, 0, 3),
        ("http", "GET", "/missing", 404, 0, 4),
        ("http", "GET", "/static/big.bin", 200, 0, 300_000),
        ("http", "POST", "/post", 200, 3000, 6),
        ("https", "GET", "/tls1", 200, 0, 6),
        ("https", "GET", "/static/hello.txt", 200, 0, 6),
    ]
    assert all(e.complete for e in h2), [sorted(map(str, e.flags)) for e in h2]
    first = h2[0]
    assert first.request.header("host") == f"127.0.0.1:{ng.h2c}"
    assert first.request.header("user-agent") == "h2-test"
    assert h2msg.request_fields(first.request, first.meta)[0][:2] == [
        (":method", "GET"),
        (":scheme", "http"),
    ]
    assert {e.meta["h2.stream"] for e in h2[:3]} == {"1", "3", "5"}  # one connection
    assert h2[4].meta["tls.alpn"] == "h2" and h2[4].meta["tls.sni"] == "localhost"
    assert (h2[3].response.header("server") or "").startswith("nginx/")  # type: ignore[union-attr]
    assert counters.notes["pcap.http2_flows"] == 4
    assert not [k for k in counters.dropped if k.startswith(("tls.", "http2."))], dict(
        counters.dropped
    )
