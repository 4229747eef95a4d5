"""End-to-end replay against real servers on loopback (nginx and tests/replay/_servers.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from replaygate.errors import ReplayError
from replaygate.formats.gor import GorWriter, read_records
from replaygate.model import ConnectionId, Exchange, Flag, Request
from replaygate.replay import (
    LiveReplayer,
    ReplayConfig,
    ReplayStats,
    run_replay,
    run_replay_parallel,
)
from replaygate.replay.engine import Engine
from replaygate.testing import MemorySink, make_exchange, make_request
from replaygate.testing.servers import NginxServer, free_port

from ._servers import TestServer, tls_context

T0 = 1_700_000_000_000_000_000


def cfg(*targets: str, **kw: object) -> ReplayConfig:
    kw.setdefault("max_speed", True)
    kw.setdefault("concurrency", 8)
    return ReplayConfig(targets=list(targets), **kw)  # type: ignore[arg-type]


def gets(paths: list[str], **kw: object) -> list[Exchange]:
    return [
        make_exchange("GET", p, id=f"{i:040x}", ts_ns=T0 + i * 1_000_000, **kw)  # type: ignore[arg-type]
        for i, p in enumerate(paths)
    ]


@pytest.fixture(autouse=True, params=["lanes", "coroutines"])
def engine_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test through both --max paths: callback lanes and coroutine workers."""
    monkeypatch.setattr(Engine, "fast_lanes", request.param == "lanes")
    return str(request.param)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer() as s:
        yield s


def replay(exs: list[Exchange], config: ReplayConfig) -> tuple[list[Exchange], ReplayStats]:
    sink = MemorySink()
    st = run_replay(exs, config, sink=sink)
    assert sink.closed
    return sink.exchanges, st


def test_max_mode_against_nginx(nginx: NginxServer) -> None:
    exs = gets(["/json"] * 300 + ["/status/404", "/status/204", "/status/304"])
    out, st = replay(exs, cfg(nginx.url, concurrency=16))
    assert st.sent == st.answered == 303
    assert not st.errors
    by_path = {e.request.target: e for e in out}
    assert by_path["/json"].replayed is not None
    assert by_path["/json"].replayed.decoded_body().startswith(b'{"id": 1')
    assert by_path["/status/404"].replayed.status == 404
    assert by_path["/status/204"].replayed.status == 204
    for e in out:
        assert e.replay_latency_ns is not None and e.replay_latency_ns > 0
        assert e.replay_ts_ns is not None and e.meta["target"] == nginx.url
    assert st.latency_p99_ms >= st.latency_p50_ms > 0
    assert st.connections <= 16


def test_bytes_sent_as_recorded_only_host_changed(server: TestServer) -> None:
    raw = (
        b"GET /echo?a=1&a=2 HTTP/1.1\r\nhost: prod.example:8080\r\nX-Dup: 1\r\n"
        b"x-dup: 2\r\nACCEPT:  */*\r\n\r\n"
    )
    ex = Exchange(id="a" * 40, request=Request(raw, ts_first_ns=T0))
    out, _ = replay([ex], cfg(server.url))
    sent = server.seen[0].raw
    assert sent == raw.replace(b"prod.example:8080", f"127.0.0.1:{server.port}".encode())
    assert out[0].replayed is not None and out[0].replayed.body() == sent


def test_keep_host(server: TestServer) -> None:
    ex = make_exchange("GET", "/echo", id="b" * 40)
    replay([ex], cfg(server.url, keep_host=True))
    assert b"Host: example.test\r\n" in server.seen[0].raw


def test_target_path_prefix(server: TestServer) -> None:
    replay(gets(["/x?q=1"]), cfg(server.url + "/api"))
    assert server.seen[0].target == "/api/x?q=1"


