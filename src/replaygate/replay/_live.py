"""``LiveReplayer``: an online feed (shadowing, NATS workers) with the engine on its own thread.

``submit`` is called from the capture thread: it must never block or slow capture down, so it
only counts and hands the exchange to the engine's loop; when more than ``max_queue``
exchanges wait, it drops and counts (``stats.dropped["backpressure"]``) instead of queueing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import threading
from collections.abc import Sequence

from ..errors import ReplayError
from ..model import Exchange
from ..pipeline import Sink
from ._config import ReplayConfig
from ._stats import ReplayStats
from .engine import Engine, check_no_workers, new_event_loop
from .hooks import ReplayHook

__all__ = ["LiveReplayer"]


class LiveReplayer:
    """Replays exchanges as they are submitted; requests go out as soon as a worker is free
    (timing flags do not apply), with ``--sessions`` order kept per session."""

    def __init__(
        self,
        config: ReplayConfig,
        *,
        sink: Sink | None = None,
        hooks: Sequence[ReplayHook] = (),
        max_queue: int = 10_000,
    ) -> None:
        check_no_workers(config)
        config.validate()
        self.config = config
        self.sink = sink
        self.hooks = list(hooks)
        self.max_queue = max_queue
        self._lock = threading.Lock()
        self._in_transit = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._closing = False
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._stats = ReplayStats()
        self._final: ReplayStats | None = None

    @property
    def stats(self) -> ReplayStats:
        """A consistent snapshot (rates and percentiles computed on the engine's thread, so
        other threads can print a periodic stats line); the final stats after ``close``."""
        eng, loop = self._engine, self._loop
        if eng is None:
            return self._stats
        if self._final is not None:
            return self._final
        if loop is None or loop.is_closed() or threading.current_thread() is self._thread:
            return eng.stats
        fut: concurrent.futures.Future[ReplayStats] = concurrent.futures.Future()

        def snap() -> None:
            try:
                eng.finish_stats()
                fut.set_result(copy.deepcopy(eng.stats))
            except BaseException as e:
                fut.set_exception(e)

        try:
            loop.call_soon_threadsafe(snap)
            return fut.result(timeout=1.0)
        except (RuntimeError, TimeoutError, concurrent.futures.TimeoutError):
            return eng.stats

    def start(self) -> None:
        if self._thread is not None:
            raise ReplayError("LiveReplayer.start() called twice")
        self._thread = threading.Thread(target=self._run, name="replaygate-replay", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        loop = new_event_loop()
        self._loop = loop
        try:
            try:
                self._engine = Engine(
                    self.config,
                    sink=self.sink,
                    hooks=self.hooks,
                    loop=loop,
                    stop=self._stop,
                    raise_on_unsafe=False,
                )
            except BaseException as e:
                self._error = e
                return
            finally:
                self._ready.set()
            try:
                loop.run_until_complete(self._engine.run_live())
            except BaseException as e:
                self._error = e
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def submit(self, ex: Exchange) -> bool:
        """Queue ``ex`` for replay; False when it was dropped (and counted). Never blocks."""
        eng, loop = self._engine, self._loop
        if eng is None or loop is None or self._closing or loop.is_closed():
            with self._lock:
                target = self._final or (eng.stats if eng is not None else self._stats)
                target.dropped["not_running"] += 1
            return False
        with self._lock:
            if self._in_transit + eng.live_backlog >= self.max_queue:
                eng.stats.dropped["backpressure"] += 1
                return False
            self._in_transit += 1
        try:
            loop.call_soon_threadsafe(self._put, ex)
        except RuntimeError:  # loop closed meanwhile
            with self._lock:
                self._in_transit -= 1
                eng.stats.dropped["not_running"] += 1
            return False
        return True

    def _put(self, ex: Exchange) -> None:
        with self._lock:
            self._in_transit -= 1
        assert self._engine is not None
        self._engine.submit_live(ex)

    def close(self, timeout: float | None = None) -> ReplayStats:
        """Send what is queued, wait for answers (at most ``timeout`` s), stop, close the sink."""
        self._closing = True
        try:
            if self._thread is not None and self._loop is not None and self._engine is not None:
                try:
                    self._loop.call_soon_threadsafe(self._engine.close_live)
                except RuntimeError:
                    pass
                self._thread.join(timeout)
                if self._thread.is_alive():
                    self._stop.set()
                    try:
                        self._loop.call_soon_threadsafe(self._engine.close_live)
                    except RuntimeError:
                        pass
                    self._thread.join(self.config.response_timeout + 5)
        finally:
            if self.sink is not None:
                self.sink.close()
        if self._error is not None:
            raise self._error
        if self._engine is not None and not (self._thread and self._thread.is_alive()):
            self._final = self._engine.stats
        return self.stats
