"""Per-endpoint counters of a comparator: mergeable, serialisable, bounded in memory."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .latency import LatencyHistogram

__all__ = ["EndpointStats", "counter"]

DiffKey = tuple[str, str]


def counter(d: Any) -> Counter[str]:
    if not isinstance(d, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in d.items()
    ):
        raise TypeError(f"expected a map of counts, got {type(d).__name__}")
    return Counter(d)


class EndpointStats:
    __slots__ = (
        "base_compared",
        "base_diffs",
        "base_errors",
        "base_new_5xx",
        "base_requests",
        "base_status",
        "compared",
        "diffs",
        "errors",
        "full_samples",
        "lat_base",
        "lat_orig",
        "lat_rep",
        "new_5xx",
        "requests",
        "samples",
        "signatures",
        "skipped",
        "status",
        "status_only",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.compared = 0
        self.diffs: Counter[DiffKey] = Counter()
        self.signatures: Counter[tuple[DiffKey, ...]] = Counter()
        self.base_requests = 0
        self.base_compared = 0
        self.base_diffs: Counter[DiffKey] = Counter()
        self.status: Counter[str] = Counter()
        self.base_status: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.base_errors: Counter[str] = Counter()
        self.new_5xx = 0
        self.base_new_5xx = 0
        self.lat_orig = LatencyHistogram()
        self.lat_rep = LatencyHistogram()
        self.lat_base = LatencyHistogram()
        self.samples: dict[str, list[dict[str, Any]]] = {}
        self.full_samples = 0  # samples holding whole messages (bounded: memory)
        self.skipped: Counter[str] = Counter()
        # replayed without an original response: judged on status/5xx/errors/latency only
        self.status_only = 0

    def merge(self, o: EndpointStats, max_samples: int) -> None:
        self.requests += o.requests
        self.compared += o.compared
        self.diffs.update(o.diffs)
        self.signatures.update(o.signatures)
        self.base_requests += o.base_requests
        self.base_compared += o.base_compared
        self.base_diffs.update(o.base_diffs)
        self.status.update(o.status)
        self.base_status.update(o.base_status)
        self.errors.update(o.errors)
        self.base_errors.update(o.base_errors)
        self.new_5xx += o.new_5xx
        self.base_new_5xx += o.base_new_5xx
        self.lat_orig.merge(o.lat_orig)
        self.lat_rep.merge(o.lat_rep)
        self.lat_base.merge(o.lat_base)
        self.skipped.update(o.skipped)
        self.status_only += o.status_only
        self.full_samples += o.full_samples
        for f, ss in o.samples.items():
            mine = self.samples.setdefault(f, [])
            mine.extend(ss[: max(0, max_samples - len(mine))])

    def to_state(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "compared": self.compared,
            "diffs": [[f, k, n] for (f, k), n in self.diffs.items()],
            "signatures": [[[list(k) for k in sig], n] for sig, n in self.signatures.items()],
            "base_requests": self.base_requests,
            "base_compared": self.base_compared,
            "base_diffs": [[f, k, n] for (f, k), n in self.base_diffs.items()],
            "status": dict(self.status),
            "base_status": dict(self.base_status),
            "errors": dict(self.errors),
            "base_errors": dict(self.base_errors),
            "new_5xx": self.new_5xx,
            "base_new_5xx": self.base_new_5xx,
            "lat_orig": self.lat_orig.to_state(),
            "lat_rep": self.lat_rep.to_state(),
            "lat_base": self.lat_base.to_state(),
            "samples": self.samples,
            "full_samples": self.full_samples,
            "skipped": dict(self.skipped),
            "status_only": self.status_only,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> EndpointStats:
        e = cls()
        e.requests = int(d["requests"])
        e.compared = int(d["compared"])
        e.diffs = Counter({(f, k): int(n) for f, k, n in d["diffs"]})
        e.signatures = Counter(
            {tuple((f, k) for f, k in sig): int(n) for sig, n in d["signatures"]}
        )
        e.base_requests = int(d["base_requests"])
        e.base_compared = int(d["base_compared"])
        e.base_diffs = Counter({(f, k): int(n) for f, k, n in d["base_diffs"]})
        e.status = counter(d["status"])
        e.base_status = counter(d["base_status"])
        e.errors = counter(d["errors"])
        e.base_errors = counter(d["base_errors"])
        e.new_5xx = int(d["new_5xx"])
        e.base_new_5xx = int(d["base_new_5xx"])
        e.lat_orig = LatencyHistogram.from_state(d["lat_orig"])
        e.lat_rep = LatencyHistogram.from_state(d["lat_rep"])
        e.lat_base = LatencyHistogram.from_state(d["lat_base"])
        e.samples = d["samples"]
        e.full_samples = int(d.get("full_samples", 0))
        if not isinstance(e.samples, dict) or not all(
            isinstance(v, list) and all(isinstance(x, dict) for x in v) for v in e.samples.values()
        ):
            raise TypeError("samples must map fields to lists of objects")
        e.skipped = counter(d["skipped"])
        e.status_only = int(d.get("status_only", 0))
        return e