def test_content_length_fixed_when_body_changed(server: TestServer) -> None:
    raw = b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nhello"
    ex = Exchange(id="c" * 40, request=Request(raw, ts_first_ns=T0))
    replay([ex], cfg(server.url))
    assert b"Content-Length: 5\r\n" in server.seen[0].raw
    assert server.seen[0].raw.endswith(b"hello")


class _Hook:
    def __init__(self) -> None:
        self.after: list[str] = []

    def before_send(self, ex: Exchange, request: Request) -> Request:
        new = request.with_body(b"changed body")
        assert isinstance(new, Request)
        return new

    def after_response(self, ex: Exchange) -> None:
        self.after.append(ex.id)


def test_hooks_see_and_change_requests(server: TestServer) -> None:
    h = _Hook()
    ex = make_exchange("POST", "/echo", request_body=b"orig", id="d" * 40)
    sink = MemorySink()
    run_replay([ex], cfg(server.url), sink=sink, hooks=[h])
    assert server.seen[0].raw.endswith(b"Content-Length: 12\r\n\r\nchanged body")
    assert h.after == ["d" * 40]
    assert sink.exchanges[0].meta.get("replay_request_modified") == "1"


def test_response_framings(server: TestServer) -> None:
    exs = gets(["/chunked", "/close", "/continue", "/json"])
    exs.append(make_exchange("HEAD", "/head", id="e" * 40))
    out, st = replay(exs, cfg(server.url, concurrency=1))
    by = {e.request.target: e for e in out}
    assert by["/chunked"].replayed is not None
    assert by["/chunked"].replayed.body() == b"hello world"
    assert by["/chunked"].replayed.raw.endswith(b"0\r\n\r\n")
    assert by["/close"].replayed is not None
    assert by["/close"].replayed.body() == b"until the end"
    assert by["/continue"].replayed is not None
    assert by["/continue"].replayed.status == 200
    assert by["/continue"].replayed.body() == b"done"
    assert by["/continue"].meta["replay_interim"] == "100"
    assert by["/head"].replayed is not None and by["/head"].replayed.body() == b""
    assert not st.errors


def test_error_kinds_recorded_per_exchange(server: TestServer) -> None:
    # a generous timeout: on a busy machine the fast answers must not be taken for timeouts
    exs = gets(["/reset", "/hang?s=8", "/hang?s=0", "/garbage", "/json"])
    out, st = replay(exs, cfg(server.url, concurrency=5, response_timeout=3.0))
    kinds = {e.request.target: e.replay_error for e in out}
    assert kinds == {
        "/reset": "reset",
        "/hang?s=8": "timeout",
        "/hang?s=0": "closed",
        "/garbage": "bad_response",
        "/json": None,
    }
    assert st.errors == {"reset": 1, "timeout": 1, "closed": 1, "bad_response": 1}


def test_connect_refused() -> None:
    out, st = replay(gets(["/a", "/b"]), cfg(f"http://127.0.0.1:{free_port()}"))
    assert [e.replay_error for e in out] == ["connect_refused"] * 2
    assert st.answered == 0


def test_connect_timeout() -> None:
    # A listener that never accepts, with its backlog full: further SYNs go unanswered.
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        out, _ = replay(gets(["/a"]), cfg(f"http://127.0.0.1:{port}", connect_timeout=0.3))
        assert out[0].replay_error == "connect_timeout"
    finally:
        for s in fillers:
            s.close()
        ls.close()


def test_tls_targets(tmp_path: Path) -> None:
    ctx, cert = tls_context(str(tmp_path))
    with TestServer(tls=ctx) as s:
        out, _ = replay(gets(["/json"]), cfg(s.url, ca_file=cert))
        assert out[0].replayed is not None and out[0].replayed.status == 200
        out, _ = replay(gets(["/json"]), cfg(s.url, insecure=True))
        assert out[0].replayed is not None
        out, _ = replay(gets(["/json"]), cfg(s.url))
        assert out[0].replay_error == "tls"


