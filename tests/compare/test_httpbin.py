"""A service replayed against an identical copy of itself passes, with its volatile fields
reported as noise: httpbin (PyPI) runs twice on loopback; traffic to copy A is recorded by
the recording proxy, then replayed to copy B (candidate) and to A again (baseline)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from replaygate.compare import CompareSink, GateConfig, judge
from replaygate.testing import MemorySink

PATHS = [
    "/uuid",
    "/anything?x=1",
    "/headers",
    "/delay/0.1",
    "/gzip",
    "/stream/3",
    "/cookies",
    "/get",
    "/ip",
]


class _Server:
    def __init__(self) -> None:
        from httpbin import app
        from werkzeug.serving import make_server

        self.srv = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.srv.server_port
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def two_httpbins() -> Iterator[tuple[_Server, _Server]]:
    pytest.importorskip("httpbin")
    a, b = _Server(), _Server()
    yield a, b
    a.close()
    b.close()


def record(port: int) -> list[Any]:
    from replaygate.sources.proxy import ProxyConfig, ProxyServer

    sink = MemorySink()
    proxy = ProxyServer(
        ProxyConfig(listen="127.0.0.1:0", upstream=f"http://127.0.0.1:{port}"), sink
    )
    proxy.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        try:
            for _rep in range(4):
                for p in PATHS:
                    conn.request("GET", p, headers={"Accept-Encoding": "gzip", "X-Round": "1"})
                    conn.getresponse().read()
            conn.request(
                "POST", "/anything", body=b'{"a": 1}', headers={"Content-Type": "application/json"}
            )
            conn.getresponse().read()
        finally:
            conn.close()
    finally:
        proxy.stop()
    return sink.exchanges


def test_identical_copy_passes_with_noise(two_httpbins: tuple[_Server, _Server]) -> None:
    from replaygate.replay import ReplayConfig, run_replay

    a, b = two_httpbins
    recorded = record(a.port)
    assert len(recorded) == 4 * len(PATHS) + 1
    sink = CompareSink()
    run_replay(
        recorded,
        ReplayConfig(
            targets=[f"http://127.0.0.1:{b.port}"],
            baseline=f"http://127.0.0.1:{a.port}",
            max_speed=True,
            # A is both the captured upstream and the baseline copy: its POSTs are expected
            allow_unsafe_target=True,
        ),
        sink=sink,
    )
    s = judge(sink.comparator.result(), GateConfig()).summary()
    assert s["verdict"] == "pass", s["reasons"]
    eps = {e["endpoint"]: e for e in s["endpoints"]}
    assert {
        "GET /uuid",
        "GET /delay/0.1",
        "GET /stream/{int}",
        "GET /cookies",
        "POST /anything",
    } <= set(eps)
    assert s["totals"]["compared"] == len(recorded)
    noise = {(e["endpoint"], f["field"]) for e in s["endpoints"] for f in e["noise_fields"]}
    assert ("GET /uuid", "body:$.uuid") in noise
    for e in s["endpoints"]:
        assert e["diff_rate"] == 0, e
        assert e["latency_ms"]["replayed"]["count"] > 0
    assert eps["GET /delay/0.1"]["latency_ms"]["replayed"]["p50"] >= 100


def test_identical_copy_passes_without_baseline(two_httpbins: tuple[_Server, _Server]) -> None:
    """No second copy: volatility is learned from repeated requests, and what differs only
    because the replay sent another Host (echoed Host, absolute URLs) is not a difference."""
    from replaygate.replay import ReplayConfig, run_replay

    a, b = two_httpbins
    recorded = record(a.port)
    sink = CompareSink()
    run_replay(
        recorded, ReplayConfig(targets=[f"http://127.0.0.1:{b.port}"], max_speed=True), sink=sink
    )
    s = judge(sink.comparator.result(), GateConfig()).summary()
    assert s["verdict"] == "pass", s["reasons"]
    noise = {(e["endpoint"], f["field"]) for e in s["endpoints"] for f in e["noise_fields"]}
    assert ("GET /uuid", "body:$.uuid") in noise
    fields = {f["field"] for e in s["endpoints"] for f in e["fields"]}
    assert "body:$.headers.Host" not in fields and "body:$.url" not in fields
