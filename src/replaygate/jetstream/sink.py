"""``--output nats://HOST:PORT/STREAM``: publish exchanges to JetStream without blocking.

``write`` appends the exchange to a bounded buffer (blocking while it is full); a publisher on
its own loop thread takes everything buffered at once, encodes each exchange once and sends
it with asynchronous acks (:class:`~replaygate.jetstream._publish.AckPublisher`: one ack inbox,
no future per message). While NATS is unreachable, messages wait in that buffer (and in
nats-py's reconnect buffer). Live sources (capture, proxy) put a BoundedSink in front, which
drops and counts (``dropped['backpressure']``) instead of blocking. Publishes that fail are
retried until ``close`` gives up after ``close_timeout``; what was never acknowledged is
counted as ``dropped['stream_unacked']``; an exchange NATS can never carry (bigger than the
server's ``max_payload``) as ``dropped['stream_refused']``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

from nats.aio.client import Client

from ..errors import StreamError
from ..model import Exchange
from ..pipeline import Counters
from ._conn import _one_line, connect
from ._loop import LoopThread
from ._partition import Partitioner
from ._publish import AckPublisher
from .codec import encode_exchange
from .url import StreamURL, parse_stream_url

__all__ = ["NatsSink"]

_BATCH = 1024  # exchanges taken from the buffer per lock


class NatsSink:
    """A :class:`~replaygate.pipeline.Sink` publishing to a JetStream stream.

    ``results=True`` publishes to the results stream (``<STREAM>-RESULTS``) instead.
    """

    def __init__(
        self,
        url: str | StreamURL,
        *,
        results: bool = False,
        max_queue: int = 10_000,
        in_flight: int = 512,
        close_timeout: float = 30.0,
        counters: Counters | None = None,
        create: bool = True,
    ) -> None:
        self.url = parse_stream_url(url) if isinstance(url, str) else url
        self.counters = counters or Counters()
        self.published = 0
        self.duplicates = 0
        # ?key=: by connection (default) or by user, so one user's traffic is one partition
        self.partitioner = Partitioner(self.url.partitions, self.url.key)
        self._results = results
        self._buf: deque[Exchange] = deque()
        self._max_queue = max(1, max_queue)
        self._cv = threading.Condition()
        self._stopping = False
        self._waiting = False  # the publisher sleeps until write() wakes it
        self._in_flight = in_flight
        self._close_timeout = close_timeout
        self._loop = LoopThread("replaygate-nats-sink")
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._nc: Client | None = None
        try:
            self._loop.run(self._setup(create), timeout=15)
        except BaseException:
            if self._nc is not None:
                try:
                    self._loop.run(self._nc.close(), timeout=5)
                except Exception:
                    pass
            self._loop.stop()
            raise
        self._task = self._loop.submit(self._publisher())

    async def _setup(self, create: bool) -> None:
        from .admin import ensure_streams

        self._nc = await connect(self.url, name="replaygate-sink")
        self._js = self._nc.jetstream()
        if create:
            await ensure_streams(self._js, self.url)
        self._pub = AckPublisher(self._nc, in_flight=self._in_flight)
        await self._pub.start()
        self._wake = asyncio.Event()

    def _stored(self, duplicate: bool) -> None:
        if duplicate:
            self.duplicates += 1  # same Nats-Msg-Id within the window: JetStream kept one
        else:
            self.published += 1

    async def _publisher(self) -> None:
        """Send in write order, everything buffered per wake-up; then wait for the acks."""
        pub = self._pub
        buf = self._buf
        results_subject = f"rg.{self.url.results_stream}.r" if self._results else None
        partition_of = self.partitioner
        subject = self.url.subject
        try:
            while True:
                with self._cv:
                    if len(buf) <= _BATCH:
                        batch = list(buf)
                        buf.clear()
                    else:
                        batch = [buf.popleft() for _ in range(_BATCH)]
                    self._cv.notify_all()  # room for blocked writers
                    if not batch:
                        if self._stopping:
                            break
                        self._waiting = True
                        self._wake.clear()
                if not batch:
                    try:
                        await asyncio.wait_for(self._wake.wait(), 0.5)
                    except TimeoutError:
                        pass
                    continue
                conflicts = partition_of.conflicts
                for ex in batch:
                    payload, headers = encode_exchange(ex)
                    subj = results_subject or subject(partition_of(ex))
                    await pub.publish(subj, payload, headers, self._stored)
                if partition_of.conflicts != conflicts:  # ?key=user: a user's keys disagreed
                    self.counters.notes["stream_partition_conflicts"] += (
                        partition_of.conflicts - conflicts
                    )
            while not await pub.wait_all(0.5):
                if self._done.is_set():
                    break
        finally:
            if self._done.is_set() or pub.pending:
                pub.give_up()
            self.counters.dropped["stream_unacked"] += pub.unacked
            if pub.refused:  # NATS can never take these: counted, not retried forever
                self.counters.dropped["stream_refused"] += pub.refused
            await pub.close()

    def write(self, ex: Exchange) -> None:
        """Queue one exchange; blocks while the queue is full (like a file on a slow disk).

        Live sources put a :class:`~replaygate.pipeline.BoundedSink` in front, which drops
        and counts instead of blocking, so capture is never slowed by the stream.
        """
        with self._cv:
            while True:
                if self._error is not None:
                    raise self._error
                if self._task.done():
                    exc = self._task.exception()
                    raise StreamError(f"publisher for {self.url.stream} stopped: {_one_line(exc)}")
                if len(self._buf) < self._max_queue:
                    break
                self._cv.wait(0.5)
            self._buf.append(ex)
            if not self._waiting:
                return
            self._waiting = False
        self._loop.loop.call_soon_threadsafe(self._wake.set)

    @property
    def pending(self) -> int:
        return len(self._buf)

    def close(self) -> None:
        with self._cv:
            self._stopping = True
            self._waiting = False
        try:
            self._loop.loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:
            pass
        try:
            self._task.result(self._close_timeout)
        except TimeoutError:
            self._done.set()  # give up retrying; remaining publishes count as unacked
            try:
                self._loop.loop.call_soon_threadsafe(self._pub.give_up)
            except RuntimeError:
                pass
            try:
                self._task.result(10)
            except Exception:
                pass
        except Exception as e:
            self._error = StreamError(f"publishing to {self.url.stream} failed: {_one_line(e)}")
        try:
            assert self._nc is not None
            self._loop.run(self._nc.drain(), timeout=10)
        except Exception:
            pass
        self._loop.stop()
        if self._error is not None:
            raise self._error

    def stats(self) -> dict[str, Any]:
        return {"published": self.published, "duplicates": self.duplicates, "pending": self.pending}
