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

Sessions (``--sessions``): the first worker that meets a session runs it; units of a session
that is already running are queued behind it (bounded: the feed pauses when too many wait),
so a session's requests go out in their original order over one connection while sessions
run in parallel.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

from ..errors import ConfigError, ReplayError
from ..model import Exchange, Flag, Request, Response
from ..pipeline import Sink
from ._config import ReplayConfig, Target
from ._lanes import FastLane, TimedDispatcher, Unit
from ._order import OrderGate, OrderItem, credential
from ._redirect import follow_redirects
from ._safety import AddressBook
from ._stats import ReplayStats
from .client import Result, Tracker, make_ssl_context, prepare_request
from .hooks import ReplayHook
from .pool import Slot, SlotLRU, TargetPool, close_slot
from .scheduler import Schedule, scheduled

__all__ = ["Engine", "check_no_workers", "install_sigint", "new_event_loop", "session_key_of"]

_perf_ns = time.perf_counter_ns
_SAFE_PREFIXES = (b"GET ", b"HEAD ", b"OPTIONS ")
_LATE_NS = 10_000_000
_BROKEN = frozenset((Flag.REQUEST_GAP, Flag.REQUEST_TRUNCATED))
_WAIT = object()  # next_unit: the live feed is empty for now

# exchange, due (perf ns) or None, session key, order item (None with --order none)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when available (3-4x faster I/O), else the default loop."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()


def session_key_of(ex: Exchange, spec: str | None) -> str | None:
    """The session an exchange belongs to: ``--session-key`` (cookie:NAME / header:NAME /
    basic / bearer / auth), else the exchange's session, else its original connection; None
    when unknown."""
    if spec is not None:
        kind, _, name = spec.partition(":")
        kind = kind.lower()
        if kind == "header":
            v = ex.request.header(name)
            if v:
                return f"h:{v}"
        elif kind in ("basic", "bearer", "auth"):
            cred = credential(ex.request.header("authorization"), kind)
            if cred:
                return cred
        else:
            for cookie in ex.request.header_values("cookie"):
                for part in cookie.split(";"):
                    k, sep, v = part.strip().partition("=")
                    if sep and k == name and v:
                        return f"c:{v}"
    if ex.session is not None:
        return ex.session
    if ex.conn is not None:
        return str(ex.conn)
    return None


