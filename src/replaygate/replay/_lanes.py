"""Fast lanes for ``--max`` file replays: callbacks instead of coroutines.

In ``--max`` mode without sessions the engine's per-request budget is a few microseconds, and
a coroutine per worker pays for a future, a task wake-up and several frame resumptions per
request. A lane is a plain object chained on the connection's completion callback: the answer
arrives (inside ``data_received``), the outcome is recorded, and the next request is written
right there. Anything unusual (connecting, the stale keep-alive retry, redirects) falls back
to a short coroutine that calls the lane again when done. Results are identical to the
coroutine workers (same ``Engine.record``), which the tests run through both paths.
"""

from __future__ import annotations

import asyncio
import time

from ..model import Exchange, Request
from ._host import LaneHost, Unit
from ._order import OrderItem
from ._redirect import follow_redirects
from .client import ConnectError, ReplayConnection, Result
from .pool import Slot, TargetPool, close_slot

__all__ = ["FastLane", "TimedDispatcher", "Unit"]

_REDIRECTS = frozenset((301, 302, 303, 307, 308))


class FastLane:
    """One of ``--concurrency`` independent senders; ``done`` resolves when it runs dry."""

    __slots__ = (
        "_copies",
        "_cur",
        "_dispatcher",
        "_due",
        "_item",
        "_wake",
        "done",
        "engine",
        "loop",
        "slot",
    )

    def __init__(self, engine: LaneHost, dispatcher: TimedDispatcher | None = None) -> None:
        self.engine = engine
        self.loop = engine.loop
        self.slot: Slot = {}
        self.done: asyncio.Future[None] = engine.loop.create_future()
        self._dispatcher = dispatcher  # timed modes: units are handed in, lane goes back idle
        self._due: int | None = None
        self._item: OrderItem | None = None  # the order item of the unit being sent
        self._copies: list[tuple[Exchange, TargetPool]] = []
        # the copy in flight: exchange, pool, request, raw bytes, connection, reused?
        self._cur: (
            tuple[Exchange, TargetPool, Request, bytes, ReplayConnection | None, bool] | None
        ) = None

        loop = self.loop
        pump = self._pump

        def wake() -> None:  # parked until the next unit may go (order gate)
            loop.call_soon(pump)

        self._wake = wake

    def start(self) -> None:
        self.loop.call_soon(self._pump)

    def assign(
        self, copies: list[tuple[Exchange, TargetPool]], due: int | None, item: OrderItem | None
    ) -> None:
        """Timed modes: send these copies now (the dispatcher chose the moment)."""
        self._due = due
        self._item = item
        self._copies = copies[::-1]
        self._pump()

    def _finish(self) -> None:
        close_slot(self.slot)
        if not self.done.done():
            self.done.set_result(None)

    def _fail(self, e: BaseException) -> None:
        eng = self.engine
        self._finish()
        eng.fail(e)
        if self._dispatcher is not None:
            self._dispatcher.wake()

    def _pump(self) -> None:
        """Send the next copy (or take the next exchange); never blocks."""
        try:
            eng = self.engine
            if self._copies:
                ex, pool = self._copies.pop()
            else:
                if self._dispatcher is not None:
                    self._dispatcher.release(self)
                    return
                unit = eng.next_unit()
                if unit is None:
                    self._finish()
                    return
                if not isinstance(unit, tuple):  # held back by the order gate: park
                    eng.wait_for_unit(self._wake)
                    return
                self._item = unit[3]
                copies = eng.copies_of(unit[0], unit[2])
                ex, pool = copies[0]
                if len(copies) > 1:
                    self._copies = copies[:0:-1]  # the others, popped in order
            req, raw = eng.prepare(ex, pool)
            conn = self.slot.get(pool.index)
            if conn is None or conn.closed:
                self._cur = (ex, pool, req, raw, None, False)
                self.loop.create_task(self._connect_and_send(retry=False))
                return
            self._cur = (ex, pool, req, raw, conn, conn.uses > 0)
            conn.send(raw, raw.startswith(b"HEAD "), self._on_result)
        except BaseException as e:
            self._fail(e)

    async def _connect_and_send(self, retry: bool) -> None:
        assert self._cur is not None
        ex, pool, req, raw, _, _ = self._cur
        try:
            if retry:
                self.engine.stats.retries += 1
            try:
                conn = await pool.connect(self.loop)
            except ConnectError as e:
                self.slot.pop(pool.index, None)
                self._on_result(Result(error=e.kind))
                return
            self.slot[pool.index] = conn
            # a fresh connection is never retried: reused=False
            self._cur = (ex, pool, req, raw, conn, False)
            conn.send(raw, raw.startswith(b"HEAD "), self._on_result)
        except BaseException as e:
            self._fail(e)

    def _on_result(self, res: Result) -> None:
        try:
            assert self._cur is not None
            ex, pool, req, raw, conn, reused = self._cur
            if conn is not None and conn.closed:
                self.slot.pop(pool.index, None)
            if res.error in ("closed", "reset") and reused and not res.received_any:
                self.loop.create_task(self._connect_and_send(retry=True))
                return
            eng = self.engine
            if eng.config.redirects and res.error is None and res.status in _REDIRECTS:
                self.loop.create_task(self._redirects(res))
                return
            self._cur = None
            eng.record(ex, pool, req, raw, res, res, self._due, self._item)
            self._pump()
        except BaseException as e:
            self._fail(e)

    async def _redirects(self, first: Result) -> None:
        try:
            assert self._cur is not None
            ex, pool, req, raw, _, _ = self._cur
            eng = self.engine
            res, hops = await follow_redirects(
                self.loop, pool, self.slot, raw, first, eng.config.redirects
            )
            if hops:
                eng.stats.redirects_followed += hops
                ex.meta["redirects"] = str(hops)
            self._cur = None
            eng.record(ex, pool, req, raw, first, res, self._due, self._item)
            self._pump()
        except BaseException as e:
            self._fail(e)


