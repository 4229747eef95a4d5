"""Sources -> stages -> sinks: the only module that connects them.

* A **source** is any iterable of :class:`~replaygate.model.Exchange` (files, capture, streams).
* A **stage** (filter, sample, mask, rewrite, middleware, sessions) takes one exchange and
  returns zero, one or more exchanges; ``close()`` flushes what it still holds.
* A **sink** (file, replay, stream, stdout) takes exchanges and is closed at the end.

The pipeline owns counting and backpressure: :class:`BoundedSink` puts a bounded queue and a
thread in front of a slow sink so that a live source is never blocked; what does not fit is
dropped *as whole exchanges* and counted, never silently lost.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from .model import Counters, Exchange

__all__ = [
    "BoundedSink",
    "Counters",
    "Pipeline",
    "Sink",
    "Stage",
    "TeeSink",
    "run_pipeline",
]


@runtime_checkable
class Stage(Protocol):
    """One processing step. ``name`` appears in counters (``dropped[<name>]``)."""

    name: str

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        """Return the exchanges to pass on: ``()`` drops, ``(ex,)`` keeps, more injects."""
        ...

    def close(self) -> Iterable[Exchange]:
        """Flush anything held back; called once at the end."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where exchanges end up."""

    def write(self, ex: Exchange) -> None: ...

    def close(self) -> None: ...


class Pipeline:
    """Stages in order in front of one sink, with counters."""

    def __init__(
        self, stages: Sequence[Stage], sink: Sink, counters: Counters | None = None
    ) -> None:
        self.stages = list(stages)
        self.sink = sink
        self.counters = counters or Counters()
        for st in self.stages:
            # Stages that count notes (or their own drops) report into the run's counters.
            bind = getattr(st, "bind_counters", None)
            if callable(bind):
                bind(self.counters)

    def _run_from(self, start: int, items: Iterable[Exchange]) -> None:
        for ex in items:
            self._push(start, ex)

    def _push(self, i: int, ex: Exchange) -> None:
        stages = self.stages
        while i < len(stages):
            out = stages[i].process(ex)
            if isinstance(out, tuple) and len(out) == 1:
                ex = out[0]
                i += 1
                continue
            outs = list(out)
            if not outs:
                # A stage that holds exchanges back (middleware) returns () without dropping
                # and counts its real drops itself (``counts_own_drops = True``).
                if not getattr(stages[i], "counts_own_drops", False):
                    self.counters.dropped[stages[i].name] += 1
                return
            for o in outs:
                self._push(i + 1, o)
            return
        self.sink.write(ex)
        self.counters.written += 1

    def feed(self, ex: Exchange) -> None:
        """Push one exchange through every stage into the sink."""
        self.counters.read += 1
        self._push(0, ex)

    def close(self) -> Counters:
        """Flush stages in order (what one flushes goes through the later ones), close sink.

        Every stage and the sink are closed even when one fails (a crashed middleware must not
        leave the output file open or a later middleware process running); the first error is
        raised after all of them are closed."""
        error: BaseException | None = None
        for i, st in enumerate(self.stages):
            try:
                self._run_from(i + 1, st.close())
            except BaseException as e:
                error = error or e
        try:
            self.sink.close()
        except BaseException as e:
            error = error or e
        if error is not None:
            raise error
        return self.counters


def run_pipeline(
    source: Iterable[Exchange],
    stages: Sequence[Stage],
    sink: Sink,
    counters: Counters | None = None,
) -> Counters:
    """Run ``source`` to exhaustion through ``stages`` into ``sink``; return the counters."""
    p = Pipeline(stages, sink, counters)
    try:
        for ex in source:
            p.feed(ex)
    finally:
        p.close()
    return p.counters


_STOP = object()


class BoundedSink:
    """Decouple a producer from a slow sink: a queue of at most ``maxsize`` exchanges and a
    writer thread. ``write`` never blocks; when the queue is full the exchange is dropped and
    counted under ``counters.dropped['backpressure']``. Errors of the inner sink stop the
    writer and are re-raised by ``close``."""

    def __init__(self, inner: Sink, maxsize: int = 10_000, counters: Counters | None = None):
        self.inner = inner
        self.counters = counters or Counters()
        self._q: queue.Queue[object] = queue.Queue(maxsize)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="replaygate-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            if self._error is not None:
                self.counters.dropped["sink_error"] += 1
                continue
            try:
                assert isinstance(item, Exchange)
                self.inner.write(item)
            except BaseException as e:  # reported by close()
                self._error = e
                self.counters.dropped["sink_error"] += 1

    def write(self, ex: Exchange) -> None:
        try:
            self._q.put_nowait(ex)
        except queue.Full:
            self.counters.dropped["backpressure"] += 1

    @property
    def pending(self) -> int:
        return self._q.qsize()

    def close(self) -> None:
        self._q.put(_STOP)
        self._thread.join()
        try:
            self.inner.close()
        finally:
            if self._error is not None:
                raise self._error


class TeeSink:
    """Write each exchange to several sinks in order (a file and a comparator, say).
    Every sink is closed even if one fails; the first error is raised."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    def write(self, ex: Exchange) -> None:
        for s in self.sinks:
            s.write(ex)

    def close(self) -> None:
        err: BaseException | None = None
        for s in self.sinks:
            try:
                s.close()
            except BaseException as e:
                err = err or e
        if err is not None:
            raise err


def iterate(*sources: Iterable[Exchange]) -> Iterator[Exchange]:
    """Chain several sources (for example several input files) in order."""
    for s in sources:
        yield from s
