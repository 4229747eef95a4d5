"""What ``replay`` prints: the progress line, the end-of-run summary, and the one-line
errors of a replay that reached nothing."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence

from ..model import Counters
from ..replay import ReplayConfig, ReplayStats
from ..runner import count_requests

__all__ = ["Progress", "expected_total", "format_replay_stats", "nothing_replayed", "unreachable"]


def format_replay_stats(st: ReplayStats) -> list[str]:
    """The end-of-run summary lines."""
    errs = ", ".join(f"{k}={v}" for k, v in st.errors.most_common())
    drops = ", ".join(f"{k}={v}" for k, v in st.dropped.most_common())
    lines = [
        f"replay: sent {st.sent}, answered {st.answered}, errors {st.error_count}"
        + (f" ({errs})" if errs else "")
        + (f", dropped {sum(st.dropped.values())} ({drops})" if drops else "")
        + (" [stopped early]" if st.stopped else ""),
        f"  rate {st.achieved_rate:.1f} req/s achieved"
        + (f" of {st.asked_rate:.1f} asked" if st.asked_rate else "")
        + f", {st.elapsed_s:.2f} s, {st.connections} connections",
        f"  latency p50 {st.latency_p50_ms:.2f} ms, p90 {st.latency_p90_ms:.2f} ms, "
        f"p99 {st.latency_p99_ms:.2f} ms, max {st.latency_max_ms:.2f} ms",
    ]
    if st.status:
        lines.append("  status " + ", ".join(f"{k}={v}" for k, v in sorted(st.status.items())))
    if st.asked_rate:
        lines.append(
            f"  send lag p50 {st.lag_p50_ms:.2f} ms, p99 {st.lag_p99_ms:.2f} ms, "
            f"{st.late} requests > 10 ms late"
        )
    if st.truncated:
        lines.append(
            f"  {st.truncated} replayed responses cut at --max-response-size "
            "(flagged replay_truncated)"
        )
    if st.http2:
        lines.append("  http2 " + ", ".join(f"{k}={v}" for k, v in sorted(st.http2.items())))
    if st.order != "none":
        lines.append(
            f"  order {st.order}: {st.order_waited} requests waited for their predecessors"
            + (
                f" (p50 {st.order_wait_p50_ms:.2f} ms, p99 {st.order_wait_p99_ms:.2f} ms, "
                f"max {st.order_wait_max_ms:.2f} ms)"
                if st.order_waited
                else ""
            )
            + (
                f"; {st.order_inversions} exchanges came after one they preceded "
                "(input not in recorded order)"
                if st.order_inversions
                else ""
            )
        )
    if st.shortfall:
        lines.append(f"  SHORTFALL: {st.shortfall}")
    return lines


class Progress:
    """One line on stderr, rewritten in place: done/total, rate, errors, ETA."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.enabled = enabled
        self.total = total
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, st: ReplayStats) -> None:
        if not self.enabled:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._last < 0.25:
                return
            self._last = now
            rate = st.achieved_rate
            total = self.total
            if total:
                pct = min(100.0, 100 * st.sent / total)
                eta = (total - st.sent) / rate if rate > 0 else None
                head = f"{st.sent}/{total} ({pct:.0f}%)"
                tail = f"ETA {_hms(eta)}" if eta is not None else "ETA ?"
            else:
                head, tail = f"{st.sent} sent", "ETA ?"
            line = (
                f"\rreplay {head}  {rate:,.0f} req/s  errors {st.error_count}  "
                f"p99 {st.latency_p99_ms:.1f} ms  {tail}"
            )
            sys.stderr.write(line.ljust(78) + " ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _hms(s: float) -> str:
    s = max(0, int(s))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


_CONNECT_ERRORS = frozenset(("connect_refused", "connect_timeout", "connect_error", "dns"))


def unreachable(stats: ReplayStats) -> str | None:
    """One line when no request ever reached a target (exit 2: the job is wrong, not the
    release): every request failed to connect."""
    if stats.answered or not stats.errors or not set(stats.errors) <= _CONNECT_ERRORS:
        return None
    kinds = ", ".join(f"{k}={n}" for k, n in stats.errors.most_common())
    return (
        f"the target was unreachable for every request ({kinds}): check --target and that "
        "it is running"
    )


def nothing_replayed(counters: Counters) -> str:
    filtered = sum(counters.dropped.values())
    if filtered:
        why = ", ".join(f"{k}={v}" for k, v in counters.dropped.most_common())
        return f"nothing to replay: every exchange was dropped ({why})"
    return "nothing to replay: no exchanges in the input"


def expected_total(rc: ReplayConfig, files: Sequence[str]) -> int | None:
    n = count_requests(files) if not rc.loop else None
    if rc.limit is not None:
        n = rc.limit if n is None else min(n, rc.limit)
    if rc.rate is not None and rc.duration is not None:
        cap = int(rc.rate * rc.duration)
        n = cap if n is None else min(n, cap)
    if rc.ramp:
        cap = int(sum(r * d for r, d in rc.ramp))
        n = cap if n is None else min(n, cap)
    if n is None:
        return None
    copies = (1 if rc.split else len(rc.targets)) + (1 if rc.baseline else 0)
    return n * copies
