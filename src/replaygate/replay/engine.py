"""The replay engine: workers that take scheduled exchanges and send them to the targets.

``--concurrency C`` worker coroutines share one ordered feed of ``(exchange, due time)``
units (from a file source through :mod:`.scheduler`, or pushed live by
:class:`LiveReplayer`). A worker waits until a unit is due, sends one copy per target on its
own keep-alive connections and records the outcome on the exchange, then takes the next
unit. So the in-flight count is bounded by C and memory by C plus the reader's window.

Order (``--order``, :mod:`._order`): each unit passes the order gate before it is handed to
a worker; a unit whose predecessors have not finished is *held* (one at most: the feed is in
order) and the workers that asked for it park as waiters; a completion that makes the held
unit ready wakes one of them, which wakes the next after taking it. Every answer, error,
timeout or drop finishes its unit, so nothing waits forever.

Senders: callback lanes (:mod:`._lanes`) for ``--max`` and timed modes, coroutine workers
(:mod:`._sessions`) for ``--sessions``; both see the engine only through
:class:`~._host.LaneHost`. Rates: :mod:`._rate`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

from ..errors import ReplayError
from ..model import Exchange, Flag, Request, Response
from ..pipeline import Sink
from ._config import ReplayConfig, Target
from ._host import WAIT, Unit
from ._lanes import FastLane, TimedDispatcher
from ._lean import Batches, LeanFeed, LeanLane, lean_source
from ._loop import check_no_workers, install_sigint, new_event_loop
from ._order import OrderGate, OrderItem
from ._rate import SendClock, finish_rates
from ._safety import AddressBook
from ._sessions import CoroutineWorkers, session_key_of
from ._stats import ReplayStats
from .client import Result, Tracker, make_ssl_context, prepare_request
from .hooks import ReplayHook
from .pool import TargetPool, close_slot
from .scheduler import Schedule, scheduled

__all__ = ["Engine", "check_no_workers", "install_sigint", "new_event_loop", "session_key_of"]

_perf_ns = time.perf_counter_ns
_SAFE_PREFIXES = (b"GET ", b"HEAD ", b"OPTIONS ")
_LATE_NS = 10_000_000
_BROKEN = frozenset((Flag.REQUEST_GAP, Flag.REQUEST_TRUNCATED))


class Engine:
    """One replay run on one event loop. Feed it with :meth:`run_source` or the live API."""

    fast_lanes = True  # --max file replays use callback lanes (tests switch this off)

    def __init__(
        self,
        config: ReplayConfig,
        *,
        sink: Sink | None,
        hooks: Sequence[ReplayHook],
        loop: asyncio.AbstractEventLoop,
        stop: threading.Event | None = None,
        on_progress: Callable[[ReplayStats], None] | None = None,
        raise_on_unsafe: bool = True,
    ) -> None:
        config.validate()
        self.config = config
        self.sink = sink
        self.hooks = list(hooks)
        self.loop = loop
        self.stop = stop or threading.Event()
        self.on_progress = on_progress
        self.raise_on_unsafe = raise_on_unsafe
        self.stats = ReplayStats()
        self.schedule = Schedule(config)
        needs_tls = any(Target.parse(t).tls for t in [*config.targets, config.baseline or ""] if t)
        alpn = "h2" if config.http2 else "http/1.1"
        ctx = make_ssl_context(config.insecure, config.ca_file, alpn) if needs_tls else None
        self._tracker = Tracker()
        self.pools = [
            TargetPool(i, Target.parse(t), "candidate", config, ctx, self.stats, self._tracker)
            for i, t in enumerate(config.targets)
        ]
        self.baseline: TargetPool | None = None
        if config.baseline:
            self.baseline = TargetPool(
                len(self.pools),
                Target.parse(config.baseline),
                "baseline",
                config,
                ctx,
                self.stats,
                self._tracker,
            )
        self._all_pools = [*self.pools, *([self.baseline] if self.baseline else [])]
        self._single = (
            self.pools[0]
            if len(self.pools) == 1 and self.baseline is None and not config.split
            else None
        )
        self._unsafe_addrs: set[tuple[str, int]] = set()
        self._addresses = AddressBook()
        if not config.allow_unsafe_target:
            for p in self._all_pools:
                self._unsafe_addrs |= self._addresses.addresses(p.target.host, (p.target.port,))
        self._need_key = config.sessions or config.split
        self._rr = 0
        self.clock = SendClock()
        self._error: BaseException | None = None
        # order gate (None with --order none) and the unit it holds back
        self.stats.order = config.order
        self._gate: OrderGate | None = None
        if config.order != "none":
            from .correlation import CorrelationHook

            issued = next((h.issued_values for h in hooks if isinstance(h, CorrelationHook)), None)
            self._gate = OrderGate(config.order, session_key=config.session_key, issued=issued)
        self._n_copies = (1 if config.split else len(self.pools)) + (1 if self.baseline else 0)
        self._held: Unit | None = None
        # callbacks of workers/lanes waiting for the next unit (live feed empty, order gate)
        self._waiters: collections.deque[Callable[[], None]] = collections.deque()
        # live feed
        self._live: collections.deque[Exchange] = collections.deque()
        self._live_closed = False
        self._source: Iterator[tuple[Exchange, float | None]] | None = None
        self._source_done = False
        self._plain: Iterator[Exchange] | None = None
        self._lean: Batches | None = None  # the lean --max path's input (see _lean)
        self._lean_feed: LeanFeed | None = None
        self._lean_lanes: list[LeanLane] = []  # swept for timeouts with the tracker's

    # -- feeding ---------------------------------------------------------------------------
    async def run_source(self, source: Iterable[Exchange]) -> ReplayStats:
        """Replay a whole source following the configured schedule; returns the stats."""
        c = self.config
        self._source = scheduled(source, c)
        if c.max_speed and not c.loop and c.limit is None and c.duration is None:
            # nothing to schedule or count: read the source directly (the hot path of --max)
            self._plain = iter(source)
        self.stats.total = c.limit
        if self.fast_lanes:
            self._lean = lean_source(source, c, self.hooks, self.sink, self._single)
        return await self._run()

    async def run_live(self) -> ReplayStats:
        """Replay what :meth:`submit_live` pushes until :meth:`close_live`."""
        return await self._run()

    def submit_live(self, ex: Exchange) -> None:
        """Called on the loop thread (via call_soon_threadsafe)."""
        self._live.append(ex)
        if self._waiters:
            self._waiters.popleft()()

    def close_live(self) -> None:
        self._live_closed = True
        self._wake_all()

    # -- what the lanes (``_lanes.LaneHost``) use besides next_unit/park/copies_of/prepare/record

    @property
    def failed(self) -> bool:
        return self._error is not None

    def fail(self, e: BaseException) -> None:
        """Stop the run on the first error (kept, raised by :meth:`run`) and wake every waiter."""
        if self._error is None:
            self._error = e
        self.stop.set()
        self._wake_all()

    def wait_for_unit(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` once the unit :meth:`next_unit` held back may be available."""
        self._waiters.append(wake)

    @property
    def live_backlog(self) -> int:
        """Live exchanges submitted and not yet taken."""
        return len(self._live)

    def _wake_all(self) -> None:
        while self._waiters:
            self._waiters.popleft()()

    def park(self) -> asyncio.Future[None]:
        """A future resolved when the next unit may be available (coroutine consumers)."""
        w = self.loop.create_future()

        def wake() -> None:
            if not w.done():
                w.set_result(None)

        self._waiters.append(wake)
        return w

    def next_unit(self) -> Unit | object | None:
        """The next unit, None at the end, or ``WAIT`` when the live feed is empty or the
        next unit waits for its predecessors (the caller parks in ``_waiters``)."""
        held = self._held
        if held is not None:
            if self.stop.is_set() or self._error is not None:
                self._held = None
                self.stats.dropped["stopped"] += 1
                self._wake_all()
                return None
            if not self._admit(held):
                return WAIT
            self._held = None
            return held
        while True:
            if self.stop.is_set() or self._error is not None or self._source_done:
                if self._waiters:
                    self._wake_all()
                return None
            if self._plain is not None:
                try:
                    ex = next(self._plain)
                except StopIteration:
                    self._source_done = True
                    close = getattr(self._plain, "close", None)
                    if close is not None:
                        close()
                    self._wake_all()
                    return None
                due = None
            elif self._source is not None:
                c = self.config
                if (
                    c.duration is not None
                    and c.max_speed
                    and _perf_ns() - self.clock.start >= c.duration * 1e9
                ):
                    self._source_done = True
                    self._wake_all()
                    return None
                try:
                    ex, off = next(self._source)
                except StopIteration:
                    self._source_done = True
                    self._wake_all()
                    return None
                due = None if off is None else self.clock.start + int(off * 1e9)
            else:
                if not self._live:
                    return None if self._live_closed else WAIT
                ex = self._live.popleft()
                due = None
            raw = ex.request.raw
            if (ex.flags and not ex.flags.isdisjoint(_BROKEN)) or (
                ex.request.head_len >= len(raw) and not raw.endswith((b"\r\n\r\n", b"\n\n"))
            ):
                # a request cut short would only hang a connection until the timeout
                self.stats.dropped["incomplete_request"] += 1
                continue
            if self._unsafe_addrs and not raw.startswith(_SAFE_PREFIXES) and self.is_unsafe(ex):
                continue
            self.stats.exchanges += 1
            if due is not None:
                self.clock.due(due)
            key = session_key_of(ex, self.config.session_key) if self._need_key else None
            gate = self._gate
            if gate is None:
                return ex, due, key, None
            item = gate.prepare(ex)
            unit = (ex, due, key, item)
            if gate.admit(item, self._n_copies):  # the common case: nothing to wait for
                if self._waiters:  # the next unit may be ready too: let one more look
                    self._waiters.popleft()()
                return unit
            item.blocked_at = _perf_ns()
            self._held = unit
            return WAIT

    def _admit(self, unit: Unit) -> bool:
        """Let ``unit`` go if its predecessors have finished; count how long it waited."""
        gate = self._gate
        item = unit[3]
        assert gate is not None and item is not None
        if not gate.admit(item, self._n_copies):
            if not item.blocked_at:
                item.blocked_at = _perf_ns()
            return False
        if item.blocked_at:
            due = unit[1]
            since = item.blocked_at if due is None or due < item.blocked_at else due
            wait = _perf_ns() - since
            if wait > 0:
                st = self.stats
                st.order_waited += 1
                st.order_wait.record(wait // 1000)
                st.order_wait_total_s += wait / 1e9
        if self._waiters:  # the next unit may be ready too: let one more consumer look
            self._waiters.popleft()()
        return True

    def abandon(self, item: OrderItem) -> None:
        """Every copy of ``item`` was dropped (stopped before it went out)."""
        gate = self._gate
        assert gate is not None
        item.left = 1
        if gate.finish(item) and self._held is not None:
            self._held_may_go()

    def _held_may_go(self) -> None:
        """Something finished: wake one consumer if the held unit may go now."""
        held = self._held
        assert held is not None and self._gate is not None and held[3] is not None
        if self._waiters and self._gate.ready(held[3]):
            self._waiters.popleft()()

    def is_unsafe(self, ex: Exchange) -> bool:
        """Apply the safety rule; raise (file replay) or count and skip (live)."""
        captured = self._addresses.captured(ex)
        hit = captured & self._unsafe_addrs
        if not hit:
            return False
        hit_host, hit_port = sorted(hit)[0]
        if self.raise_on_unsafe:
            raise ReplayError(
                f"refusing to replay {ex.request.method} {ex.request.target[:80]} (exchange "
                f"{ex.id}) to {hit_host}:{hit_port}: it is the host the traffic was captured from; only "
                "GET/HEAD/OPTIONS may go there (pass --allow-unsafe-target to override)"
            )
        self.stats.dropped["unsafe_target"] += 1
        return True

    # -- running ---------------------------------------------------------------------------
    async def _run(self) -> ReplayStats:
        c = self.config
        self.clock.start = _perf_ns() + 50_000_000  # a moment to open the first connections
        progress = (
            self.loop.create_task(self._progress_loop()) if self.on_progress is not None else None
        )
        sweeper = self.loop.create_task(self._sweep_timeouts())
        workers: list[asyncio.Future[None]]
        lanes: list[FastLane] = []
        coroutines: CoroutineWorkers | None = None
        lanes_ok = self.fast_lanes and not c.sessions
        feed: LeanFeed | None = None
        lean: list[LeanLane] = []
        if self._lean is not None and self._single is not None:
            feed = LeanFeed(
                self._lean,
                self._single,
                self.stats,
                self.is_unsafe if self._unsafe_addrs else None,
                self.stop,
                self.clock,
            )
            self._lean_feed = feed
            lean = [
                LeanLane(self.loop, feed, self._single, self.stats, self.clock, self.fail)
                for _ in range(c.concurrency)
            ]
            self._lean_lanes = lean
            for ln in lean:
                ln.start()
            workers = [ln.done for ln in lean]
        elif lanes_ok and c.max_speed:  # a file, or a live feed with no pacing of its own
            lanes = [FastLane(self) for _ in range(c.concurrency)]
            for lane in lanes:
                lane.start()
            workers = [lane.done for lane in lanes]
        elif lanes_ok:
            dispatcher = TimedDispatcher(self)
            lanes = dispatcher.lanes
            workers = [self.loop.create_task(dispatcher.run())]
        else:
            coroutines = CoroutineWorkers(self)
            workers = coroutines.start()
        try:
            await asyncio.gather(*workers)
        finally:
            for lane in lanes:
                close_slot(lane.slot)
            for ln in lean:
                ln.close()
            if feed is not None:
                feed.close()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            for w in workers:
                if not w.done():
                    w.cancel()
            if progress is not None:
                progress.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
            if coroutines is not None:
                coroutines.close()
            await self._tracker.close_all()
        if self._error is not None:
            raise self._error
        self.finish_stats()
        if self.on_progress is not None:
            self.on_progress(self.stats)
        return self.stats

    async def _sweep_timeouts(self) -> None:
        period = min(0.1, self.config.response_timeout / 10)
        while True:
            await asyncio.sleep(period)
            if self._waiters and (self.stop.is_set() or self._error is not None):
                self._wake_all()  # parked workers notice the stop
            now = time.monotonic()
            for conn in list(self._tracker.waiting):
                conn.check_timeout(now)
            for lane in self._lean_lanes:
                lane.check_timeout(now)

    async def _progress_loop(self) -> None:
        assert self.on_progress is not None
        while True:
            await asyncio.sleep(0.5)
            self.finish_stats()
            self.on_progress(self.stats)

    def copies_of(self, ex: Exchange, key: str | None) -> list[tuple[Exchange, TargetPool]]:
        single = self._single
        if single is not None:
            ex.meta["target"] = single.target.url
            return [(ex, single)]
        pools = self.pools
        if self.config.split:
            if key is not None:
                i = zlib.crc32(key.encode("utf-8", "surrogateescape")) % len(pools)
            else:
                i = self._rr % len(pools)
                self._rr += 1
            chosen = [pools[i]]
        else:
            chosen = pools
        if len(chosen) == 1 and self.baseline is None:
            ex.meta["target"] = chosen[0].target.url
            return [(ex, chosen[0])]
        out = []
        for p in [*chosen, *([self.baseline] if self.baseline else [])]:
            cp = ex.copy()
            cp.meta["target"] = p.target.url
            if self.baseline is not None:
                cp.meta["role"] = p.role
            out.append((cp, p))
        return out

    def prepare(self, ex: Exchange, pool: TargetPool) -> tuple[Request, bytes]:
        req = ex.request
        for h in self.hooks:
            req = h.before_send(ex, req)
        return req, prepare_request(req.raw, req.head_len, pool.host_bytes, pool.prefix)

    def record(
        self,
        ex: Exchange,
        pool: TargetPool,
        req: Request,
        raw: bytes,
        first: Result,
        res: Result,
        due: int | None,
        item: OrderItem | None = None,
    ) -> None:
        """Put the outcome on the exchange, count it, run the hooks, hand it to the sink,
        then tell the order gate (after the hooks: correlation has learned from it)."""
        st = self.stats
        st.sent += 1
        st.bytes_sent += len(raw)
        sent_perf = first.sent_perf
        if sent_perf:
            self.clock.sent(
                sent_perf, pool.role == "candidate" and (self.config.split or pool.index == 0)
            )
            if due is not None:
                lag = sent_perf - due
                st.lag.record(abs(lag) // 1000)
                if lag > _LATE_NS:
                    st.late += 1
        ex.replay_ts_ns = first.sent_ns or time.time_ns()
        if res.error is not None:
            ex.replay_error = res.error
            st.errors[res.error] += 1
        else:
            assert res.raw is not None
            lat = res.done_perf - first.sent_perf
            ts_last = ex.replay_ts_ns + lat
            ex.replayed = Response(
                res.raw, ts_first_ns=ts_last, ts_last_ns=ts_last, head_len=res.head_len
            )
            ex.replay_latency_ns = lat
            if res.truncated:
                ex.flags.add(Flag.REPLAY_TRUNCATED)
                st.truncated += 1
            if res.interim:
                ex.meta["replay_interim"] = ",".join(str(_status(i)) for i in res.interim)
            st.answered += 1
            st.status[res.status] += 1
            st.bytes_received += len(res.raw)
            st.latency.record(lat // 1000)
        if req is not ex.request:
            ex.meta["replay_request_modified"] = "1"
        for h in self.hooks:
            h.after_response(ex)
        if self.sink is not None:
            try:
                self.sink.write(ex)
            except BaseException as e:
                self._error = e
                self.stop.set()
                self._wake_all()
        if item is not None:
            gate = self._gate
            assert gate is not None
            if gate.finish(item) and self._held is not None:
                self._held_may_go()

    # -- stats ------------------------------------------------------------------------------
    def finish_stats(self) -> None:
        st = self.stats
        if self._lean_feed is not None:
            self._lean_feed.flush()
        if self._gate is not None:
            st.order_inversions = self._gate.inversions
        finish_rates(st, self.clock, self.config, self.schedule.asked_rate, _perf_ns())


def _status(raw: bytes) -> int:
    parts = raw.split(b" ", 2)
    try:
        return int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return 0
