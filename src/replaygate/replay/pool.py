"""Keep-alive connections per target.

A *slot* is a small dict ``target index -> Connection`` owned by one engine worker (for
independent requests) or by one session (requests that must share a connection, in order).
The worker slots are the per-target keep-alive pool: ``--concurrency C`` workers keep at most
C connections open to each target. Sessions that are idle keep their connections in a
bounded LRU so that a session's later requests travel on the same connection again; the
least recently used are closed when more than ``max_idle`` sessions wait.

A connection the server closed is replaced on next use; a request that fails on a *reused*
connection before any response byte arrived (the server closed an idle keep-alive connection
at the same moment) is retried once on a fresh one, like browsers and GoReplay do.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import OrderedDict
from typing import TYPE_CHECKING

from ._config import ReplayConfig, Target
from ._stats import ReplayStats

if TYPE_CHECKING:
    from ._h2client import H2Mux
from .client import ConnectError, ReplayConnection, Result, Tracker, connect

__all__ = ["Slot", "SlotLRU", "TargetPool"]

Slot = dict[int, ReplayConnection]


class TargetPool:
    """Connection factory and per-target facts (Host header bytes, addresses for safety)."""

    def __init__(
        self,
        index: int,
        target: Target,
        role: str,
        config: ReplayConfig,
        ssl_context: ssl.SSLContext | None,
        stats: ReplayStats,
        tracker: Tracker | None = None,
    ) -> None:
        self.tracker = tracker if tracker is not None else Tracker()
        self.index = index
        self.target = target
        self.role = role
        self.config = config
        self.ssl_context = ssl_context
        self.stats = stats
        self.host_bytes: bytes | None = (
            None if config.keep_host else target.host_header.encode("latin-1")
        )
        self.prefix = target.prefix.encode("latin-1")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._h2: H2Mux | None = None  # --http2: the target's multiplexed connections

    def addresses(self) -> set[tuple[str, int]]:
        """``(ip, port)`` pairs the target resolves to (empty when it does not resolve)."""
        out = {(self.target.host.lower(), self.target.port)}
        try:
            for info in socket.getaddrinfo(
                self.target.host, self.target.port, type=socket.SOCK_STREAM
            ):
                out.add((str(info[4][0]), self.target.port))
        except OSError:
            pass
        return out

    async def roundtrip(
        self, loop: asyncio.AbstractEventLoop, slot: Slot, raw: bytes, head_only: bool
    ) -> Result:
        """Send ``raw`` on the slot's connection (opened on demand) and wait for the answer."""
        conn = slot.get(self.index)
        if conn is None or conn.closed:
            try:
                conn = await self._connect(loop)
            except ConnectError as e:
                slot.pop(self.index, None)
                return Result(error=e.kind)
            slot[self.index] = conn
        reused = conn.uses > 0
        res = await conn.request(raw, head_only)
        if res.error in ("closed", "reset") and reused and not res.received_any:
            self.stats.retries += 1
            try:
                conn = await self._connect(loop)
            except ConnectError as e:
                slot.pop(self.index, None)
                return Result(error=e.kind)
            slot[self.index] = conn
            res = await conn.request(raw, head_only)
        if conn.closed:
            slot.pop(self.index, None)
        return res

    async def connect(self, loop: asyncio.AbstractEventLoop) -> ReplayConnection:
        """A new connection to the target (counted in ``stats.connections``); with
        ``--http2`` a handle on the target's multiplexed streams."""
        return await self._connect(loop)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> ReplayConnection:
        c = self.config
        if c.http2:  # streams over the target's shared connections (opened as needed)
            if self._h2 is None:
                from ._h2client import H2Mux

                self._h2 = H2Mux(loop, self.target, c, self.ssl_context, self.stats, self.tracker)
            return self._h2.handle()
        self.stats.connections += 1
        return await connect(
            loop,
            self.target,
            connect_timeout=c.connect_timeout,
            response_timeout=c.response_timeout,
            ssl_context=self.ssl_context,
            tracker=self.tracker,
            max_response=c.max_response_size,
            max_header=c.max_header_size,
        )


def close_slot(slot: Slot) -> None:
    for conn in slot.values():
        conn.close()
    slot.clear()


class SlotLRU:
    """Idle sessions' connections, most recently used last; evicted slots are closed."""

    def __init__(self, max_idle: int) -> None:
        self.max_idle = max_idle
        self._slots: OrderedDict[str, Slot] = OrderedDict()

    def take(self, key: str) -> Slot:
        return self._slots.pop(key, None) or {}

    def put(self, key: str, slot: Slot) -> None:
        if not slot:
            return
        live = {i: c for i, c in slot.items() if not c.closed}
        if not live:
            return
        self._slots[key] = live
        while len(self._slots) > self.max_idle:
            _, old = self._slots.popitem(last=False)
            close_slot(old)

    def close(self) -> None:
        while self._slots:
            _, s = self._slots.popitem()
            close_slot(s)
