"""Replay over HTTP/2 (``--http2``) against a real HTTP/2 server: hypercorn serving a JSON API
over h2c (prior knowledge) and h2/TLS (ALPN), multiplexed, and compared: the changed version
fails on exactly its changes, the same version passes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replaygate.compare import CompareSink, GateConfig, judge
from replaygate.model import Exchange
from replaygate.replay import ReplayConfig, run_replay
from replaygate.testing import MemorySink, make_exchange

from ._h2replay import replay, write_gor
from ._h2servers import Http11TlsServer, Hypercorn, tls_certs
from ._servers import tls_context

pytest.importorskip("hypercorn")


def api_requests(n: int = 40) -> list[Exchange]:
    out = []
    for i in range(n):
        out.append(make_exchange("GET", f"/api/items/{i % 20}", id=f"{i:040x}"))
    body = bytes(range(256)) * 4096  # 1 MiB: more than the default 64 KiB windows
    out.append(
        make_exchange(
            "POST",
            "/api/echo",
            request_body=body,
            request_headers=[("Content-Type", "application/octet-stream")],
            id=f"{n:040x}",
        )
    )
    out.append(make_exchange("GET", "/api/big?n=3000000", id=f"{n + 1:040x}"))
    return out


@pytest.fixture
def v1() -> Iterator[Hypercorn]:
    with Hypercorn(1) as s:
        yield s


def test_h2c_multiplexed_streams_and_flow_control(v1: Hypercorn) -> None:
    exs = api_requests()
    stats, out = replay(exs, v1.url, concurrency=32, h2_streams=8, h2_connections=2)
    assert stats.errors == {} and stats.answered == len(exs)
    assert stats.connections == 2
    assert {v for v, _, _ in v1.seen} == {"2"} and len(v1.seen) == len(exs)
    by_path = {e.request.target: e for e in out}
    echo = by_path["/api/echo"].replayed
    assert echo is not None and echo.version == "HTTP/2" and echo.status == 200
    assert json.loads(echo.body())["len"] == 1 << 20
    big = by_path["/api/big?n=3000000"].replayed
    assert big is not None and len(big.body()) == 3_000_000
    item = by_path["/api/items/3"].replayed
    assert item is not None and json.loads(item.body())["price"] == 30


def test_timed_mode_and_sessions_over_h2(v1: Hypercorn) -> None:
    exs = api_requests(10)[:10]
    for i, e in enumerate(exs):
        e.session = f"s{i % 2}"
    stats, out = replay(exs, v1.url, max_speed=False, rate=500.0, sessions=True, order="sessions")
    assert stats.errors == {} and stats.answered == 10 and stats.asked_rate is not None
    assert all(e.replayed is not None and e.replayed.status == 200 for e in out)


def test_h2_over_tls_with_alpn(tmp_path: Path) -> None:
    certs, _ = tls_certs(str(tmp_path))
    with Hypercorn(1, certs=certs) as srv:
        stats, _out = replay(api_requests(6), srv.url, ca_file=certs[0], h2_streams=4)
        assert stats.errors == {} and stats.answered == 8
        assert {v for v, _, _ in srv.seen} == {"2"}


def test_a_tls_target_without_h2_is_an_alpn_error(tmp_path: Path) -> None:
    ctx, cert = tls_context(str(tmp_path))
    with Http11TlsServer(ctx) as srv:
        stats, out = replay(api_requests(3)[:3], srv.url, ca_file=cert)
    assert stats.errors == {"alpn": 3} and all(e.replay_error == "alpn" for e in out)
    assert srv.received == b""  # refused before a byte of HTTP/2 was sent


def _recorded(target: str) -> list[Exchange]:
    """A recording of the API on ``target`` over HTTP/2: the answers it gave."""
    _, out = replay(api_requests(30), target, h2_streams=16)
    rec = []
    for e in out:
        assert e.replayed is not None
        r = e.copy()
        r.response, r.replayed = e.replayed, None
        r.replay_latency_ns = None
        rec.append(r)
    return rec


def _verdict(rec: list[Exchange], target: str) -> dict[str, Any]:
    sink = CompareSink()
    replay(rec, target, sink=sink, concurrency=16, h2_streams=8, h2_connections=2)
    summary: dict[str, Any] = judge(sink.comparator.result(), GateConfig()).summary()
    return summary


def test_same_version_passes_changed_version_fails_on_exactly_its_changes(v1: Hypercorn) -> None:
    rec = _recorded(v1.url)
    with Hypercorn(1) as again, Hypercorn(2) as v2:
        same = _verdict(rec, again.url)
        changed = _verdict(rec, v2.url)
    assert same["verdict"] == "pass", same["reasons"]
    assert changed["verdict"] == "fail"

    def regressions(s: dict[str, Any]) -> set[tuple[str, str, int]]:
        return {
            (e["endpoint"], f["field"], f["count"])
            for e in s["endpoints"]
            for f in e["fields"]
            if f["status"] == "regression"
        }

    assert regressions(same) == set()
    # item 3 is asked twice in the recording (items 0-19, then 0-9), item 13 once
    assert regressions(changed) == {
        ("GET /api/items/{int}", "body:$.price", 2),
        ("GET /api/items/{int}", "status", 1),
    }


def test_config_keys_and_the_summary(v1: Hypercorn, tmp_path: Path) -> None:
    from ..cli.test_replay import run

    rec = write_gor(tmp_path / "rec.gor", api_requests(12)[:12])
    conf = tmp_path / "replaygate.toml"
    conf.write_text(
        f'[replay]\ntargets = ["{v1.url}"]\nhttp2 = true\nh2_streams = 2\nh2_connections = 3\n'
        "concurrency = 6\n"
    )
    code, text = run(str(rec), "--config", str(conf), "--max", "--allow-unsafe-target")
    assert code == 0, text
    assert "answered 12, errors 0" in text and "3 connections" in text
    assert {v for v, _, _ in v1.seen} == {"2"}
    code, text = run(str(rec), "--config", str(conf), "--h2-streams", "0")
    assert code == 2 and "--h2-streams" in text


def test_correlation_carries_the_session_token_staging_issued(v1: Hypercorn) -> None:
    from replaygate.replay.correlation import CorrelationHook

    login = make_exchange(
        "POST", "/api/login", id="0" * 40, session="u1",
        response_headers=[("set-cookie", "sid=ORIGTOKEN12345; Path=/")],
    )  # fmt: skip
    me = make_exchange(
        "GET", "/api/me", id="1" * 40, session="u1",
        request_headers=[("cookie", "sid=ORIGTOKEN12345")],
    )  # fmt: skip
    statuses = {}
    for hooks in ((), (CorrelationHook(),)):
        sink = MemorySink()
        cfg = ReplayConfig(
            targets=[v1.url], http2=True, max_speed=True, order="sessions",
            allow_unsafe_target=True, concurrency=1,
        )  # fmt: skip
        run_replay([login.copy(), me.copy()], cfg, sink=sink, hooks=hooks)
        out = sorted(sink.exchanges, key=lambda e: e.id)
        statuses[len(hooks)] = [e.replayed.status for e in out if e.replayed]
    assert statuses == {0: [200, 401], 1: [200, 200]}


def test_curl_through_the_proxy_then_replayed_and_judged(tmp_path: Path) -> None:
    """Real clients (``curl --http2-prior-knowledge``, ``curl --http2``) record the API
    through ``replaygate proxy --upstream-http2``; the recording replays with ``--http2``
    to the same version (pass) and to version 2 (fails on exactly its two changes)."""
    import shutil
    import subprocess

    from click.testing import CliRunner

    from replaygate.cli import cli
    from replaygate.formats import open_reader
    from replaygate.formats.gor import GorWriter
    from replaygate.sources.proxy import ProxyConfig, ProxyServer

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    rec = tmp_path / "rec.gor"
    with Hypercorn(1) as v1:
        cfg = ProxyConfig(upstream=v1.url, listen="127.0.0.1:0", upstream_http2=True)
        with ProxyServer(cfg, GorWriter(rec)) as px:
            urls = [f"http://127.0.0.1:{px.port}/api/items/{i}" for i in range(20)]
            # one curl per URL: curl 7.88 fails reusing a prior-knowledge connection
            # ("Error in the HTTP2 framing layer"), with or without the proxy in between
            for i, url in enumerate(urls):
                flag = "--http2-prior-knowledge" if i % 2 else "--http2"  # h2c: both ways in
                subprocess.run(["curl", "-sS", flag, "-o", "/dev/null", url],
                               check=True, timeout=60)  # fmt: skip
    recorded = list(open_reader(rec))
    assert len(recorded) == 20 and all(e.response is not None for e in recorded)
    assert {e.request.version for e in recorded} == {"HTTP/2"}
    reports = {}
    with Hypercorn(1) as again, Hypercorn(2) as v2:
        for name, url in (("same", again.url), ("v2", v2.url)):
            out, js = tmp_path / f"{name}.gor", tmp_path / f"{name}.json"
            r = CliRunner().invoke(cli, ["replay", str(rec), "-t", url, "--http2",
                                         "--allow-unsafe-target", "-o", str(out), "--no-progress"])  # fmt: skip
            assert r.exit_code == 0, r.output
            r = CliRunner().invoke(cli, ["compare", str(out), "-q", "--json", str(js)])
            reports[name] = (r.exit_code, json.loads(js.read_text()))
    code, same = reports["same"]
    assert code == 0 and same["verdict"] == "pass", same.get("reasons")
    code, changed = reports["v2"]
    assert code == 1 and changed["verdict"] == "fail"
    failing = {
        (ep["endpoint"], f["field"])
        for ep in changed["endpoints"]
        for f in ep["fields"]
        if f["status"] == "regression"
    }
    assert failing == {
        ("GET /api/items/{int}", "body:$.price"),
        ("GET /api/items/{int}", "status"),
    }


def test_worker_processes_each_multiplex_their_own_connections(
    v1: Hypercorn, tmp_path: Path
) -> None:
    from replaygate.formats import open_reader

    from ..cli.test_replay import run

    rec = write_gor(tmp_path / "rec.gor", api_requests(24)[:24])
    out = tmp_path / "out.jsonl"
    code, text = run(str(rec), "-t", v1.url, "--http2", "--workers", "2", "-c", "8", "--max",
                     "--allow-unsafe-target", "-o", str(out))  # fmt: skip
    assert code == 0, text
    back = list(open_reader(str(out)))
    assert len(back) == 24 and all(e.replayed and e.replayed.version == "HTTP/2" for e in back)
    assert "2 connections" in text  # one per worker process
