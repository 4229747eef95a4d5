"""Latency per endpoint: histograms that merge exactly across workers.

Values are recorded in microseconds (1 µs .. 1 h, 2 significant digits: 1% resolution), so the
p50/p90/p99/max of a merged run are the same as if one process had seen every exchange.
A regression needs both a ratio *and* an absolute delta (the effect size), and a minimum
number of samples on both sides, so that a 2 ms -> 4 ms p99 on 5 requests does not fail a
release. Against a baseline copy replayed in the same run (same host, same moment, same load)
the difference must also be *significant*: a one-sided Mann-Whitney U test (the candidate's
latencies stochastically larger) at ``latency_confidence``. The tail of two identical copies
differs by chance (p99 x1.6 under CPU contention is common: thresholds alone flagged a
quarter of identical 300-request runs in our simulation, the test none); a real slowdown
moves the whole distribution and is significant long before its p99 is. A seeded bootstrap
interval of the percentile's difference is reported beside it to read the size of the
change, not used to decide: on heavy tails it is too wide (a 2x slowdown's p99 interval
often spans zero) and, at extreme percentiles of small samples, too narrow. Against the
original capture (another host, another time) only the thresholds apply.

:class:`TimeSeries` keeps per-second count/sum/max buckets for the "over time" charts.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from .._histogram import Histogram, bucket_key, highest, lowest, width
from ._significance import bootstrap_percentile_delta, mann_whitney_greater

__all__ = ["P99_MIN_SAMPLES", "LatencyHistogram", "TimeSeries", "latency_regression"]

_LOW_US = 1
_HIGH_US = 3_600_000_000
_DIGITS = 2


class LatencyHistogram:
    """A mergeable latency histogram recording nanoseconds, reporting milliseconds.

    The counts are the package's one :class:`~replaygate._histogram.Histogram` (in
    microseconds, clamped to 1 µs .. 1 h); a bucket is reported by its highest value and a
    percentile takes the value of rank ``round(p% * count)``, as HDR histograms do, and the
    state is HDR's encoding."""

    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = Histogram()

    def record_ns(self, ns: int) -> None:
        us = ns // 1000
        self._h.record(min(max(us, _LOW_US), _HIGH_US))

    @property
    def count(self) -> int:
        return self._h.count

    def merge(self, other: LatencyHistogram) -> None:
        if other.count:
            self._h.merge(other._h)

    def buckets(self) -> list[tuple[int, int]]:
        """``[(value_us, count), ...]`` of recorded buckets in value order (equal values are
        one bucket: ties for rank tests)."""
        return [(highest(k), c) for k, c in self._h.buckets()]

    def _percentiles(self, ps: list[float], nz: list[tuple[int, int]]) -> list[int]:
        total = self.count
        targets = [max(int(min(p, 100.0) * total / 100 + 0.5), 1) for p in ps]
        out = [0] * len(ps)
        run = 0
        j = 0
        order = sorted(range(len(ps)), key=lambda k: targets[k])
        for key, c in nz:
            run += c
            while j < len(order) and run >= targets[order[j]]:
                out[order[j]] = highest(key)
                j += 1
            if j == len(order):
                break
        return out

    def _max(self) -> int:
        return highest(bucket_key(self._h.max)) if self._h.max else 0

    def percentile_ms(self, p: float) -> float:
        if not self.count:
            return 0.0
        return round(self._percentiles([p], self._h.buckets())[0] / 1000.0, 3)

    def summary(self) -> dict[str, Any]:
        """``{"count", "p50", "p90", "p99", "max", "mean"}`` in milliseconds."""
        if not self.count:
            return {"count": 0}
        nz = self._h.buckets()
        p50, p90, p99 = self._percentiles([50.0, 90.0, 99.0], nz)
        mean = sum(c * (lowest(k) + (width(k) >> 1)) for k, c in nz) / self.count
        return {
            "count": self.count,
            "p50": round(p50 / 1000.0, 3),
            "p90": round(p90 / 1000.0, 3),
            "p99": round(p99 / 1000.0, 3),
            "max": round(self._max() / 1000.0, 3),
            "mean": round(mean / 1000.0, 3),
        }

    def distribution(self, buckets: int = 24) -> list[list[float]]:
        """``[[upper_ms, count], ...]`` on a log scale, for the distribution charts."""
        if not self.count:
            return []
        nz = self._h.buckets()
        lo = max(lowest(nz[0][0]), 1)
        hi = max(self._max(), lo + 1)
        ratio = (hi / lo) ** (1.0 / buckets)
        edges = [lo * ratio ** (i + 1) for i in range(buckets)]
        edges[-1] = float(hi)
        counts = [0] * buckets
        k = 0
        for key, c in nz:
            v = lowest(key)
            while k < buckets - 1 and v > edges[k]:
                k += 1
            counts[k] += c
        return [[round(e / 1000.0, 3), float(c)] for e, c in zip(edges, counts, strict=True)]

    def to_state(self) -> str:
        """HDR's V2 encoding (base64 of its base64 text: the format of earlier versions)."""
        if not self.count:
            return ""
        hdr = HdrHistogram(_LOW_US, _HIGH_US, _DIGITS, word_size=4)
        for k, c in self._h.buckets():
            hdr.record_value(lowest(k), c)
        return base64.b64encode(hdr.encode()).decode()

    @classmethod
    def from_state(cls, s: str) -> LatencyHistogram:
        h = cls()
        if s:
            try:
                hdr = HdrHistogram.decode(base64.b64decode(s))
                counts = hdr.counts[: hdr.counts_len]
                for i, c in enumerate(counts):
                    if c:
                        v = int(hdr.get_value_from_index(i))
                        if v > _HIGH_US:
                            raise IndexError(v)
                        h._h.record(v, int(c))
            except Exception as e:  # hdrh raises its own, zlib and struct errors
                raise ValueError(f"bad latency histogram: {type(e).__name__}") from None
        return h


