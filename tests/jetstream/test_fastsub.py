"""_fastsub: raw messages straight from the parser for registered subscriptions, nats-py's path
for the others, and the callback as the fallback when the internals are not there."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from replaygate.jetstream import NatsSink, _fastsub
from replaygate.jetstream._conn import connect
from replaygate.jetstream._fastsub import fast_subscribe, fast_unsubscribe, status_of
from replaygate.jetstream._publish import AckPublisher
from replaygate.jetstream._pull import PullConsumer
from replaygate.jetstream.codec import decode_exchange
from replaygate.jetstream.url import parse_stream_url
from replaygate.testing import make_exchange
from replaygate.testing.nats import NatsServer


def test_status_of() -> None:
    assert status_of(b"NATS/1.0 404 No Messages\r\n\r\n", b"") == b"404"
    assert status_of(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n", b"")
    assert status_of(b"NATS/1.0 404\r\n\r\n", b"body") is None  # a body: a message
    assert status_of(b"NATS/1.0\r\nRg-Id: x\r\n\r\n", b"") is None
    assert status_of(None, b"") is None


def test_raw_handler_and_nats_py_side_by_side(nats_server: NatsServer) -> None:
    async def run() -> tuple[list[tuple[bytes, bytes, bytes, bytes | None]], list[bytes], int]:
        nc = await connect(parse_stream_url(nats_server.url + "/S"))
        raw: list[tuple[bytes, bytes, bytes, bytes | None]] = []
        slow: list[bytes] = []
        done = asyncio.Event()

        async def cb(msg: object) -> None:  # never called for the fast subscription
            raise AssertionError("fast subscription delivered through nats-py")

        async def other(msg: object) -> None:
            slow.append(msg.data)  # type: ignore[attr-defined]
            done.set()

        sub = await fast_subscribe(nc, "fast.*", lambda s, r, d, h: raw.append((s, r, d, h)), cb=cb)
        await nc.subscribe("slow", cb=other)
        await nc.publish("fast.1", b"one", reply="r.1", headers={"K": "v"})
        await nc.publish("fast.2", b"two")
        await nc.publish("slow", b"three")
        await asyncio.wait_for(done.wait(), 20)
        await nc.flush()
        fast_unsubscribe(nc, sub)
        await sub.unsubscribe()
        n_handlers = len(nc._rg_dispatch.handlers)  # type: ignore[attr-defined]
        await nc.close()
        return raw, slow, n_handlers

    raw, slow, n_handlers = asyncio.run(run())
    assert raw == [
        (b"fast.1", b"r.1", b"one", b"NATS/1.0\r\nK: v\r\n\r\n"),
        (b"fast.2", b"", b"two", None),
    ]
    assert slow == [b"three"] and n_handlers == 0


@pytest.mark.parametrize("supported", [True, False])
def test_pull_without_headers_and_acks_either_path(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch, supported: bool
) -> None:
    """The worker's fetch (no headers) and the publisher's acks give the same results through
    the raw path and through nats-py's callbacks (another nats-py: nothing installed)."""
    monkeypatch.setattr(_fastsub, "_SUPPORTED", supported)
    url = nats_server.url + "/FAST?partitions=1"
    sink = NatsSink(url)
    for i in range(20):
        sink.write(make_exchange(target=f"/{i}"))
    sink.close()

    async def run() -> tuple[list[str], list[bool], int, bool]:
        u = parse_stream_url(url)
        nc = await connect(u)
        js = nc.jetstream()
        cfg = ConsumerConfig(
            name="c0", durable_name="c0", filter_subject=u.subject(0), ack_policy=AckPolicy.EXPLICIT
        )
        await js.add_consumer(u.stream, cfg)
        pc = await PullConsumer(nc, "$JS.API", u.stream, "c0", headers=False).start()
        msgs = await pc.fetch(32, 10.0)
        while len(msgs) < 20:
            msgs += await pc.fetch(32, 10.0)
        with pytest.raises(TimeoutError):
            await pc.fetch(8, 0.3)  # the 404/408 status ends the request, no message
        pub = AckPublisher(nc)
        await pub.start()
        stored: list[bool] = []
        for m in msgs:
            await pub.publish(u.subject(0) + "x", m.data, {"Nats-Msg-Id": m.reply}, stored.append)
        ok = await pub.wait_all(30)
        await pub.send_plain([m.reply for m in msgs], b"+ACK")
        await pub.close()
        await pc.unsubscribe()
        installed = hasattr(nc, "_rg_dispatch")
        await nc.close()
        targets = [decode_exchange(m.data).request.target for m in msgs]
        assert all(m.headers is None for m in msgs) or not supported
        return targets, stored, int(ok), installed

    targets, stored, ok, installed = asyncio.run(run())
    assert targets == [f"/{i}" for i in range(20)]
    assert ok == 1 and len(stored) == 20 and not any(stored)
    assert installed is supported
