"""NatsSink and read_stream against a real nats-server -js on loopback."""

from __future__ import annotations

import asyncio

import nats
import pytest

from replaygate.errors import StreamError
from replaygate.jetstream import NatsSink, admin, read_stream
from replaygate.jetstream.url import parse_stream_url
from replaygate.pipeline import Counters
from replaygate.testing import make_exchange
from replaygate.testing.nats import NatsServer


def test_publish_then_read_in_order(nats_server: NatsServer) -> None:
    url = nats_server.url + "/T1?partitions=4"
    sink = NatsSink(url)
    sent = [make_exchange("GET", f"/item/{i}", session=f"s{i % 5}") for i in range(500)]
    for ex in sent:
        sink.write(ex)
    sink.close()
    assert sink.published == 500
    got = list(read_stream(url))
    assert sorted(e.id for e in got) == sorted(e.id for e in sent)
    # within one session the order of publication is kept
    for s in range(5):
        want = [e.request.target for e in sent if e.session == f"s{s}"]
        have = [e.request.target for e in got if e.session == f"s{s}"]
        assert have == want


def test_duplicates_dropped_by_msg_id(nats_server: NatsServer) -> None:
    url = nats_server.url + "/T2"
    ex = make_exchange()
    sink = NatsSink(url)
    sink.write(ex)
    sink.write(ex)  # same Nats-Msg-Id: JetStream keeps one
    sink.close()
    assert len(list(read_stream(url))) == 1


def test_status_and_purge(nats_server: NatsServer) -> None:
    u = parse_stream_url(nats_server.url + "/T3")
    asyncio.run(admin.init(u, admin.StreamSettings(max_bytes=1 << 30)))
    sink = NatsSink(u)
    for i in range(10):
        sink.write(make_exchange(target=f"/{i}"))
    sink.close()
    st = asyncio.run(admin.status(u))
    assert st["streams"]["T3"]["messages"] == 10
    assert st["streams"]["T3-RESULTS"]["messages"] == 0
    out = asyncio.run(admin.purge(u))
    assert out["T3"] == 10
    assert list(read_stream(u)) == []


def test_missing_stream_is_one_line_error(nats_server: NatsServer) -> None:
    with pytest.raises(StreamError, match="does not exist"):
        list(read_stream(nats_server.url + "/NOPE"))


def test_unreachable_server_is_one_line_error() -> None:
    from replaygate.testing.servers import free_port

    with pytest.raises(StreamError, match="cannot connect"):
        NatsSink(f"nats://127.0.0.1:{free_port()}/T")


def test_buffering_across_a_server_restart(nats_server: NatsServer) -> None:
    """The sink keeps what it could not publish while NATS was away and sends it later."""
    url = nats_server.url + "/T4"
    c = Counters()
    sink = NatsSink(url, counters=c, close_timeout=30)
    for i in range(100):
        sink.write(make_exchange(target=f"/a/{i}"))
    nats_server.stop()
    for i in range(100):
        sink.write(make_exchange(target=f"/b/{i}"))
    nats_server.start()  # same port and store dir: the stream is still there
    sink.close()
    got = list(read_stream(url))
    assert len(got) + c.dropped["stream_unacked"] == 200
    assert len(got) == 200


def test_status_lag_counts_messages_no_worker_consumed_yet(nats_server: NatsServer) -> None:
    """Before any worker created its consumers every message is lag; once a partition's
    consumer acknowledged its messages, only the other partitions' count."""
    u = parse_stream_url(nats_server.url + "/T5?partitions=2")
    asyncio.run(admin.init(u, admin.StreamSettings()))
    sink = NatsSink(u)
    for i in range(20):
        sink.write(make_exchange(target=f"/{i}", session=f"s{i}"))
    sink.close()
    st = asyncio.run(admin.status(u))
    assert st["consumers"] == [] and st["lag"] == 20

    async def drain_partition_0() -> int:

        nc = await nats.connect(servers=list(u.servers))
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(u.subject(0), durable=u.consumer(0), stream=u.stream)
            n = 0
            while True:
                try:
                    msgs = await sub.fetch(50, timeout=2)
                except TimeoutError:
                    return n
                for m in msgs:
                    await m.ack_sync()
                    n += 1
        finally:
            await nc.close()

    acked = asyncio.run(drain_partition_0())
    assert 0 < acked < 20
    st = asyncio.run(admin.status(u))
    assert st["lag"] == 20 - acked


def test_status_worker_age_is_measured_on_the_clock(nats_server: NatsServer) -> None:
    """``stream status`` shows each worker's seconds since its last heartbeat (fake clock)."""
    import orjson

    from replaygate.testing import FakeClock

    u = parse_stream_url(nats_server.url + "/T6")
    asyncio.run(admin.init(u, admin.StreamSettings()))
    clock = FakeClock(50.0)
    beat = clock.time() - 12.5  # the worker's last heartbeat

    async def heartbeat() -> None:
        nc = await nats.connect(servers=list(u.servers))
        try:
            kv = await nc.jetstream().key_value(u.leases_bucket)
            await kv.put("w.a", orjson.dumps({"id": "a", "ts": beat}))
        finally:
            await nc.close()

    clock.advance(2.0)
    for _ in range(10):  # leases live LEASE_TTL_S: on a very busy box put it again
        asyncio.run(heartbeat())
        st = asyncio.run(admin.status(u, clock=clock))
        if st["workers"]:
            break
    assert [(w["id"], w["age_s"]) for w in st["workers"]] == [("a", 14.5)]