def test_sessions_in_order_over_one_connection(server: TestServer) -> None:
    exs = []
    for i in range(60):
        s = i % 3
        conn = ConnectionId("10.0.0.9", 4000 + s, "10.0.0.1", 80)
        exs.append(
            make_exchange("GET", f"/s{s}/{i}", id=f"{i:040x}", conn=conn, ts_ns=T0 + i * 1000)
        )
    replay(exs, cfg(server.url, sessions=True, concurrency=8))
    by_session: dict[str, list[tuple[int, int, int]]] = {}
    for seen in server.seen:
        s, i = seen.target.split("/")[1:]
        by_session.setdefault(s, []).append((seen.order, int(i), seen.conn))
    assert len(by_session) == 3
    for items in by_session.values():
        assert len({c for _, _, c in items}) == 1  # one connection per session
        assert [i for _, i, _ in sorted(items)] == sorted(i for _, i, _ in items)  # in order


def test_session_key_cookie(server: TestServer) -> None:
    exs = [
        make_exchange(
            "GET",
            f"/u{i % 2}/{i}",
            id=f"{i:040x}",
            request_headers=[("Cookie", f"a=b; sid=user{i % 2}")],
        )
        for i in range(20)
    ]
    replay(exs, cfg(server.url, sessions=True, session_key="cookie:sid"))
    conns: dict[str, set[int]] = {}
    for seen in server.seen:
        conns.setdefault(seen.target.split("/")[1], set()).add(seen.conn)
    assert all(len(c) == 1 for c in conns.values()) and len(conns) == 2


def test_broadcast_split_and_baseline() -> None:
    with TestServer() as a, TestServer() as b, TestServer() as base:
        exs = gets([f"/{i}" for i in range(10)])
        out, st = replay(exs, cfg(a.url, b.url, baseline=base.url))
        assert len(a.seen) == len(b.seen) == len(base.seen) == 10
        assert st.sent == 30
        roles = {(e.meta["target"], e.meta["role"]) for e in out}
        assert roles == {(a.url, "candidate"), (b.url, "candidate"), (base.url, "baseline")}
        ids = [e.id for e in out if e.meta["target"] == a.url]
        assert sorted(ids) == sorted(e.id for e in exs)
    with TestServer() as a, TestServer() as b:
        exs = []
        for i in range(40):
            conn = ConnectionId("10.0.0.9", 5000 + i % 8, "10.0.0.1", 80)
            exs.append(make_exchange("GET", f"/{i % 8}/{i}", id=f"{i:040x}", conn=conn))
        replay(exs, cfg(a.url, b.url, split=True))
        assert len(a.seen) + len(b.seen) == 40 and a.seen and b.seen
        sa = {s.target.split("/")[1] for s in a.seen}
        sb = {s.target.split("/")[1] for s in b.seen}
        assert not sa & sb  # sticky: one session, one target


def test_safety_refuses_unsafe_methods_to_captured_host(server: TestServer) -> None:
    host = f"127.0.0.1:{server.port}"
    post = make_exchange("POST", "/orders", request_body=b"{}", id="f" * 40)
    post.request = make_request("POST", "/orders", body=b"{}", host=host)
    with pytest.raises(ReplayError, match="allow-unsafe-target"):
        run_replay([post], cfg(server.url))
    assert not server.seen
    get = make_exchange("GET", "/ok", id="1" * 40)
    get.request = make_request("GET", "/ok", host=host)
    out, _ = replay([get], cfg(server.url))
    assert out[0].replayed is not None
    via_conn = make_exchange(
        "DELETE", "/x", id="2" * 40, conn=ConnectionId("10.1.1.1", 999, "127.0.0.1", server.port)
    )
    with pytest.raises(ReplayError):
        run_replay([via_conn], cfg(server.url))
    out, _ = replay([post], cfg(server.url, allow_unsafe_target=True))
    assert out[0].replayed is not None


