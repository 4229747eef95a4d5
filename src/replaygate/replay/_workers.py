"""``--workers N``: several processes, each replaying the exchanges whose session hashes to it.

Python runs one core per process; on a multi-core box N processes multiply the ceiling. Every
worker re-reads the source (cheap next to sending) and keeps its share: by CRC32 of the
session key when there is one (so a session stays in one process, in order), else every N-th
exchange. Rates and concurrency are divided between workers; stats are merged at the end and
streamed for the progress bar. Uses ``fork`` (Linux): sources, sinks and hooks are built by
factories inside each worker.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import ReplayError, ReplaygateError
from ..model import Exchange, Request
from ..pipeline import Sink
from ._config import ReplayConfig
from ._stats import ReplayStats
from .engine import session_key_of
from .hooks import ReplayHook

__all__ = ["Shard", "run_replay_parallel", "shard"]


def shard(
    source: Iterable[Exchange], index: int, count: int, spec: str | None
) -> Iterator[Exchange]:
    """The exchanges of ``source`` that belong to worker ``index`` of ``count``."""
    for n, ex in enumerate(source):
        key = session_key_of(ex, spec)
        if key is not None:
            mine = zlib.crc32(key.encode("utf-8", "surrogateescape")) % count == index
        else:
            mine = n % count == index
        if mine:
            yield ex


class Shard:
    """:func:`shard` as a source: iterating gives the worker's exchanges, and when the source
    offers its requests as bytes (the lean ``--max`` path, :mod:`._lean`) the worker's share
    of them is offered too, split the same way (by session key, else every N-th)."""

    def __init__(self, source: Iterable[Exchange], index: int, count: int, spec: str | None):
        self.source = source
        self.index = index
        self.count = count
        self.spec = spec

    def __iter__(self) -> Iterator[Exchange]:
        return shard(self.source, self.index, self.count, self.spec)

    def lean_requests(self, *, sessions_ok: bool) -> Iterator[list[bytes | Exchange]] | None:
        lean = getattr(self.source, "lean_requests", None)
        batches = lean(sessions_ok=sessions_ok) if callable(lean) else None
        return None if batches is None else self._share(batches)

    def _share(self, batches: Iterator[list[bytes | Exchange]]) -> Iterator[list[bytes | Exchange]]:
        index, count, spec = self.index, self.count, self.spec
        n = 0  # position in the source, as shard() counts
        for batch in batches:
            if spec is None and all(type(i) is bytes for i in batch):
                # no metadata, no session key: every count-th request from the index
                mine = batch[(index - n) % count :: count]
            else:
                mine = []
                for k, item in enumerate(batch, n):
                    ex = item if isinstance(item, Exchange) else Exchange("", Request(item))
                    key = session_key_of(ex, spec)
                    if key is not None:
                        ok = zlib.crc32(key.encode("utf-8", "surrogateescape")) % count == index
                    else:
                        ok = k % count == index
                    if ok:
                        mine.append(item)
            n += len(batch)
            if mine:
                yield mine


def worker_config(config: ReplayConfig, index: int) -> ReplayConfig:
    n = config.workers
    conc = config.concurrency // n + (1 if index < config.concurrency % n else 0)
    c = dataclasses.replace(config, workers=1, concurrency=max(1, conc))
    if config.rate is not None:
        c.rate = config.rate / n
    if config.ramp:
        c.ramp = [(r / n, d) for r, d in config.ramp]
    if config.limit is not None:
        c.limit = config.limit // n + (1 if index < config.limit % n else 0)
    return c


def _child(
    index: int,
    config: ReplayConfig,
    source_factory: Callable[[], Iterable[Exchange]],
    sink_factory: Callable[[int], Sink | None] | None,
    hooks_factory: Callable[[], Sequence[ReplayHook]] | None,
    out: Any,
) -> None:
    from . import run_replay

    try:
        wc = worker_config(config, index)
        src = Shard(source_factory(), index, config.workers, config.session_key)
        sink = sink_factory(index) if sink_factory is not None else None
        hooks = hooks_factory() if hooks_factory is not None else ()
        stats = run_replay(
            src,
            wc,
            sink=sink,
            hooks=hooks,
            on_progress=lambda s: out.put(("progress", index, s)),
        )
        out.put(("done", index, stats))
    except ReplaygateError as e:
        out.put(("error", index, (type(e).__name__, str(e))))
    except BaseException as e:  # a bug: report it rather than hang the parent
        out.put(("error", index, ("bug", f"{type(e).__name__}: {e}")))


def run_replay_parallel(
    source_factory: Callable[[], Iterable[Exchange]],
    config: ReplayConfig,
    *,
    sink_factory: Callable[[int], Sink | None] | None = None,
    hooks_factory: Callable[[], Sequence[ReplayHook]] | None = None,
    on_progress: Callable[[ReplayStats], None] | None = None,
    stop: threading.Event | None = None,
) -> ReplayStats:
    """Replay with ``config.workers`` processes; ``source_factory()`` must give the same
    exchanges each time (files). ``sink_factory(i)`` gives worker i its own sink."""
    config.validate()
    ctx = multiprocessing.get_context("fork")
    q: Any = ctx.Queue()
    procs = [
        ctx.Process(
            target=_child,
            args=(i, config, source_factory, sink_factory, hooks_factory, q),
            name=f"replaygate-worker-{i}",
        )
        for i in range(config.workers)
    ]
    for p in procs:
        p.start()
    latest: dict[int, ReplayStats] = {}
    done: dict[int, ReplayStats] = {}
    error: tuple[str, str] | None = None
    try:
        while len(done) < len(procs) and error is None:
            try:
                kind, i, payload = q.get(timeout=0.5)
            except queue.Empty:
                if any(not p.is_alive() and p.exitcode not in (0, None) for p in procs):
                    error = ("bug", "a replay worker process died")
                if stop is not None and stop.is_set():
                    for p in procs:
                        if p.is_alive() and p.pid is not None:
                            import os
                            import signal

                            os.kill(p.pid, signal.SIGINT)
                continue
            except KeyboardInterrupt:
                continue  # children got SIGINT too: they stop feeding and report
            if kind == "progress":
                latest[i] = payload
                if on_progress is not None:
                    on_progress(merge_stats(list(latest.values())))
            elif kind == "done":
                done[i] = payload
                latest[i] = payload
            else:
                error = payload
    finally:
        for p in procs:
            p.join(None if error is None else 5)
            if p.is_alive():
                p.terminate()
                p.join()
            p.close()
        q.close()
        q.join_thread()
    if error is not None:
        from .. import errors

        cls = getattr(errors, error[0], None)
        if (
            isinstance(cls, type)
            and issubclass(cls, ReplaygateError)
            and cls is not ReplaygateError
        ):
            try:
                raise cls(error[1])
            except TypeError:
                pass
        raise ReplayError(f"replay worker failed: {error[1]}")
    stats = merge_stats([done[i] for i in sorted(done)])
    if on_progress is not None:
        on_progress(stats)
    return stats


def merge_stats(parts: list[ReplayStats]) -> ReplayStats:
    """Counts add up; rates add up (workers run side by side); percentiles are recomputed."""
    total = ReplayStats()
    asked = 0.0
    any_asked = False
    for p in parts:
        total.merge(p)
        total.elapsed_s = max(total.elapsed_s, p.elapsed_s)
        total.achieved_rate += p.achieved_rate
        if p.asked_rate is not None:
            asked += p.asked_rate
            any_asked = True
    total.asked_rate = asked if any_asked else None
    total.finish_percentiles()
    shortfalls = [p.shortfall for p in parts if p.shortfall]
    if shortfalls:
        total.shortfall = f"{len(shortfalls)} of {len(parts)} workers fell short: " + shortfalls[0]
    return total
