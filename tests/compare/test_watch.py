from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from replaygate.compare import TargetWatcher
from replaygate.compare.watch import parse_prometheus
from replaygate.errors import ConfigError

METRICS = {"n": 0}


class _H(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        METRICS["n"] += 1
        body = (
            "# HELP http_requests_total x\n# TYPE http_requests_total counter\n"
            f'http_requests_total{{code="200",path="/a b"}} {METRICS["n"] * 10}\n'
            "process_open_fds 7\nweird NaN\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def metrics_url() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/metrics"
    srv.shutdown()
    srv.server_close()
    t.join()


def test_parse_prometheus() -> None:
    m = parse_prometheus('a 1\nb{x="1 2"} 2.5 1700000000\n# c 3\nd NaN\ne bogus\n')
    assert m == {"a": 1.0, 'b{x="1 2"}': 2.5}


def test_watch_metrics_and_pid(metrics_url: str) -> None:
    w = TargetWatcher(metrics_url=metrics_url, pid=os.getpid(), interval=0.05)
    w.start()
    sum(range(200_000))
    r = w.stop()
    assert r["metrics"]["samples"] >= 2
    key = 'http_requests_total{code="200",path="/a b"}'
    assert r["metrics"]["deltas"][key] > 0 and "process_open_fds" not in r["metrics"]["deltas"]
    p = r["process"]
    assert (
        p["pid"] == os.getpid() and p["rss_bytes"]["last"] > 0 and len(p["threads"]["series"]) >= 2
    )


def test_watch_rejects_remote_and_missing() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        TargetWatcher(metrics_url="http://192.0.2.1/metrics")
    with pytest.raises(ConfigError, match="not an http"):
        TargetWatcher(metrics_url="file:///etc/passwd")
    with pytest.raises(ConfigError, match="cannot watch process"):
        TargetWatcher(pid=2**22 + 12345)


def test_unreachable_metrics_counted() -> None:
    w = TargetWatcher(metrics_url="http://127.0.0.1:9/metrics", interval=0.05)
    w.sample()
    assert list(w.result()["errors"].values()) == [1]