@pytest.mark.parametrize("how", ["host-by-name", "mapped-target", "proxy-upstream"])
def test_safety_rule_compares_addresses_not_names(server: TestServer, how: str) -> None:
    """The recorded Host is resolved (localhost is 127.0.0.1), IPv4-mapped IPv6 targets
    are the IPv4 address, and a proxy recording's upstream is the captured host."""
    host, target = f"127.0.0.1:{server.port}", server.url
    if how == "host-by-name":
        host = f"localhost:{server.port}"
    elif how == "mapped-target":
        target = f"http://[::ffff:127.0.0.1]:{server.port}"
    post = make_exchange("POST", "/orders", request_body=b"{}", id="e" * 40)
    if how == "proxy-upstream":  # Host as the client sent it, conn = the proxy's own port
        post.request = make_request("POST", "/orders", body=b"{}", host="shop.test")
        post.conn = ConnectionId("127.0.0.1", 40000, "127.0.0.1", free_port())
        post.meta["upstream"] = server.url
    else:
        post.request = make_request("POST", "/orders", body=b"{}", host=host)
    with pytest.raises(ReplayError, match="allow-unsafe-target"):
        run_replay([post], cfg(target))
    assert not server.seen


def test_redirects(server: TestServer) -> None:
    exs = gets(["/redirect?to=/final&code=301"])
    out, _ = replay(exs, cfg(server.url))
    assert out[0].replayed is not None and out[0].replayed.status == 301
    out, _ = replay(gets(["/redirect?to=/final&code=302"]), cfg(server.url, redirects=3))
    assert out[0].replayed is not None and out[0].replayed.status == 200
    assert out[0].meta["redirects"] == "1" and server.seen[-1].target == "/final"
    n = len(server.seen)
    out, _ = replay(
        gets(["/redirect?to=http://elsewhere.test/x&code=307"]), cfg(server.url, redirects=3)
    )
    assert out[0].replayed is not None and out[0].replayed.status == 307
    assert len(server.seen) == n + 1  # never followed off the target
    post = make_exchange("POST", "/redirect?to=/after&code=303", request_body=b"x=1", id="3" * 40)
    replay([post], cfg(server.url, redirects=1))
    assert server.seen[-1].method == "GET" and server.seen[-1].target == "/after"


def test_output_file_has_type3_records(server: TestServer, tmp_path: Path) -> None:
    exs = gets(["/json"] * 20 + ["/reset"])
    path = tmp_path / "out.gor"
    run_replay(exs, cfg(server.url), sink=GorWriter(path))
    recs = list(read_records(path))
    t3 = [r for r in recs if r.type == 3]
    assert len([r for r in recs if r.type == 1]) == len(t3) == 21
    assert sum(1 for r in t3 if r.extra.get("err") == "reset") == 1
    assert all(r.latency_ns and r.latency_ns > 0 for r in t3 if not r.extra.get("err"))
    assert all(r.payload.startswith(b"HTTP/1.1 200") for r in t3 if not r.extra.get("err"))


def test_stop_event_stops_early(server: TestServer) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def progress(st: ReplayStats) -> None:
        seen.append(st.sent)
        stop.set()

    exs = gets(["/json"] * 5000)
    st = run_replay(
        exs, cfg(server.url, rate=200.0, max_speed=False), on_progress=progress, stop=stop
    )
    assert st.stopped and st.sent < 5000


def test_live_replayer(server: TestServer) -> None:
    sink = MemorySink()
    lr = LiveReplayer(cfg(server.url), sink=sink)
    lr.start()
    for ex in gets([f"/live/{i}" for i in range(30)]):
        assert lr.submit(ex)
    st = lr.close(timeout=10)
    assert st.sent == 30 and len(sink.exchanges) == 30 and sink.closed
    assert not lr.submit(gets(["/late"])[0])


