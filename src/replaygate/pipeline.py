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

import collections
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from .model import Counters, Exchange

__all__ = [
    "BoundedSink",
    "Counters",
    "Pipeline",
    "Sink",
    "Stage",
    "TeeSink",
    "bind_counters",
    "close_stages",
    "iter_through",
    "push",
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


def bind_counters(stages: Iterable[Stage], counters: Counters) -> None:
    """Stages that count notes (or their own drops) report into the run's counters."""
    for st in stages:
        bind = getattr(st, "bind_counters", None)
        if callable(bind):
            bind(counters)


def push(
    stages: Sequence[Stage],
    i: int,
    ex: Exchange,
    counters: Counters,
    emit: Callable[[Exchange], None],
) -> None:
    """The one push loop: ``ex`` through ``stages[i:]``, what comes out of the last to
    ``emit``. An empty answer is the stage's drop, counted under its name, unless the stage
    holds exchanges back (middleware) and counts its real drops itself (``counts_own_drops``).
    """
    while i < len(stages):
        out = stages[i].process(ex)
        if isinstance(out, tuple) and len(out) == 1:
            ex = out[0]
            i += 1
            continue
        outs = list(out)
        if not outs:
            if not getattr(stages[i], "counts_own_drops", False):
                counters.dropped[stages[i].name] += 1
            return
        for o in outs:
            push(stages, i + 1, o, counters, emit)
        return
    emit(ex)


class Pipeline:
    """Stages in order in front of one sink, with counters."""

    def __init__(
        self, stages: Sequence[Stage], sink: Sink, counters: Counters | None = None
    ) -> None:
        self.stages = list(stages)
        self.sink = sink
        self.counters = counters or Counters()
        bind_counters(self.stages, self.counters)

    def _run_from(self, start: int, items: Iterable[Exchange]) -> None:
        for ex in items:
            self._push(start, ex)

    def _push(self, i: int, ex: Exchange) -> None:
        push(self.stages, i, ex, self.counters, self._write)

    def _write(self, ex: Exchange) -> None:
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


def iter_through(
    source: Iterable[Exchange], stages: Sequence[Stage], counters: Counters | None = None
) -> Iterator[Exchange]:
    """The pull mode: yield what ``stages`` pass on for ``source`` (the replay engine's input).

    Counts like :class:`Pipeline` (``read``, ``dropped`` by stage; the consumer counts what it
    writes). At the end of the source, stages that can ``drain`` (middleware) release what
    they hold but stay open, so replayed responses still reach them as replay hooks; the
    others are closed. Call :func:`close_stages` after the replay.
    """
    counters = counters or Counters()
    bind_counters(stages, counters)
    out: list[Exchange] = []
    emit = out.append
    for ex in source:
        counters.read += 1
        push(stages, 0, ex, counters, emit)
        if out:
            yield from out
            out.clear()
    for i, st in enumerate(stages):
        drain = getattr(st, "drain", None)
        for o in drain() if callable(drain) else st.close():
            push(stages, i + 1, o, counters, emit)
            if out:
                yield from out
                out.clear()


def close_stages(stages: Sequence[Stage], counters: Counters | None = None) -> None:
    """After a replay fed by :func:`iter_through`: close the stages it only drained (stops
    middleware processes). Exchanges released this late cannot be replayed any more: counted
    under ``dropped["after_replay"]``. Every stage is closed even if one fails; the first
    error is raised."""
    counters = counters or Counters()
    error: BaseException | None = None
    for st in stages:
        if not callable(getattr(st, "drain", None)):
            continue  # closed by iter_through at the end of the source
        try:
            late = list(st.close())
        except BaseException as e:
            error = error or e
            continue
        if late:
            counters.dropped["after_replay"] += len(late)
    if error is not None:
        raise error


_IDLE_S = 0.005  # writer poll interval when the queue is empty (adds at most this latency)


class BoundedSink:
    """Decouple a producer from a slow sink: a queue of at most ``maxsize`` exchanges and a
    writer thread. ``write`` never blocks (safe from any thread); when the queue is full the
    exchange is dropped and counted under ``counters.dropped['backpressure']``. An error of the
    inner sink stops the writing: what comes after is counted ``dropped['sink_error']`` and
    ``close`` re-raises the error.

    Why a deque polled by the writer and not a ``queue.Queue``: a Queue wakes the writer on
    every exchange, and that thread switch (lock release + GIL handoff) measured ~45 µs per
    exchange inside the proxy's event loop, more than forwarding the request. Here the
    producer only appends (atomic under the GIL) and the writer drains in batches, sleeping a
    few milliseconds when the queue is empty. Subclasses (the live recorders'
    :class:`~replaygate.sources._recording.RecordingSink`) change what is counted where."""

    # the inner sink's failures that stop the writing (anything else ends the writer thread)
    failures: tuple[type[BaseException], ...] = (BaseException,)

    def __init__(self, inner: Sink, maxsize: int = 10_000, counters: Counters | None = None):
        self.inner = inner
        self.counters = counters or Counters()
        self._q: collections.deque[Exchange] = collections.deque()
        self._max = maxsize
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="replaygate-writer", daemon=True)
        self._thread.start()

    def write(self, ex: Exchange) -> None:
        if len(self._q) >= self._max:
            self._overflow()
            return
        self._q.append(ex)

    @property
    def pending(self) -> int:
        return len(self._q)

    # -- what subclasses change ------------------------------------------------------------
    def _deliver(self, ex: Exchange) -> None:
        self.inner.write(ex)

    def _overflow(self) -> None:
        self.counters.dropped["backpressure"] += 1

    def _lose(self) -> None:
        self.counters.dropped["sink_error"] += 1

    def _before_batch(self) -> None:
        pass

    def _after_batch(self, delivered: int) -> None:
        pass

    # -- writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        q = self._q
        deliver = self._deliver
        failures = self.failures
        while True:
            if not q:
                if self._stop:
                    return
                time.sleep(_IDLE_S)
                continue
            self._before_batch()
            n = delivered = 0
            while q:
                n += 1
                if n & 7 == 0:
                    # Hand the GIL back now and then: the producer is an event loop or a
                    # capture reader, and would otherwise wait up to the interpreter's switch
                    # interval (5 ms) after every syscall while this thread writes a backlog.
                    time.sleep(0)
                ex = q.popleft()
                if self._error is not None:
                    self._lose()
                    continue
                try:
                    deliver(ex)
                    delivered += 1
                except failures as e:  # reported by close()
                    self._error = e
                    self._lose()
            self._after_batch(delivered)

    def _drain(self) -> None:
        """Let the writer write everything queued, then stop it."""
        self._stop = True
        self._thread.join()

    def close(self) -> None:
        self._drain()
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
