"""The clock: the real one and the fake one tests move by hand are both a ``Clock``."""

from __future__ import annotations

import asyncio
import time

from replaygate._clock import SYSTEM_CLOCK, Clock
from replaygate.testing import FakeClock


def test_both_clocks_are_clocks() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock) and isinstance(FakeClock(), Clock)


def test_system_clock_reads_the_real_clocks() -> None:
    a = SYSTEM_CLOCK.monotonic()
    asyncio.run(SYSTEM_CLOCK.sleep(0))
    assert SYSTEM_CLOCK.monotonic() >= a
    assert abs(SYSTEM_CLOCK.time() - time.time()) < 60


def test_fake_clock_moves_only_when_told() -> None:
    c = FakeClock(10.0, epoch=1000.0)
    assert (c(), c.monotonic(), c.time()) == (10.0, 10.0, 1010.0)
    c.advance(2.5)
    assert (c.monotonic(), c.time()) == (12.5, 1012.5)

    async def nap() -> None:
        await c.sleep(3.0)
        await c.sleep(-1.0)  # a deadline already passed: no time moves

    asyncio.run(nap())
    assert c.monotonic() == 15.5 and c.sleeps == [3.0, -1.0]