def test_live_replayer_drops_and_counts_when_full(server: TestServer) -> None:
    lr = LiveReplayer(cfg(server.url, concurrency=1), max_queue=2)
    lr.start()
    results = [lr.submit(ex) for ex in gets(["/slow?ms=200"] * 20)]
    st = lr.close(timeout=20)
    dropped = results.count(False)
    assert dropped > 0 and st.dropped["backpressure"] == dropped
    assert st.sent == 20 - dropped


def test_live_replayer_skips_unsafe(server: TestServer) -> None:
    lr = LiveReplayer(cfg(server.url))
    lr.start()
    ex = make_exchange("PUT", "/x", id="4" * 40)
    ex.request = make_request("PUT", "/x", host=f"127.0.0.1:{server.port}")
    lr.submit(ex)
    st = lr.close(timeout=5)
    assert st.dropped["unsafe_target"] == 1 and st.sent == 0


def test_workers_split_by_session(server: TestServer) -> None:
    def source() -> list[Exchange]:
        return [
            make_exchange(
                "GET",
                f"/w/{i}",
                id=f"{i:040x}",
                conn=ConnectionId("10.0.0.9", 6000 + i % 5, "10.0.0.1", 80),
            )
            for i in range(50)
        ]

    st = run_replay_parallel(source, cfg(server.url, workers=2, concurrency=4))
    assert st.sent == st.answered == 50
    assert sorted(s.target for s in server.seen) == sorted(f"/w/{i}" for i in range(50))


def test_sessions_in_order_in_timed_mode(server: TestServer) -> None:
    exs = []
    for i in range(30):
        conn = ConnectionId("10.0.0.9", 7000 + i % 2, "10.0.0.1", 80)
        path = f"/slow?ms=30&s={i % 2}&i={i}" if i % 5 == 0 else f"/t?s={i % 2}&i={i}"
        exs.append(make_exchange("GET", path, id=f"{i:040x}", conn=conn, ts_ns=T0 + i * 1000))
    _, st = replay(exs, cfg(server.url, sessions=True, max_speed=False, rate=500.0))
    assert st.sent == 30
    orders: dict[str, list[int]] = {}
    conns: dict[str, set[int]] = {}
    for seen in server.seen:
        q = dict(p.split("=") for p in seen.target.split("?")[1].split("&"))
        orders.setdefault(q["s"], []).append(int(q["i"]))
        conns.setdefault(q["s"], set()).add(seen.conn)
    assert all(v == sorted(v) for v in orders.values())
    assert all(len(c) == 1 for c in conns.values())


def test_incomplete_requests_are_skipped_and_counted(server: TestServer) -> None:
    cut = Exchange(id="5" * 40, request=Request(b"GET /cut HTTP/1.1\r\nHost: a\r\nX-Hal"))
    gap = make_exchange("GET", "/gap", id="6" * 40)
    gap.flags.add(Flag.REQUEST_GAP)
    ok = make_exchange("GET", "/ok", id="7" * 40)
    out, st = replay([cut, gap, ok], cfg(server.url))
    assert [e.request.target for e in out] == ["/ok"]
    assert st.dropped["incomplete_request"] == 2 and st.sent == 1


def test_live_replayer_stats_snapshot_from_another_thread(server: TestServer) -> None:
    lr = LiveReplayer(cfg(server.url))
    lr.start()
    for ex in gets([f"/snap/{i}" for i in range(20)]):
        lr.submit(ex)
    import time

    deadline = time.monotonic() + 10
    while lr.stats.answered < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    snap = lr.stats
    assert snap.answered == 20 and snap.latency_p50_ms > 0
    final = lr.close(timeout=5)
    assert final.sent == 20 and lr.stats is final


def test_output_file_reads_back_with_replayed_responses(server: TestServer, tmp_path: Path) -> None:
    from replaygate.formats import open_reader

    path = tmp_path / "out.gor"
    run_replay(gets(["/json"] * 5), cfg(server.url), sink=GorWriter(path))
    back = list(open_reader(path))
    assert len(back) == 5 and all(e.replayed is not None for e in back)


