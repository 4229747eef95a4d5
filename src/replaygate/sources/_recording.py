"""The recording side shared by live capture and the proxy.

Live sources must never block on their output, and must never lose anything silently. So
exchanges go: source thread -> ``BoundedSink`` queue (overflow: drop whole exchanges, counted
``backpressure``) -> writer thread -> stages (``Pipeline``) -> the user's sink. A failing sink
(disk full) stops writing; every exchange after that is counted as lost and the failure is
reported once at the end, with the count. When the queue runs empty the sink is flushed, so a
``kill -9`` loses at most what arrived in the last instant.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from ..errors import CaptureError, ReplaygateError
from ..model import Exchange
from ..pipeline import BoundedSink, Counters, Pipeline, Sink, Stage

__all__ = ["RecordingSink"]


class _Guarded:
    """Runs in the writer thread: stages, then the sink; remembers the first sink failure."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.error: BaseException | None = None
        self.lost = 0
        self.owner: BoundedSink | None = None

    def write(self, ex: Exchange) -> None:
        if self.error is not None:
            self.lost += 1
            return
        try:
            self.pipeline.feed(ex)
            owner = self.owner
            if owner is not None and owner.pending == 0:
                flush = getattr(self.pipeline.sink, "flush", None)
                if flush is not None:
                    flush()
        except (OSError, ReplaygateError) as e:
            self.error = e
            self.lost += 1

    def close(self) -> None:
        try:
            self.pipeline.close()
        except (OSError, ReplaygateError) as e:
            if self.error is None:
                self.error = e


class RecordingSink:
    """A never-blocking sink with stages in its writer thread and counted losses.

    ``write`` is safe from any thread. ``close`` drains the queue, flushes stages, closes the
    sink, and raises :class:`~replaygate.errors.CaptureError` if the sink failed, saying how
    many exchanges were lost (everything was still counted).
    """

    def __init__(
        self, sink: Sink, stages: Sequence[Stage] = (), *, max_queue: int = 10_000, name: str = ""
    ) -> None:
        self.name = name or getattr(sink, "path", "") or type(sink).__name__
        self.counters = Counters()
        self._guard = _Guarded(Pipeline(stages, sink, self.counters))
        self._bounded = BoundedSink(self._guard, maxsize=max_queue, counters=self.counters)
        self._guard.owner = self._bounded
        self._lock = threading.Lock()
        self._closed = False
        self.submitted = 0

    def write(self, ex: Exchange) -> None:
        self.submitted += 1
        self._bounded.write(ex)

    @property
    def pending(self) -> int:
        return self._bounded.pending

    def wait_below(self, n: int, timeout: float) -> bool:
        """Let the writer catch up: wait until at most ``n`` exchanges are queued (or
        ``timeout`` s pass). Live capture calls this when its kernel ring and raw-packet
        queue can still absorb the pause, so bursts cost a short delay instead of drops."""
        deadline = time.monotonic() + timeout
        while self._bounded.pending > n:
            if time.monotonic() >= deadline or self._guard.error is not None:
                return False
            time.sleep(0.001)
        return True

    @property
    def failed(self) -> BaseException | None:
        return self._guard.error

    def stats(self) -> dict[str, int]:
        c = self.counters
        out = {
            "recorded": c.written,
            "dropped_recordings": c.dropped.get("backpressure", 0),
            "lost_on_sink_error": self._guard.lost,
            "recording_queue": self._bounded.pending,
        }
        for reason, n in c.dropped.items():
            if reason not in ("backpressure", "sink_error"):
                out[f"dropped_by_{reason}"] = n
        return out

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._bounded.close()
        err = self._guard.error
        if err is not None:
            what = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise CaptureError(
                f"writing {self.name} failed ({what}); stopped writing, "
                f"{self._guard.lost} exchange(s) were lost"
            )
