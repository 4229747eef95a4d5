"""PullConsumer: nats-py's fetch semantics with a callback subscription."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from replaygate.jetstream import NatsSink
from replaygate.jetstream._conn import connect
from replaygate.jetstream._publish import AckPublisher
from replaygate.jetstream._pull import PullConsumer
from replaygate.jetstream.codec import decode_exchange
from replaygate.jetstream.url import parse_stream_url
from replaygate.testing import make_exchange
from replaygate.testing.nats import NatsServer


def _fill(url: str, n: int) -> None:
    sink = NatsSink(url)
    for i in range(n):
        sink.write(make_exchange(target=f"/{i}"))
    sink.close()


async def _consumer(url: str) -> tuple[object, PullConsumer]:
    u = parse_stream_url(url)
    nc = await connect(u)
    js = nc.jetstream()
    cfg = ConsumerConfig(
        name="c0", durable_name="c0", filter_subject=u.subject(0), ack_policy=AckPolicy.EXPLICIT
    )
    await js.add_consumer(u.stream, cfg)
    return nc, await PullConsumer(nc, "$JS.API", u.stream, "c0").start()


def test_fetch_in_batches_then_times_out(nats_server: NatsServer) -> None:
    url = nats_server.url + "/PULL?partitions=1"
    _fill(url, 30)

    async def run() -> list[int]:
        nc, pc = await _consumer(url)
        sizes = [len(await pc.fetch(8, 5.0)), len(await pc.fetch(64, 5.0))]
        with pytest.raises(TimeoutError):
            await pc.fetch(64, 0.5)
        await pc.unsubscribe()
        await nc.close()  # type: ignore[attr-defined]
        return sizes

    assert asyncio.run(run()) == [8, 22]


def test_acked_messages_are_not_redelivered(nats_server: NatsServer) -> None:
    url = nats_server.url + "/PULL2?partitions=1"
    _fill(url, 10)

    async def run() -> tuple[list[str], int]:
        nc, pc = await _consumer(url)
        msgs = await pc.fetch(10, 5.0)
        pub = AckPublisher(nc)  # type: ignore[arg-type]
        await pub.send_plain([m.reply for m in msgs], b"+ACK")
        pub._fast = False
        await pub.send_plain([], b"+ACK")
        targets = [decode_exchange(m.data).request.target for m in msgs]
        await asyncio.sleep(0)
        u = parse_stream_url(url)
        js = nc.jetstream()  # type: ignore[attr-defined]
        for _ in range(100):  # acks are asynchronous: poll the consumer state
            info = await js.consumer_info(u.stream, "c0")
            if info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.1)
        await nc.close()  # type: ignore[attr-defined]
        return targets, info.num_ack_pending

    targets, unacked = asyncio.run(run())
    assert targets == [f"/{i}" for i in range(10)] and unacked == 0


def test_delivery_count_read_from_the_ack_subject() -> None:
    from nats.aio.msg import Msg

    from replaygate.jetstream.worker import _deliveries

    for reply in (
        "$JS.ACK.S.c0.3.10.9.1700000000000000000.5",
        "$JS.ACK.dom.acchash.S.c0.2.10.9.1700000000000000000.5.rand",
    ):
        m = Msg(_client=None, subject="rg.S.p.0", reply=reply)  # type: ignore[arg-type]
        assert _deliveries(m) == m.metadata.num_delivered
