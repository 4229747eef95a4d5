"""AckPublisher: the HPUB it builds is nats-py's own; acks, duplicates, refusals, fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from replaygate.jetstream import NatsSink, read_stream
from replaygate.jetstream._conn import connect
from replaygate.jetstream._publish import AckPublisher, header_block
from replaygate.jetstream.admin import ensure_streams
from replaygate.jetstream.url import parse_stream_url
from replaygate.pipeline import Counters
from replaygate.testing import make_exchange
from replaygate.testing.nats import NatsServer

_names = st.sampled_from(["Nats-Msg-Id", "Rg-Id", "Rg-Session", "Rg-Ts", " Padded ", "X_1"])


async def _nats_py_command(subject: str, reply: str, payload: bytes, headers: Any) -> bytes:
    """What nats-py itself queues for ``publish(subject, payload, reply, headers)``."""
    nc = Client()
    sent: list[bytes] = []

    async def capture(cmd: bytes, priority: bool = False) -> None:
        sent.append(cmd)

    nc._send_command = capture  # type: ignore[method-assign]
    nc._flush_queue = None
    await nc._send_publish(subject, reply, payload, len(payload), headers)
    return sent[0]


async def _our_command(subject: str, reply: str, payload: bytes, headers: Any) -> bytes:
    nc = Client()
    sent: list[bytes] = []

    async def capture(cmd: bytes, priority: bool = False) -> None:
        sent.append(cmd)

    nc._send_command = capture  # type: ignore[method-assign]
    nc._flush_queue = None
    nc._max_payload = 1 << 20
    pub = AckPublisher(nc)
    from replaygate.jetstream._publish import _Entry

    await pub._send_fast(_Entry(subject, payload, headers, None, 0.0), reply)
    return sent[0]


@settings(max_examples=150, deadline=None)
@given(
    headers=st.one_of(st.none(), st.dictionaries(_names, st.text(max_size=20), max_size=4)),
    payload=st.binary(max_size=40),
)
def test_command_is_byte_identical_to_nats_py(headers: Any, payload: bytes) -> None:
    try:
        want = asyncio.run(_nats_py_command("rg.S.3", "_INBOX.x.7", payload, headers))
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            header_block(headers)
        return
    assert asyncio.run(_our_command("rg.S.3", "_INBOX.x.7", payload, headers)) == want


def test_header_block_refuses_what_nats_py_refuses() -> None:
    with pytest.raises(ValueError, match="header name"):
        header_block({"bad name": "v"})
    assert header_block({"  ": "skipped", "A": " x\r\ny "}) == b"NATS/1.0\r\nA: x  y\r\n\r\n"


async def _publish_all(url: str, fast: bool, n: int) -> tuple[AckPublisher, list[bool]]:
    u = parse_stream_url(url)
    nc = await connect(u)
    try:
        await ensure_streams(nc.jetstream(), u)
        pub = AckPublisher(nc, in_flight=8)
        pub._fast = fast
        await pub.start()
        dups: list[bool] = []
        for i in range(n):
            headers = {"Nats-Msg-Id": f"m{i % (n - 2)}"}  # the last two repeat ids
            await pub.publish(u.subject(0), b"x" * (i + 1), headers, dups.append)
        big = b"y" * (nc.max_payload + 1)
        await pub.publish(u.subject(0), big, {"Nats-Msg-Id": "big"})
        assert await pub.wait_all(30)
        await pub.close()
        return pub, dups
    finally:
        await nc.close()


@pytest.mark.parametrize("fast", [True, False])
def test_acks_duplicates_and_refusals(nats_server: NatsServer, fast: bool) -> None:
    pub, dups = asyncio.run(_publish_all(nats_server.url + "/P?partitions=1", fast, 50))
    assert (pub.stored, pub.duplicates, pub.refused, pub.unacked) == (48, 2, 1, 0)
    assert dups == [False] * 48 + [True] * 2
    assert pub.pending == 0


@pytest.mark.parametrize("fast", [True, False])
def test_publish_many_in_order_with_refusals(nats_server: NatsServer, fast: bool) -> None:
    """publish_many: in order, through in_flight, with a message over max_payload and one with
    a bad header name in the middle (refused, the others stored), duplicates reported."""
    url = nats_server.url + "/MANY?partitions=1"

    async def run() -> tuple[AckPublisher, list[bool]]:
        u = parse_stream_url(url)
        nc = await connect(u)
        await ensure_streams(nc.jetstream(), u)
        pub = AckPublisher(nc, in_flight=8)
        pub._fast = fast
        await pub.start()
        dups: list[bool] = []
        items: list[Any] = [
            (u.subject(0), f"{i}".encode(), {"Nats-Msg-Id": f"m{i % 28}"}, dups.append)
            for i in range(30)
        ]
        items.insert(10, (u.subject(0), b"y" * (nc.max_payload + 1), None, dups.append))
        items.insert(20, (u.subject(0), b"bad", {"bad name": "v"}, dups.append))
        await pub.publish_many(items)
        assert await pub.wait_all(30)
        await pub.close()
        await nc.close()
        return pub, dups

    pub, dups = asyncio.run(run())
    assert (pub.stored, pub.duplicates, pub.refused, pub.unacked) == (28, 2, 2, 0)
    assert dups == [False] * 28 + [True] * 2
    assert [m.data for m in _raw_messages(url)] == [f"{i}".encode() for i in range(28)]


def _raw_messages(url: str, n: int = 28) -> list[Any]:
    async def run() -> list[Any]:
        u = parse_stream_url(url)
        nc = await connect(u)
        js = nc.jetstream()
        sub = await js.pull_subscribe(u.subject(0), durable="check")
        msgs: list[Any] = []
        while len(msgs) < n:
            msgs += await sub.fetch(n - len(msgs), timeout=10)
        await nc.close()
        return msgs

    return asyncio.run(run())


def test_no_stream_is_retried_until_given_up(nats_server: NatsServer) -> None:
    """No stream listens on the subject: nothing is stored, and giving up counts it."""

    async def run() -> AckPublisher:
        nc = await connect(parse_stream_url(nats_server.url + "/X"))
        pub = AckPublisher(nc, ack_timeout=0.2)
        await pub.start()
        await pub.publish("nowhere.at.all", b"x", {"Nats-Msg-Id": "1"})
        assert not await pub.wait_all(1.0)
        pub.give_up()
        await pub.close()
        await nc.close()
        return pub

    pub = asyncio.run(run())
    assert (pub.stored, pub.unacked) == (0, 1)


def test_ack_timeout_is_measured_on_the_clock(nats_server: NatsServer) -> None:
    """An unacknowledged message is due for a re-send once ``ack_timeout`` has passed on the
    publisher's clock (a fake one: no waiting, no race with a busy machine)."""
    from replaygate.testing import FakeClock

    clock = FakeClock()

    async def run() -> tuple[int, int, int]:
        nc = await connect(parse_stream_url(nats_server.url + "/X"))
        pub = AckPublisher(nc, ack_timeout=10.0, clock=clock)
        await pub.start()
        await pub.publish("nowhere.at.all", b"x", {"Nats-Msg-Id": "1"})
        pub.expire()
        before = len(pub._retry)
        clock.advance(9.9)
        pub.expire()
        still = len(pub._retry)
        clock.advance(0.2)
        pub.expire()
        after = len(pub._retry)
        pub.give_up()
        await pub.close()
        await nc.close()
        return before, still, after

    assert asyncio.run(run()) == (0, 0, 1)


def test_sink_counts_an_exchange_nats_cannot_carry(nats_server: NatsServer) -> None:
    url = nats_server.url + "/BIG"
    c = Counters()
    sink = NatsSink(url, counters=c)
    sink.write(make_exchange("POST", "/big", request_body=b"z" * (2 << 20)))
    sink.write(make_exchange("GET", "/small"))
    sink.close()
    assert sink.published == 1 and c.dropped["stream_refused"] == 1
    assert [e.request.target for e in read_stream(url)] == ["/small"]
