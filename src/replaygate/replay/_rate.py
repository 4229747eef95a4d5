"""When requests went out, against when they were due: the achieved and asked rates.

Every sender notes each first send (:meth:`SendClock.sent`) and the engine notes each due
time it hands out (:meth:`SendClock.due`); :func:`finish_rates` turns them into the rates and
the shortfall line of :class:`~._stats.ReplayStats`.
"""

from __future__ import annotations

from ._config import ReplayConfig
from ._stats import ReplayStats

__all__ = ["SendClock", "finish_rates"]


class SendClock:
    """First and last send and due times (perf_counter ns) and how many units were sent."""

    __slots__ = (
        "first_due",
        "first_send",
        "last_due",
        "last_send",
        "start",
        "units_due",
        "units_sent",
    )

    def __init__(self) -> None:
        self.start = 0  # the run's start (a moment before the first connection opens)
        self.first_send = 0
        self.last_send = 0
        self.units_sent = 0  # candidate copies counted once per unit
        self.first_due: int | None = None
        self.last_due = 0
        self.units_due = 0

    def due(self, due: int) -> None:
        if self.first_due is None:
            self.first_due = due
        self.last_due = due
        self.units_due += 1

    def sent(self, sent_perf: int, unit: bool) -> None:
        """A request's first byte went out at ``sent_perf``; ``unit``: it counts for the rate
        (one copy per unit)."""
        if not self.first_send:
            self.first_send = sent_perf
        if sent_perf > self.last_send:
            self.last_send = sent_perf
        if unit:
            self.units_sent += 1


def finish_rates(
    st: ReplayStats,
    clock: SendClock,
    config: ReplayConfig,
    asked_rate: float | None,
    now: int,
) -> None:
    """Elapsed time, achieved and asked rates, percentiles and the shortfall line."""
    start = clock.first_send or clock.start
    st.elapsed_s = max(0.0, (now - min(start, now)) / 1e9)
    # From the schedule's first due time when there is one: a late start (connections slow
    # to open on a busy machine) followed by a catch-up must not read as a rate above the
    # one asked (nothing is sent before its due time, so this never over-reports).
    first = clock.first_send
    if clock.first_due is not None and 0 < clock.first_due < first:
        first = clock.first_due
    span = (clock.last_send - first) / 1e9
    n = clock.units_sent
    if n >= 2 and span > 0:
        st.achieved_rate = (n - 1) / span
    elif st.elapsed_s > 0:
        st.achieved_rate = n / st.elapsed_s
    asked = asked_rate
    if asked is None and clock.first_due is not None and clock.units_due >= 2:
        dspan = (clock.last_due - clock.first_due) / 1e9
        asked = (clock.units_due - 1) / dspan if dspan > 0 else None
    st.asked_rate = asked if config.timed else None
    st.finish_percentiles()
    st.shortfall = None
    if st.asked_rate and n >= 2 and st.achieved_rate < 0.98 * st.asked_rate:
        pct = 100 * st.achieved_rate / st.asked_rate
        st.shortfall = (
            f"achieved {st.achieved_rate:.1f} req/s of the {st.asked_rate:.1f} asked "
            f"({pct:.0f}%): the target or this client could not keep up "
            f"(p99 send lag {st.lag_p99_ms:.0f} ms, {st.late} requests > 10 ms late, "
            f"concurrency {config.concurrency})"
        )
    elif st.late and st.sent and st.late / st.sent > 0.01:
        st.shortfall = (
            f"{st.late} of {st.sent} requests were sent more than 10 ms late "
            f"(p99 send lag {st.lag_p99_ms:.0f} ms): raise --concurrency or --workers"
        )
