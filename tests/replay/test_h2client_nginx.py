"""Replay over HTTP/2 to nginx ``http2`` (h2c by prior knowledge and h2 over TLS by ALPN),
from an HTTP/1.1 recording, through the command line: the answers equal those nginx gives
over HTTP/1.1, bodies larger than every flow-control window included."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from replaygate.formats import open_reader
from replaygate.formats.gor import GorWriter
from replaygate.testing import make_exchange
from replaygate.testing.servers import NginxServer, free_port, nginx_binary

from ..cli.test_replay import run
from ._servers import self_signed


class H2Nginx:
    def __init__(self, ng: NginxServer, h2c: int, h2: int, cert: str) -> None:
        self.ng, self.h2c, self.h2, self.cert = ng, h2c, h2, cert


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[H2Nginx]:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    cert, key = self_signed(str(tmp_path_factory.mktemp("certs")))
    h2c, h2, plain = free_port(), free_port(), free_port()
    common = """
        location = /json { default_type application/json;
            return 200 '{"id": 1, "name": "demo", "tags": ["a", "b"]}'; }
        location = /status/404 { return 404 "not found"; }
        location = /post { proxy_pass http://127.0.0.1:PLAIN/posted; }
        location = /posted { return 200 "posted $content_length"; }
        location /static/ { alias %(root)s/static/; }
    """.replace("PLAIN", str(plain))
    locations = f"""{common}
    }}
    server {{
        listen 127.0.0.1:{h2c} http2;
        {common}
    }}
    server {{
        listen 127.0.0.1:{h2} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        {common}
    """
    with NginxServer(locations, port=plain) as ng:
        (ng.root / "static" / "big.bin").write_bytes(os.urandom(1_000_000))
        yield H2Nginx(ng, h2c, h2, cert)


def recording(path: Path) -> Path:
    w = GorWriter(path)
    paths = ["/json", "/status/404", "/static/big.bin", "/static/hello.txt"] * 5
    for i, p in enumerate(paths):
        w.write(make_exchange("GET", p, id=f"{i:040x}", ts_ns=1_700_000_000_000_000_000 + i))
    w.close()
    return path


def _answers(out: Path) -> dict[str, tuple[int, bytes]]:
    got = {}
    for e in open_reader(str(out)):
        assert e.replayed is not None, e.replay_error
        got[e.id] = (e.replayed.status, e.replayed.body())
    return got


def test_h1_recording_to_nginx_h2c_and_h2_equals_h1(nginx: H2Nginx, tmp_path: Path) -> None:
    rec = recording(tmp_path / "rec.gor")
    outs = {}
    for name, args in (
        ("h1", ["-t", nginx.ng.url]),
        ("h2c", ["-t", f"http://127.0.0.1:{nginx.h2c}", "--http2", "--h2-streams", "4"]),
        ("h2", ["-t", f"https://127.0.0.1:{nginx.h2}", "--http2", "--ca-file", nginx.cert,
                "--h2-connections", "2", "-c", "8"]),
    ):  # fmt: skip
        out = tmp_path / f"{name}.jsonl"
        code, text = run(str(rec), *args, "--max", "--order", "none", "-o", str(out))
        assert code == 0, text
        outs[name] = out
    h1 = _answers(outs["h1"])
    assert len(h1) == 20 and {s for s, _ in h1.values()} == {200, 404}
    for name in ("h2c", "h2"):
        assert _answers(outs[name]) == h1, name
        versions = {e.replayed.version for e in open_reader(str(outs[name])) if e.replayed}
        assert versions == {"HTTP/2"}


def test_post_bodies_through_nginx_h2(nginx: H2Nginx, tmp_path: Path) -> None:
    from replaygate.replay import ReplayConfig, run_replay
    from replaygate.testing import MemorySink

    body = os.urandom(300_000)  # nginx reads request bodies in 64 KiB windows
    exs = [make_exchange("POST", "/post", request_body=body, id=f"{i:040x}") for i in range(3)]
    sink = MemorySink()
    cfg = ReplayConfig(
        targets=[f"http://127.0.0.1:{nginx.h2c}"], http2=True, max_speed=True, order="none"
    )
    stats = run_replay(exs, cfg, sink=sink)
    assert stats.errors == {} and stats.answered == 3
    for e in sink.exchanges:
        assert e.replayed is not None and e.replayed.body().startswith(b"posted ")
        assert int(e.replayed.body().split()[1]) == len(body)  # all of it reached nginx