def test_split_round_robin_without_sessions_and_with_baseline() -> None:
    with TestServer() as a, TestServer() as b, TestServer() as base:
        out, st = replay(
            gets([f"/{i}" for i in range(10)]), cfg(a.url, b.url, split=True, baseline=base.url)
        )
        assert len(a.seen) == len(b.seen) == 5 and len(base.seen) == 10
        assert st.sent == 20
        assert {e.meta["role"] for e in out if e.meta["target"] == base.url} == {"baseline"}


def test_stale_keep_alive_is_retried_once_on_a_fresh_connection(server: TestServer) -> None:
    out, st = replay(gets(["/ka-then-close"] * 4), cfg(server.url, concurrency=1))
    assert all(e.replayed is not None and e.replayed.status == 200 for e in out), [
        e.replay_error for e in out
    ]
    assert st.answered == 4 and st.retries >= 1 and st.connections >= 2


def test_connection_close_responses_reconnect(server: TestServer) -> None:
    out, st = replay(gets(["/close"] * 5), cfg(server.url, concurrency=1))
    assert [e.replayed.body() for e in out if e.replayed] == [b"until the end"] * 5
    assert st.connections == 5 and not st.errors


# -- --order (happens-before from the recording) ------------------------------------------------
def _span(path: str, start_ms: int, end_ms: int, i: int) -> Exchange:
    return make_exchange(
        "GET",
        path,
        id=f"{i:040x}",
        ts_ns=T0 + start_ms * 1_000_000,
        latency_ns=(end_ms - start_ms) * 1_000_000,
        conn=ConnectionId("10.0.0.1", 40000 + i, "10.0.0.2", 80),
    )


def test_recorded_order_holds_a_request_until_its_predecessor_finished(
    server: TestServer,
) -> None:
    exs = [
        _span("/slow?ms=200", 0, 10, 0),  # A
        _span("/c", 5, 30, 1),  # C overlaps A: may go at once
        _span("/b", 20, 21, 2),  # B began after A ended: waits for A
    ]
    _, st = replay(exs, cfg(server.url))
    seen = {s.target: s.order for s in server.seen}
    assert seen["/b"] > seen["/slow?ms=200"]
    assert st.order == "recorded" and st.order_waited >= 1 and st.answered == 3
    assert st.as_dict()["order_waited"] == st.order_waited


def test_a_failed_predecessor_does_not_block(server: TestServer) -> None:
    exs = [_span("/reset", 0, 1, 0), _span("/after", 2, 3, 1), _span("/after2", 4, 5, 2)]
    _, st = replay(exs, cfg(server.url, concurrency=4))
    assert st.errors["reset"] == 1 and st.answered == 2


def test_stop_while_a_request_waits_for_its_predecessor(server: TestServer) -> None:
    exs = [_span("/hang?s=2", 0, 1, 0), _span("/b", 2, 3, 1), _span("/c", 4, 5, 2)]
    stop = threading.Event()
    result: list[ReplayStats] = []
    t = threading.Thread(target=lambda: result.append(run_replay(exs, cfg(server.url), stop=stop)))
    t.start()
    for _ in range(2000):  # poll (<= 20 s) until A reached the server
        if server.seen:
            break
        threading.Event().wait(0.01)
    stop.set()
    t.join(60)
    assert not t.is_alive() and result
    st = result[0]
    assert st.stopped and st.sent == 1 and st.dropped["stopped"] >= 1
    assert [s.target for s in server.seen] == ["/hang?s=2"]


def test_order_none_and_sessions_modes(server: TestServer) -> None:
    exs = [_span("/slow?ms=50", 0, 10, 0), _span("/b", 20, 21, 1)]
    _, st = replay(exs, cfg(server.url, order="none"))
    assert st.order == "none" and st.order_waited == 0 and st.answered == 2
    _, st = replay(exs, cfg(server.url, order="sessions"))
    assert st.order == "sessions" and st.answered == 2  # different connections: independent
