"""``--output nats://HOST:PORT/STREAM``: publish exchanges to JetStream without blocking.

``write`` puts the exchange on a bounded queue (blocking while it is full); a publisher on its
own loop thread sends with asynchronous publish acks. While NATS is unreachable, messages wait
in that queue (and in nats-py's reconnect buffer). Live sources (capture, proxy) put a
BoundedSink in front, which drops and counts (``dropped['backpressure']``) instead of blocking. Publishes that fail are retried until ``close`` gives up
after ``close_timeout``; what was never acknowledged is counted as ``dropped['stream_unacked']``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any

from nats.aio.client import Client

from ..errors import StreamError
from ..model import Exchange
from ..pipeline import Counters
from ._conn import _one_line, connect
from ._loop import LoopThread
from .codec import encode_exchange, partition_of
from .url import StreamURL, parse_stream_url

__all__ = ["NatsSink"]

_STOP = object()


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
        self._results = results
        self._q: queue.Queue[object] = queue.Queue(max_queue)
        self._in_flight = in_flight
        self._ack_timeout = 10.0
        self._retry: list[Exchange] = []
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
        self._js = self._nc.jetstream(publish_async_max_pending=self._in_flight)
        if create:
            await ensure_streams(self._js, self.url)

    def _subject(self, ex: Exchange) -> str:
        if self._results:
            return f"rg.{self.url.results_stream}.r"
        return self.url.subject(partition_of(ex, self.url.partitions))

    async def _send(self, ex: Exchange, pending: dict[int, tuple[float, Exchange, Any]]) -> None:
        """Publish without waiting for the ack (order kept on the connection); remember it."""
        payload, headers = encode_exchange(ex)
        # Wait here rather than in publish_async(wait_stall=...): a timed wait yields to the
        # loop on every message, which makes nats-py flush one socket write per message.
        while self._js.publish_async_pending() >= self._in_flight:
            if self._done.is_set():
                self.counters.dropped["stream_unacked"] += 1
                return
            await asyncio.sleep(0.002)
        while True:
            try:
                fut = await self._js.publish_async(self._subject(ex), payload, headers=headers)
                break
            except Exception:
                if self._done.is_set():
                    self.counters.dropped["stream_unacked"] += 1
                    return
                await asyncio.sleep(0.2)
        key = id(fut)
        pending[key] = (time.monotonic(), ex, fut)

        def done(f: asyncio.Future[Any]) -> None:
            if pending.pop(key, None) is None:
                return
            if f.cancelled() or f.exception() is not None:
                self._retry.append(ex)
            elif getattr(f.result(), "duplicate", False):
                self.duplicates += 1  # same Nats-Msg-Id within the window: JetStream kept one
            else:
                self.published += 1

        fut.add_done_callback(done)

    async def _publisher(self) -> None:
        """Send in queue order; re-send (same Nats-Msg-Id: JetStream drops duplicates) what
        was not acknowledged within ``ack_timeout`` (lost while NATS was reconnecting)."""
        pending: dict[int, tuple[float, Exchange, Any]] = {}
        loop = asyncio.get_running_loop()
        stopping = False
        while True:
            while self._retry:
                await self._send(self._retry.pop(0), pending)
            now = time.monotonic()
            for key, (t0, ex, fut) in list(pending.items()):
                if now - t0 > self._ack_timeout:
                    pending.pop(key, None)
                    fut.cancel()
                    if self._done.is_set():
                        self.counters.dropped["stream_unacked"] += 1
                    else:
                        self._retry.append(ex)
            if stopping:
                if not pending and not self._retry:
                    return
                if self._done.is_set():
                    for _t0, _ex, fut in pending.values():
                        fut.cancel()
                    self.counters.dropped["stream_unacked"] += len(pending) + len(self._retry)
                    pending.clear()
                    self._retry.clear()
                    return
                await asyncio.sleep(0.05)
                continue
            try:
                item = await loop.run_in_executor(None, self._q.get, True, 0.2)
            except queue.Empty:
                continue
            if item is _STOP:
                stopping = True
                continue
            assert isinstance(item, Exchange)
            await self._send(item, pending)
            # take whatever else is queued without a thread hop
            for _ in range(1000):
                try:
                    more = self._q.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                assert isinstance(more, Exchange)
                await self._send(more, pending)

    def write(self, ex: Exchange) -> None:
        """Queue one exchange; blocks while the queue is full (like a file on a slow disk).

        Live sources put a :class:`~replaygate.pipeline.BoundedSink` in front, which drops
        and counts instead of blocking, so capture is never slowed by the stream.
        """
        while True:
            if self._error is not None:
                raise self._error
            if self._task.done():
                exc = self._task.exception()
                raise StreamError(f"publisher for {self.url.stream} stopped: {_one_line(exc)}")
            try:
                self._q.put(ex, timeout=0.5)
                return
            except queue.Full:
                continue

    @property
    def pending(self) -> int:
        return self._q.qsize()

    def close(self) -> None:
        self._q.put(_STOP)
        try:
            self._task.result(self._close_timeout)
        except TimeoutError:
            self._done.set()  # give up retrying; remaining publishes count as unacked
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
