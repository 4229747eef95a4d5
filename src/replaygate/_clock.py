"""The clock, injected where timing is the subject (pacing, timeouts, durations, ages).

Components that pace, time out, rotate or report ages take a ``clock`` (default
:data:`SYSTEM_CLOCK`) instead of reading :mod:`time` themselves, so tests drive them with
:class:`replaygate.testing.FakeClock`: no sleeps, no dependence on a busy machine's speed.
Places where real time is the point (benchmarks, log and report timestamps, the capture
timestamps of packets) read :mod:`time` directly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """``monotonic()``: seconds for durations and deadlines; ``time()``: seconds since the
    epoch, for ages compared with timestamps from elsewhere; ``sleep()``: wait on this clock."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
