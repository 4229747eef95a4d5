"""Coroutine workers: ``--sessions``, and every mode when the callback lanes are off.

``--concurrency C`` coroutines take units from the engine (:class:`~._host.LaneHost`). The
first worker that meets a session runs it; units of a session that is already running are
queued behind it (bounded: the feed pauses when too many wait), so a session's requests go out
in their original order over one connection while sessions run in parallel. Idle sessions
keep their connections in a bounded LRU (:class:`~.pool.SlotLRU`).
"""

from __future__ import annotations

import asyncio
import collections
import time

from ..model import Exchange
from ._host import WAIT, LaneHost, Unit
from ._order import OrderItem, credential
from ._redirect import REDIRECTS, follow_redirects
from .pool import Slot, SlotLRU, TargetPool, close_slot

__all__ = ["CoroutineWorkers", "session_key_of"]

_perf_ns = time.perf_counter_ns


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


class CoroutineWorkers:
    """``config.concurrency`` worker coroutines over one engine; :meth:`start` them."""

    def __init__(self, host: LaneHost) -> None:
        self.host = host
        c = host.config
        self._sessions: dict[str, _Session] = {}
        self._idle = SlotLRU(max(16, c.concurrency))
        self._deferred = 0
        self._max_deferred = max(1000, 16 * c.concurrency)

    def start(self) -> list[asyncio.Future[None]]:
        loop = self.host.loop
        return [loop.create_task(self._worker()) for _ in range(self.host.config.concurrency)]

    def close(self) -> None:
        self._idle.close()

    async def _next(self) -> Unit | None:
        """The next unit to send, or None when the run is over."""
        host = self.host
        while True:
            unit = host.next_unit()
            if unit is not WAIT:
                return unit  # type: ignore[return-value]
            await host.park()

    def _stopping(self) -> bool:
        return self.host.stop.is_set() or self.host.failed

    async def _worker(self) -> None:
        slot: Slot = {}
        try:
            while True:
                try:
                    unit = await self._next()
                except BaseException as e:
                    self.host.fail(e)
                    return
                if unit is None:
                    return
                key = unit[2]
                if key is not None and self.host.config.sessions:
                    st = self._sessions.get(key)
                    if st is not None:
                        st.queue.append(unit)
                        self._deferred += 1
                        # too many requests wait behind running sessions: pause the feed
                        while self._deferred >= self._max_deferred and not self._stopping():
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
                if self._stopping():
                    self.host.stats.dropped["stopped"] += 1
                    if unit[3] is not None:
                        self.host.abandon(unit[3])
                    continue
                await self._send_unit(unit, slot)
        finally:
            del self._sessions[st.key]
            self._idle.put(st.key, slot)

    async def _send_unit(self, unit: Unit, slot: Slot) -> None:
        ex, due, key, item = unit
        host = self.host
        if due is not None:
            # The loop's timers tick in whole milliseconds: sleeping for a sub-millisecond
            # remainder would spin. Sleep in steps while more than a tick is left, then once
            # for the remainder, and send (at most half a tick early); lag is measured.
            d = due - _perf_ns()
            while d > 1_500_000:
                if host.stop.is_set():  # do not sit out a long recorded gap after Ctrl-C
                    host.stats.dropped["stopped"] += 1
                    if item is not None:
                        host.abandon(item)
                    return
                await asyncio.sleep(min(d - 500_000, 200_000_000) / 1e9)
                d = due - _perf_ns()
            if d > 500_000:
                await asyncio.sleep(d / 1e9)
        copies = host.copies_of(ex, key)
        if len(copies) == 1:
            await self._send_copy(copies[0][0], copies[0][1], slot, due, item)
        else:
            await asyncio.gather(*(self._send_copy(cp, p, slot, due, item) for cp, p in copies))

    async def _send_copy(
        self, ex: Exchange, pool: TargetPool, slot: Slot, due: int | None, item: OrderItem | None
    ) -> None:
        host = self.host
        loop = host.loop
        req, raw = host.prepare(ex, pool)
        res = await pool.roundtrip(loop, slot, raw, raw.startswith(b"HEAD "))
        first = res
        redirects = host.config.redirects
        if redirects and res.error is None and res.status in REDIRECTS:
            res, hops = await follow_redirects(loop, pool, slot, raw, res, redirects)
            if hops:
                host.stats.redirects_followed += hops
                ex.meta["redirects"] = str(hops)
        host.record(ex, pool, req, raw, first, res, due, item)