class TimedDispatcher:
    """Timed modes (``--speed``/``--rate``/``--ramp``) and live feeds, without sessions: one
    coroutine waits for each unit's due time (one timer for all units due in the same tick) or
    for the live feed, and hands the unit to an idle lane, which writes at once. No lane idle at the due time means the target is
    behind: the dispatcher waits for one and the lag is measured on the request."""

    def __init__(self, engine: LaneHost) -> None:
        self.engine = engine
        self.lanes = [FastLane(engine, self) for _ in range(engine.config.concurrency)]
        self._idle: list[FastLane] = list(self.lanes)
        self._waiter: asyncio.Future[None] | None = None

    def release(self, lane: FastLane) -> None:
        self._idle.append(lane)
        self.wake()

    def wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def run(self) -> None:
        eng = self.engine
        loop = eng.loop
        perf = time.perf_counter_ns
        try:
            while True:
                unit = eng.next_unit()
                if unit is None:
                    break
                if not isinstance(unit, tuple):  # live feed empty, or order: wait
                    await eng.park()
                    continue
                ex, due, key, item = unit
                if due is not None:
                    d = due - perf()
                    while d > 1_500_000:  # timers tick in ms: see Engine._send_unit
                        if eng.stop.is_set():
                            eng.stats.dropped["stopped"] += 1
                            break
                        await asyncio.sleep(min(d - 500_000, 200_000_000) / 1e9)
                        d = due - perf()
                    else:
                        if d > 500_000:
                            await asyncio.sleep(d / 1e9)
                    if eng.stop.is_set():
                        break
                while not self._idle and not eng.failed:
                    self._waiter = loop.create_future()
                    await self._waiter
                if eng.failed:
                    break
                self._idle.pop().assign(eng.copies_of(ex, key), due, item)
            # wait until every lane is back (its last answer recorded)
            while len(self._idle) < len(self.lanes) and not eng.failed:
                self._waiter = loop.create_future()
                await self._waiter
        finally:
            for lane in self.lanes:
                lane._finish()
