"""What the engine's senders (callback lanes, coroutine workers, the lean path) see of it.

The engine (:class:`~replaygate.replay.engine.Engine`) hands out *units* and records their
outcomes; a sender never touches the engine's private state, only :class:`LaneHost`. The
engine imports the senders, never the other way round.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Protocol

from ..model import Exchange, Request
from ._config import ReplayConfig
from ._order import OrderItem
from ._stats import ReplayStats
from .client import Result
from .pool import TargetPool

__all__ = ["WAIT", "LaneHost", "Unit"]

# what the engine hands out: the exchange, when it is due (perf_counter ns, None = now), its
# session key and its order item
Unit = tuple[Exchange, int | None, str | None, OrderItem | None]

WAIT = object()  # next_unit: nothing to hand out yet (live feed empty, order gate)


class LaneHost(Protocol):
    """What senders need from the engine, and all."""

    loop: asyncio.AbstractEventLoop
    stop: threading.Event
    config: ReplayConfig
    stats: ReplayStats

    @property
    def failed(self) -> bool: ...

    def fail(self, e: BaseException) -> None: ...

    def next_unit(self) -> Unit | object | None: ...

    def park(self) -> asyncio.Future[None]: ...

    def wait_for_unit(self, wake: Callable[[], None]) -> None: ...

    def abandon(self, item: OrderItem) -> None: ...

    def copies_of(self, ex: Exchange, key: str | None) -> list[tuple[Exchange, TargetPool]]: ...

    def prepare(self, ex: Exchange, pool: TargetPool) -> tuple[Request, bytes]: ...

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
    ) -> None: ...
