"""Timing modes as schedules: each exchange gets an absolute send offset (seconds from start).

Rate control is this wrapper, not code inside the client: the engine sends each request at
``start + offset``, an absolute schedule, so per-request sleeping never accumulates drift,
and lateness (actual - scheduled) is measured rather than hidden.

* ``--speed X``: recorded gaps divided by X (each gap capped by ``--max-wait``).
* ``--rate N``: request *i* at ``i / N``.
* ``--ramp R1:D1,R2:D2``: constant rate R1 for D1 seconds, then R2 for D2 ... then stop.
* ``--max``: no schedule (offset None); concurrency alone limits the pace.

``--loop`` replays the source again (ids get a ``loop`` suffix so copies stay distinct),
``--duration`` stops at that offset (or wall time in ``--max``), ``--limit N`` after N.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import ReplayError
from ..model import Exchange, stable_exchange_id
from ._config import ReplayConfig

__all__ = ["Schedule", "scheduled"]


class Schedule:
    """Computes the offset of each successive exchange for one timing mode."""

    def __init__(self, config: ReplayConfig) -> None:
        self.config = config
        self._i = 0
        self._prev_ts: int | None = None
        self._offset = 0.0
        self._ramp = list(config.ramp or [])
        self._stage = 0
        self._stage_start = 0.0
        self._stage_i = 0
        self.finished = False  # the schedule itself ended (ramp stages used up)

    @property
    def asked_rate(self) -> float | None:
        """The rate the user asked for, when the mode defines one up front."""
        if self.config.rate is not None:
            return self.config.rate
        if self._ramp:
            total = sum(d for _, d in self._ramp)
            return sum(r * d for r, d in self._ramp) / total
        return None

    @property
    def total_duration(self) -> float | None:
        if self._ramp:
            return sum(d for _, d in self._ramp)
        return self.config.duration

    def next_offset(self, ex: Exchange) -> float | None:
        """Offset (s) at which to send ``ex``; None in ``--max`` mode. Sets ``finished``."""
        c = self.config
        if c.max_speed:
            return None
        if c.rate is not None:
            off = self._i / c.rate
            self._i += 1
            return off
        if self._ramp:
            return self._ramp_offset()
        ts = ex.request.ts_first_ns
        if self._prev_ts is None:
            self._prev_ts = ts
            return self._offset
        gap = max(0, ts - self._prev_ts) / 1e9 / c.speed
        if ts > self._prev_ts:
            self._prev_ts = ts
        if c.max_wait is not None and gap > c.max_wait:
            gap = c.max_wait
        self._offset += gap
        return self._offset

    def _ramp_offset(self) -> float | None:
        while self._stage < len(self._ramp):
            rate, dur = self._ramp[self._stage]
            if rate > 0:
                off = self._stage_start + self._stage_i / rate
                if off < self._stage_start + dur:
                    self._stage_i += 1
                    return off
            self._stage_start += dur
            self._stage += 1
            self._stage_i = 0
        self.finished = True
        return None

    def loop_gap(self) -> None:
        """Between two passes of ``--loop`` in ``--speed`` mode: continue after a small gap
        instead of jumping back to the first timestamp."""
        if self._prev_ts is not None:
            self._offset += 0.001
            self._prev_ts = None


def scheduled(
    source: Iterable[Exchange], config: ReplayConfig
) -> Iterator[tuple[Exchange, float | None]]:
    """``(exchange, offset)`` pairs for the whole run: loop, limit, duration and ramp end."""
    sched = Schedule(config)
    limit = config.limit
    n = 0
    k = 0
    while True:
        got = 0
        it = iter(source)
        try:
            for ex in it:
                if limit is not None and n >= limit:
                    return
                if k:
                    ex = _loop_copy(ex, k)
                off = sched.next_offset(ex)
                if sched.finished:
                    return
                if config.duration is not None and off is not None and off >= config.duration:
                    return
                got += 1
                n += 1
                yield ex, off
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        if not config.loop or (limit is not None and n >= limit):
            return
        if not got:
            if k == 0:
                return  # empty source: nothing to loop
            raise ReplayError(
                "--loop: the source cannot be read twice (pass files, not a one-shot stream)"
            )
        k += 1
        if config.timed and config.rate is None and not config.ramp:
            sched.loop_gap()


def _loop_copy(ex: Exchange, k: int) -> Exchange:
    cp = ex.copy()
    cp.id = stable_exchange_id(ex.id, k)
    cp.meta["loop"] = str(k)
    cp.meta.setdefault("orig_id", ex.id)
    return cp
