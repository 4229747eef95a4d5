"""Reading a stream as a source of exchanges (``replay nats://...``, ``compare nats://...``).

Reads every message present when it starts (an ordered, ephemeral consumer: nothing is
acknowledged or consumed, so reading twice gives the same exchanges), decodes them and, for
results streams, keeps the first result per (exchange id, role, target) so redelivered work
is reported exactly once.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ..errors import FormatError, StreamError
from ..model import Exchange
from ..pipeline import Counters
from ._conn import _one_line, connect
from ._loop import LoopThread
from ._pull import PullConsumer
from .codec import MSG_ID, decode_exchange
from .url import StreamURL, parse_stream_url

__all__ = ["read_stream"]


def read_stream(
    url: str | StreamURL,
    *,
    counters: Counters | None = None,
    dedup: bool = True,
    batch: int = 256,
) -> Iterator[Exchange]:
    """Yield the exchanges a stream holds now, in stream order."""
    u = parse_stream_url(url) if isinstance(url, str) else url
    c = counters if counters is not None else Counters()
    q: queue.Queue[object] = queue.Queue(maxsize=4)  # batches
    lt = LoopThread("replaygate-nats-source")

    async def pump() -> None:
        nc = await connect(u, name="replaygate-source")
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info(u.stream)
            except NotFoundError:
                raise StreamError(
                    f"stream {u.stream!r} does not exist (replaygate stream init)"
                ) from None
            last = info.state.last_seq
            if info.state.messages == 0:
                return
            ci = await js.add_consumer(
                u.stream,
                ConsumerConfig(
                    filter_subject=f"rg.{u.stream}.>",
                    ack_policy=AckPolicy.NONE,
                    deliver_policy=DeliverPolicy.ALL,
                    inactive_threshold=30.0,
                ),
            )
            api = getattr(js, "_prefix", "$JS.API")
            sub = await PullConsumer(nc, api, u.stream, ci.name).start()
            seen = 0
            while seen < last:
                try:
                    msgs = await sub.fetch(batch, timeout=2)
                except TimeoutError:
                    break
                if msgs:
                    seen = msgs[-1].metadata.sequence.stream
                    # one queue item per batch: the reader thread is woken once for all
                    await _put(q, [(m.data, (m.headers or {}).get(MSG_ID)) for m in msgs])
            await sub.unsubscribe()
            try:
                await js.delete_consumer(u.stream, ci.name)
            except Exception:
                pass  # it expires after inactive_threshold anyway
        finally:
            await nc.close()

    async def _put(qq: queue.Queue[object], item: object) -> None:
        import asyncio

        while True:
            try:
                qq.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.005)

    fut = lt.submit(pump())
    seen_ids: set[str] = set()
    try:
        while True:
            try:
                item = q.get(timeout=0.05)
            except queue.Empty:
                if fut.done() and q.empty():
                    break
                continue
            assert isinstance(item, list)
            for data, msg_id in item:
                if dedup and msg_id is not None:
                    if msg_id in seen_ids:
                        c.dropped["duplicate"] += 1
                        continue
                    seen_ids.add(msg_id)
                try:
                    ex = decode_exchange(data)
                except FormatError:
                    c.dropped["undecodable_message"] += 1
                    continue
                yield ex
        exc = fut.exception()
        if isinstance(exc, StreamError):
            raise exc
        if exc is not None:
            raise StreamError(f"reading stream {u.stream} failed: {_one_line(exc)}")
    finally:
        if not fut.done():
            fut.cancel()
        lt.stop()