@dataclass
class TimeSeries:
    """Per-second ``[count, sum_ms, max_ms]`` buckets keyed by epoch second."""

    buckets: dict[int, list[float]]

    @classmethod
    def new(cls) -> TimeSeries:
        return cls({})

    def record(self, ts_ns: int, latency_ns: int) -> None:
        sec = ts_ns // 1_000_000_000
        ms = latency_ns / 1e6
        b = self.buckets.get(sec)
        if b is None:
            if len(self.buckets) >= 86_400:
                return
            self.buckets[sec] = [1, ms, ms]
        else:
            b[0] += 1
            b[1] += ms
            if ms > b[2]:
                b[2] = ms

    def merge(self, other: TimeSeries) -> None:
        for sec, (n, s, m) in other.buckets.items():
            b = self.buckets.get(sec)
            if b is None:
                self.buckets[sec] = [n, s, m]
            else:
                b[0] += n
                b[1] += s
                b[2] = max(b[2], m)

    def points(self, start: int | None = None, max_points: int = 300) -> list[list[float]]:
        """``[[t_seconds_from_start, count, mean_ms, max_ms], ...]``, coarsened to
        ``max_points``."""
        if not self.buckets:
            return []
        secs = sorted(self.buckets)
        t0 = start if start is not None else secs[0]
        width = max(1, (secs[-1] - t0 + 1 + max_points - 1) // max_points)
        agg: dict[int, list[float]] = {}
        for s in secs:
            k = (s - t0) // width
            n, tot, mx = self.buckets[s]
            a = agg.setdefault(k, [0, 0.0, 0.0])
            a[0] += n
            a[1] += tot
            a[2] = max(a[2], mx)
        return [
            [k * width, a[0], round(a[1] / a[0], 3) if a[0] else 0.0, round(a[2], 3)]
            for k, a in sorted(agg.items())
        ]

    def to_state(self) -> dict[str, list[float]]:
        return {str(k): v for k, v in self.buckets.items()}

    @classmethod
    def from_state(cls, d: dict[str, list[float]]) -> TimeSeries:
        return cls({int(k): list(v) for k, v in d.items()})


P99_MIN_SAMPLES = 100


def latency_regression(
    reference: LatencyHistogram,
    replayed: LatencyHistogram,
    *,
    max_ratio: float,
    min_delta_ms: float,
    min_samples: int,
    confidence: float | None = None,
    seed: str = "",
) -> dict[str, Any]:
    """Tail-latency comparison: ``{"percentile", "reference_ms", "replayed_ms", "ratio",
    "delta_ms", "regressed", "enough_samples", "test", "p_value", "interval_ms",
    "confidence", "significant"}``.

    The p99 of fewer than 100 samples is in effect their maximum, so one scheduler hiccup
    would fail a release: below :data:`P99_MIN_SAMPLES` on either side the p90 is compared
    instead (and named in the result), which a real slowdown moves just as well.

    ``confidence`` (a same-run baseline copy is the reference): the difference must also be
    significant (module docstring); ``interval_ms`` is the bootstrap interval of replayed
    minus reference at the percentile, seeded by ``seed`` (deterministic), for reading. Without it, the
    thresholds alone decide (``test`` "threshold") and ``p_value`` is informative only.
    """
    n = min(reference.count, replayed.count)
    enough = n >= max(min_samples, 1)
    out: dict[str, Any] = {
        "percentile": 99,
        "reference_ms": None,
        "replayed_ms": None,
        "ratio": None,
        "delta_ms": None,
        "regressed": False,
        "enough_samples": False,
        "test": "threshold" if confidence is None else "mann-whitney+bootstrap",
        "p_value": None,
        "interval_ms": None,
        "confidence": confidence,
        "significant": None,
    }
    if not reference.count or not replayed.count:
        return out
    pct = 99 if n >= P99_MIN_SAMPLES else 90
    r = reference.percentile_ms(pct)
    c = replayed.percentile_ms(pct)
    ratio = c / r if r > 0 else None
    delta = round(c - r, 3)
    effect = delta >= min_delta_ms and (ratio is None or ratio >= max_ratio)
    rb = reference.buckets()
    cb = replayed.buckets()
    p_value, _auc = mann_whitney_greater(cb, rb)
    out.update(
        percentile=pct,
        reference_ms=r,
        replayed_ms=c,
        ratio=round(ratio, 3) if ratio is not None else None,
        delta_ms=delta,
        enough_samples=enough,
        p_value=float(f"{p_value:.3g}"),
    )
    if confidence is None:
        out["regressed"] = bool(enough and effect)
        return out
    significant = False
    if enough:
        lo, hi = bootstrap_percentile_delta(cb, rb, pct, confidence=confidence, seed=seed)
        out["interval_ms"] = [round(lo / 1000.0, 3), round(hi / 1000.0, 3)]
        significant = p_value < 1.0 - confidence
    out["significant"] = significant
    out["regressed"] = bool(enough and effect and significant)
    return out
