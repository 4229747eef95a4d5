"""Replay recorded traffic into staging targets: timing modes, sessions, live feeds.

``run_replay`` replays a source (blocking, its own event loop); ``LiveReplayer`` takes
exchanges one by one from another thread (shadowing, NATS workers); ``run_replay_parallel``
splits a re-readable source across worker processes by session hash. Every replayed exchange
carries ``replayed`` (exact raw bytes staging sent) or ``replay_error``, ``replay_ts_ns`` and
``replay_latency_ns`` (first byte sent -> last byte received), then goes to the sink.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Sequence

from ..model import Exchange
from ..pipeline import Sink
from ._config import ReplayConfig, Target, parse_ramp
from ._live import LiveReplayer
from ._stats import Histogram, ReplayStats
from ._workers import run_replay_parallel
from .engine import Engine, check_no_workers, install_sigint, new_event_loop
from .hooks import ReplayHook

__all__ = [
    "Histogram",
    "LiveReplayer",
    "ReplayConfig",
    "ReplayHook",
    "ReplayStats",
    "Target",
    "parse_ramp",
    "run_replay",
    "run_replay_parallel",
]


def run_replay(
    source: Iterable[Exchange],
    config: ReplayConfig,
    *,
    sink: Sink | None = None,
    hooks: Sequence[ReplayHook] = (),
    on_progress: Callable[[ReplayStats], None] | None = None,
    stop: threading.Event | None = None,
) -> ReplayStats:
    """Replay ``source`` following ``config``; blocks until done, then closes ``sink``.

    Setting ``stop`` (or Ctrl-C on the main thread) stops feeding: requests in flight finish
    and the stats are returned. ``on_progress`` is called twice a second and at the end.
    Raises ReplayError (unsafe target), ConfigError (bad config).
    """
    check_no_workers(config)
    stop = stop or threading.Event()
    loop = new_event_loop()
    try:
        engine = Engine(
            config, sink=sink, hooks=hooks, loop=loop, stop=stop, on_progress=on_progress
        )
        sig = install_sigint(loop, stop)
        try:
            stats = loop.run_until_complete(engine.run_source(source))
        finally:
            if sig:
                loop.remove_signal_handler(signal.SIGINT)
            loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
        if sink is not None:
            sink.close()
    if stop.is_set() and not engine.failed:
        stats.stopped = True
    return stats
