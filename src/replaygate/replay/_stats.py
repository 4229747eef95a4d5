"""Replay statistics: what was sent, answered, lost, how fast and how late.

Latency, lag and order waits are recorded in microseconds in the package's one histogram
(:mod:`replaygate._histogram`): bounded memory, merged across worker processes by adding counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .._histogram import Histogram

__all__ = ["Histogram", "ReplayStats"]


@dataclass
class ReplayStats:
    """The outcome of a replay. ``shortfall`` is None when the asked schedule was held,
    otherwise one sentence saying by how much and why it was not."""

    sent: int = 0
    answered: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    status: Counter[int] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    achieved_rate: float = 0.0
    asked_rate: float | None = None
    shortfall: str | None = None
    latency_p50_ms: float = 0.0
    latency_p90_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    lag_p50_ms: float = 0.0
    lag_p99_ms: float = 0.0
    lag_max_ms: float = 0.0
    late: int = 0  # requests sent more than 10 ms after their scheduled time
    exchanges: int = 0  # source exchanges taken (before copies to several targets)
    redirects_followed: int = 0
    truncated: int = 0  # replayed responses cut at max_response_size (flagged)
    retries: int = 0  # stale keep-alive connections retried once on a fresh one
    connections: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    stopped: bool = False  # stopped early (Ctrl-C / stop event) before the source ended
    total: int | None = None  # expected number of requests, when known (progress/ETA)
    order: str = "none"  # --order used: none | sessions | recorded
    order_waited: int = 0  # requests held back until their predecessors had finished
    order_wait_p50_ms: float = 0.0  # of the requests that waited
    order_wait_p99_ms: float = 0.0
    order_wait_max_ms: float = 0.0
    order_wait_total_s: float = 0.0
    order_inversions: int = 0  # input not in a causal order (a predecessor came later)
    # HTTP/2 events (--http2): goaway, rst_stream, refused_stream, retried
    http2: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram, repr=False)
    lag: Histogram = field(default_factory=Histogram, repr=False)
    order_wait: Histogram = field(default_factory=Histogram, repr=False)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def finish_percentiles(self) -> None:
        """Fill the ``*_ms`` fields from the histograms (microseconds -> ms)."""
        h = self.latency
        self.latency_p50_ms = round(h.percentile(50) / 1000, 3)
        self.latency_p90_ms = round(h.percentile(90) / 1000, 3)
        self.latency_p99_ms = round(h.percentile(99) / 1000, 3)
        self.latency_max_ms = round(h.max / 1000, 3)
        g = self.lag
        self.lag_p50_ms = round(g.percentile(50) / 1000, 3)
        self.lag_p99_ms = round(g.percentile(99) / 1000, 3)
        self.lag_max_ms = round(g.max / 1000, 3)
        w = self.order_wait
        self.order_wait_p50_ms = round(w.percentile(50) / 1000, 3)
        self.order_wait_p99_ms = round(w.percentile(99) / 1000, 3)
        self.order_wait_max_ms = round(w.max / 1000, 3)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (contract: keep these keys)."""
        return {
            "sent": self.sent,
            "answered": self.answered,
            "errors": dict(self.errors),
            "error_count": self.error_count,
            "dropped": dict(self.dropped),
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "elapsed_s": round(self.elapsed_s, 3),
            "achieved_rate": round(self.achieved_rate, 1),
            "asked_rate": None if self.asked_rate is None else round(self.asked_rate, 1),
            "shortfall": self.shortfall,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p90_ms": self.latency_p90_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "latency_max_ms": self.latency_max_ms,
            "lag_p50_ms": self.lag_p50_ms,
            "lag_p99_ms": self.lag_p99_ms,
            "lag_max_ms": self.lag_max_ms,
            "late": self.late,
            "exchanges": self.exchanges,
            "redirects_followed": self.redirects_followed,
            "retries": self.retries,
            "truncated": self.truncated,
            "connections": self.connections,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "stopped": self.stopped,
            "order": self.order,
            "order_waited": self.order_waited,
            "order_wait_p50_ms": self.order_wait_p50_ms,
            "order_wait_p99_ms": self.order_wait_p99_ms,
            "order_wait_max_ms": self.order_wait_max_ms,
            "order_wait_total_s": round(self.order_wait_total_s, 3),
            "order_inversions": self.order_inversions,
            "http2": dict(self.http2),
        }

    def merge(self, other: ReplayStats) -> None:
        """Add another process's counts (rates and percentiles are recomputed by the caller)."""
        for name in (
            "sent",
            "answered",
            "late",
            "exchanges",
            "redirects_followed",
            "retries",
            "truncated",
            "connections",
            "bytes_sent",
            "bytes_received",
            "order_waited",
            "order_wait_total_s",
            "order_inversions",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.order != "none":
            self.order = other.order
        self.stopped = self.stopped or other.stopped
        self.errors.update(other.errors)
        self.dropped.update(other.dropped)
        self.status.update(other.status)
        self.http2.update(other.http2)
        self.latency.merge(other.latency)
        self.lag.merge(other.lag)
        self.order_wait.merge(other.order_wait)
