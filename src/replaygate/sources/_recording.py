"""The recording side shared by live capture and the proxy.

Live sources must never block on their output, and must never lose anything silently. So
exchanges go: source thread -> bounded queue (overflow: drop whole exchanges, counted
``backpressure``) -> writer thread -> stages (``Pipeline``) -> the user's sink. A failing sink
(disk full) stops writing; every exchange after that is counted as lost and the failure is
reported once at the end, with the count. When the queue runs empty the sink is flushed, so a
``kill -9`` loses at most what arrived in the last instant.

The queue and the writer thread are :class:`~replaygate.pipeline.BoundedSink`'s (a deque
drained in batches, see there why); this subclass adds the stages, the flush after each
batch, and the counts and the one error a live recorder reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import CaptureError, ReplaygateError
from ..model import ConnectionId, Exchange
from ..pipeline import BoundedSink, Counters, Pipeline, Sink, Stage

if TYPE_CHECKING:
    from ..formats._gor_exchange import WholeEncoder

__all__ = ["RecordingSink"]

_BATCH_S = 0.005  # encoded mode: how long the writer lets a batch grow
_MAX_BATCH = 1024  # exchanges per sink call


class RecordingSink(BoundedSink):
    """A never-blocking sink with stages in its writer thread and counted losses.

    ``write`` is safe from any thread and never blocks. ``close`` drains the queue, flushes
    stages, closes the sink, and raises :class:`~replaygate.errors.CaptureError` if the sink
    failed, saying how many exchanges were lost (everything was still counted).
    """

    failures = (OSError, ReplaygateError)

    def __init__(
        self,
        sink: Sink,
        stages: Sequence[Stage] = (),
        *,
        max_queue: int = 10_000,
        name: str = "",
        encode_here: bool = False,
    ) -> None:
        self.name = name or getattr(sink, "path", "") or type(sink).__name__
        counters = Counters()
        self._pipeline = Pipeline(stages, sink, counters)
        self._flush = getattr(sink, "flush", None)
        self._lost = 0
        self._unflushed = 0  # counted written by the pipeline, but their flush failed
        self._dropped = 0
        self._written_before = 0
        self._lock = threading.Lock()
        self._closed = False
        self.submitted = 0
        if not self._pipeline.stages:
            self._deliver = self._deliver_plain  # type: ignore[method-assign]
        encode = getattr(sink, "encode", None)
        write_encoded = getattr(sink, "write_encoded", None)
        self._encode: Callable[[Exchange], list[bytes]] | None = None
        if encode_here and not self._pipeline.stages and encode and write_encoded:
            # see _run_encoded: the producer encodes, the writer thread only writes
            self._encode = encode
            self._write_encoded: Callable[[list[list[bytes]]], None] = write_encoded
            self.write = self._write_encoded_item  # type: ignore[method-assign]
            self._run = self._run_encoded  # type: ignore[method-assign]
        super().__init__(sink, max_queue, counters)

    # -- producer side -----------------------------------------------------------------------
    def write(self, ex: Exchange) -> None:
        self.submitted += 1
        if len(self._q) >= self._max:
            self._dropped += 1
            return
        self._q.append(ex)

    def _write_encoded_item(self, ex: Exchange) -> None:
        self.submitted += 1
        if len(self._q) >= self._max:
            self._dropped += 1
            return
        assert self._encode is not None
        self._q.append(self._encode(ex))  # type: ignore[arg-type]

    def whole_encoder(
        self, conn: ConnectionId | None, meta: Mapping[str, str]
    ) -> WholeEncoder | None:
        """In the encoded mode, the sink's encoder of a connection's plain exchanges (see
        :func:`~replaygate.formats.gor.GorWriter.whole_encoder`): the producer gives its
        result to :meth:`write_encoded`. None otherwise: write Exchanges."""
        make = getattr(self.inner, "whole_encoder", None)
        if self._encode is None or make is None:
            return None
        enc: WholeEncoder = make(conn, meta)
        return enc

    def write_encoded(self, parts: list[bytes]) -> None:
        """One exchange already encoded by a :meth:`whole_encoder` (never blocks)."""
        self.submitted += 1
        if len(self._q) >= self._max:
            self._dropped += 1
            return
        self._q.append(parts)  # type: ignore[arg-type]

    @property
    def failed(self) -> BaseException | None:
        return self._error

    def wait_below(self, n: int, timeout: float) -> bool:
        """Let the writer catch up: wait until at most ``n`` exchanges are queued (or
        ``timeout`` s pass). Live capture calls this when its kernel ring and raw-packet
        queue can still absorb the pause, so bursts cost a short delay instead of drops."""
        deadline = time.monotonic() + timeout
        while len(self._q) > n:
            if time.monotonic() >= deadline or self._error is not None:
                return False
            time.sleep(0.001)
        return True

    # -- writer thread (BoundedSink's loop) ----------------------------------------------------
    def _deliver(self, ex: Exchange) -> None:
        self._pipeline.feed(ex)

    def _deliver_plain(self, ex: Exchange) -> None:
        """No stages: straight into the sink, counted as :class:`Pipeline` counts."""
        c = self.counters
        c.read += 1
        self.inner.write(ex)
        c.written += 1

    def _run_encoded(self) -> None:
        """The writer thread when the producer encodes (``encode_here``, no stages, a sink
        with ``encode``/``write_encoded``: the ``.gor`` writer).

        Why: the writer shares the interpreter lock with the producer (the proxy's event
        loop). Encoding here, exchange by exchange, made the two threads hand the lock back
        and forth all the time (tens of microseconds of system time per exchange). Now the
        producer appends each exchange's encoded bytes, and this thread takes everything
        queued at once, every few milliseconds, and gives it to the sink in one call that
        spends its time in the kernel, without the lock: a handful of handoffs per batch
        instead of several per exchange."""
        q = self._q
        pop = q.popleft
        c = self.counters
        while True:
            if not q:
                if self._stop:
                    return
                time.sleep(_BATCH_S)
                continue
            batch: list[list[bytes]] = [pop() for _ in range(min(len(q), _MAX_BATCH))]  # type: ignore[misc]
            n = len(batch)
            c.read += n
            if self._error is not None:
                self._lost += n
                continue
            try:
                self._write_encoded(batch)
            except self.failures as e:  # reported by close()
                self._error = e
                self._lost += n
                continue
            c.written += n
            if self._flush is not None:
                try:
                    self._flush()
                except self.failures as e:  # never reached the disk: lost, not recorded
                    self._error = e
                    self._lost += n
                    self._unflushed += n
            if len(q) < _MAX_BATCH // 4 and not self._stop:
                time.sleep(_BATCH_S)  # let the next batch grow: fewer, larger handoffs

    def _lose(self) -> None:
        self._lost += 1

    def _before_batch(self) -> None:
        self._written_before = self.counters.written

    def _after_batch(self, delivered: int) -> None:
        if delivered and self._flush is not None and self._error is None:
            try:
                self._flush()
            except (OSError, ReplaygateError) as e:
                self._error = e
                # what this batch wrote never reached the disk: lost, not recorded
                unflushed = self.counters.written - self._written_before
                self._lost += unflushed
                self._unflushed += unflushed

    # -- results -----------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        c = self.counters
        out = {
            "recorded": c.written - self._unflushed,
            "dropped_recordings": self._dropped,
            "lost_on_sink_error": self._lost,
            "recording_queue": len(self._q),
        }
        for reason, n in c.dropped.items():
            out[f"dropped_by_{reason}"] = n
        return out

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._drain()
        try:
            self._pipeline.close()
        except (OSError, ReplaygateError) as e:
            if self._error is None:
                self._error = e
        err = self._error
        if err is not None:
            what = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise CaptureError(
                f"writing {self.name} failed ({what}); stopped writing, "
                f"{self._lost} exchange(s) were lost"
            )