class _Session:
    __slots__ = ("key", "queue")

    def __init__(self, key: str) -> None:
        self.key = key
        self.queue: collections.deque[Unit] = collections.deque()


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
        ctx = make_ssl_context(config.insecure, config.ca_file) if needs_tls else None
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
        self._sessions: dict[str, _Session] = {}
        self._idle = SlotLRU(max(16, config.concurrency))
        self._deferred = 0
        self._max_deferred = max(1000, 16 * config.concurrency)
        self._rr = 0
        self._start_perf = 0
        self._first_send = 0
        self._last_send = 0
        self._units_sent = 0
        self._first_due: int | None = None
        self._last_due = 0
        self._units_due = 0
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

    # -- feeding ---------------------------------------------------------------------------
    async def run_source(self, source: Iterable[Exchange]) -> ReplayStats:
        """Replay a whole source following the configured schedule; returns the stats."""
        c = self.config
        self._source = scheduled(source, c)
        if c.max_speed and not c.loop and c.limit is None and c.duration is None:
            # nothing to schedule or count: read the source directly (the hot path of --max)
            self._plain = iter(source)
        self.stats.total = c.limit
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

    async def _next(self) -> Unit | None:
        """The next unit to send, or None when the run is over."""
        while True:
            unit = self.next_unit()
            if unit is not _WAIT:
                return unit  # type: ignore[return-value]
            await self.park()

    def next_unit(self) -> Unit | object | None:
        """The next unit, None at the end, or ``_WAIT`` when the live feed is empty or the
        next unit waits for its predecessors (the caller parks in ``_waiters``)."""
        held = self._held
        if held is not None:
            if self.stop.is_set() or self._error is not None:
                self._held = None
                self.stats.dropped["stopped"] += 1
                self._wake_all()
                return None
            if not self._admit(held):
                return _WAIT
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
                    and _perf_ns() - self._start_perf >= c.duration * 1e9
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
                due = None if off is None else self._start_perf + int(off * 1e9)
            else:
                if not self._live:
                    return None if self._live_closed else _WAIT
                ex = self._live.popleft()
                due = None
            raw = ex.request.raw
            if (ex.flags and not ex.flags.isdisjoint(_BROKEN)) or (
                ex.request.head_len >= len(raw) and not raw.endswith((b"\r\n\r\n", b"\n\n"))
            ):
                # a request cut short would only hang a connection until the timeout
                self.stats.dropped["incomplete_request"] += 1
                continue
            if self._unsafe_addrs and not raw.startswith(_SAFE_PREFIXES) and self._is_unsafe(ex):
                continue
            self.stats.exchanges += 1
            if due is not None:
                if self._first_due is None:
                    self._first_due = due
                self._last_due = due
                self._units_due += 1
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
            return _WAIT

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

    def _order_done(self, item: OrderItem, abandon: bool = False) -> None:
        """A copy of ``item`` was answered, failed or dropped (``abandon``: all its copies)."""
        gate = self._gate
        assert gate is not None
        if abandon:
            item.left = 1
        if gate.finish(item) and self._held is not None:
            self._held_may_go()

    def _held_may_go(self) -> None:
        """Something finished: wake one consumer if the held unit may go now."""
        held = self._held
        assert held is not None and self._gate is not None and held[3] is not None
        if self._waiters and self._gate.ready(held[3]):
            self._waiters.popleft()()

    def _is_unsafe(self, ex: Exchange) -> bool:
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
        self._start_perf = _perf_ns() + 50_000_000  # a moment to open the first connections
        progress = (
            self.loop.create_task(self._progress_loop()) if self.on_progress is not None else None
        )
        sweeper = self.loop.create_task(self._sweep_timeouts())
        workers: list[asyncio.Future[None]]
        lanes: list[FastLane] = []
        lanes_ok = self.fast_lanes and not c.sessions
        if lanes_ok and c.max_speed and self._source is not None:
            lanes = [FastLane(self) for _ in range(c.concurrency)]
            for lane in lanes:
                lane.start()
            workers = [lane.done for lane in lanes]
        elif lanes_ok:
            dispatcher = TimedDispatcher(self)
            lanes = dispatcher.lanes
            workers = [self.loop.create_task(dispatcher.run())]
        else:
            workers = [self.loop.create_task(self._worker()) for _ in range(c.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for lane in lanes:
                close_slot(lane.slot)
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
            self._idle.close()
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

    async def _progress_loop(self) -> None:
        assert self.on_progress is not None
        while True:
            await asyncio.sleep(0.5)
            self.finish_stats()
            self.on_progress(self.stats)

    async def _worker(self) -> None:
        slot: Slot = {}
        try:
            while True:
                try:
                    unit = await self._next()
                except BaseException as e:
                    self._error = e
                    return
                if unit is None:
                    return
                key = unit[2]
                if key is not None and self.config.sessions:
                    st = self._sessions.get(key)
                    if st is not None:
                        st.queue.append(unit)
                        self._deferred += 1
                        # too many requests wait behind running sessions: pause the feed
                        while (
                            self._deferred >= self._max_deferred
                            and not self.stop.is_set()
                            and self._error is None
                        ):
                            await asyncio.sleep(0.002)
                        continue
                    st = _Session(key)
                    self._sessions[key] = st
                    await self._run_session(st, unit)
                    continue
                await self._send_unit(unit, slot)
        finally:
            close_slot(slot)

    async def _run_session(self, st: _Session, first: Unit) -> None:
        slot = self._idle.take(st.key)
        try:
            await self._send_unit(first, slot)
            while st.queue:
                unit = st.queue.popleft()
                self._deferred -= 1
                if self.stop.is_set() or self._error is not None:
                    self.stats.dropped["stopped"] += 1
                    if unit[3] is not None:
                        self._order_done(unit[3], abandon=True)
                    continue
                await self._send_unit(unit, slot)
        finally:
            del self._sessions[st.key]
            self._idle.put(st.key, slot)

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

    async def _send_unit(self, unit: Unit, slot: Slot) -> None:
        ex, due, key, item = unit
        if due is not None:
            # The loop's timers tick in whole milliseconds: sleeping for a sub-millisecond
            # remainder would spin. Sleep in steps while more than a tick is left, then once
            # for the remainder, and send (at most half a tick early); lag is measured.
            d = due - _perf_ns()
            while d > 1_500_000:
                if self.stop.is_set():  # do not sit out a long recorded gap after Ctrl-C
                    self.stats.dropped["stopped"] += 1
                    if item is not None:
                        self._order_done(item, abandon=True)
                    return
                await asyncio.sleep(min(d - 500_000, 200_000_000) / 1e9)
                d = due - _perf_ns()
            if d > 500_000:
                await asyncio.sleep(d / 1e9)
        copies = self.copies_of(ex, key)
        if len(copies) == 1:
            await self._send_copy(copies[0][0], copies[0][1], slot, due, item)
        else:
            await asyncio.gather(*(self._send_copy(cp, p, slot, due, item) for cp, p in copies))

    def prepare(self, ex: Exchange, pool: TargetPool) -> tuple[Request, bytes]:
        req = ex.request
        for h in self.hooks:
            req = h.before_send(ex, req)
        return req, prepare_request(req.raw, req.head_len, pool.host_bytes, pool.prefix)

    async def _send_copy(
        self, ex: Exchange, pool: TargetPool, slot: Slot, due: int | None, item: OrderItem | None
    ) -> None:
        req, raw = self.prepare(ex, pool)
        res = await pool.roundtrip(self.loop, slot, raw, raw.startswith(b"HEAD "))
        first = res
        if self.config.redirects and res.error is None and res.status in _REDIRECTS:
            res, hops = await follow_redirects(
                self.loop, pool, slot, raw, res, self.config.redirects
            )
            if hops:
                self.stats.redirects_followed += hops
                ex.meta["redirects"] = str(hops)
        self.record(ex, pool, req, raw, first, res, due, item)

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
            if not self._first_send:
                self._first_send = sent_perf
            if sent_perf > self._last_send:
                self._last_send = sent_perf
            if pool.role == "candidate" and (self.config.split or pool.index == 0):
                self._units_sent += 1
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
        if self._gate is not None:
            st.order_inversions = self._gate.inversions
        now = _perf_ns()
        start = self._first_send or self._start_perf
        st.elapsed_s = max(0.0, (now - min(start, now)) / 1e9)
        # From the schedule's first due time when there is one: a late start (connections slow
        # to open on a busy machine) followed by a catch-up must not read as a rate above the
        # one asked (nothing is sent before its due time, so this never over-reports).
        first = self._first_send
        if self._first_due is not None and 0 < self._first_due < first:
            first = self._first_due
        span = (self._last_send - first) / 1e9
        n = self._units_sent
        if n >= 2 and span > 0:
            st.achieved_rate = (n - 1) / span
        elif st.elapsed_s > 0:
            st.achieved_rate = n / st.elapsed_s
        asked = self.schedule.asked_rate
        if asked is None and self._first_due is not None and self._units_due >= 2:
            dspan = (self._last_due - self._first_due) / 1e9
            asked = (self._units_due - 1) / dspan if dspan > 0 else None
        st.asked_rate = asked if self.config.timed else None
        st.finish_percentiles()
        st.shortfall = None
        if st.asked_rate and n >= 2 and st.achieved_rate < 0.98 * st.asked_rate:
            pct = 100 * st.achieved_rate / st.asked_rate
            st.shortfall = (
                f"achieved {st.achieved_rate:.1f} req/s of the {st.asked_rate:.1f} asked "
                f"({pct:.0f}%): the target or this client could not keep up "
                f"(p99 send lag {st.lag_p99_ms:.0f} ms, {st.late} requests > 10 ms late, "
                f"concurrency {self.config.concurrency})"
            )
        elif st.late and st.sent and st.late / st.sent > 0.01:
            st.shortfall = (
                f"{st.late} of {st.sent} requests were sent more than 10 ms late "
                f"(p99 send lag {st.lag_p99_ms:.0f} ms): raise --concurrency or --workers"
            )


_REDIRECTS = frozenset((301, 302, 303, 307, 308))


def _status(raw: bytes) -> int:
    parts = raw.split(b" ", 2)
    try:
        return int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return 0


def install_sigint(loop: asyncio.AbstractEventLoop, stop: threading.Event) -> bool:
    """First Ctrl-C stops feeding (in-flight requests finish, the summary is printed); a
    second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        return False

    def on_sigint() -> None:
        if stop.is_set():  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


def check_no_workers(config: ReplayConfig) -> None:
    if config.workers > 1:
        raise ConfigError(
            "--workers: several processes need re-readable files; use run_replay_files()"
        )
