"""The one latency histogram of replaygate (replay statistics and compare's per-endpoint latency).

Log-linear: values below 256 have a bucket each, every power of two above is split into 128
buckets (< 0.8% error). That is exactly the layout of an HDR histogram with 2 significant
digits and a lowest value of 1, so :mod:`replaygate.compare.latency` stores it in HDR's
encoding (readable by any HDR tool and by older replaygate versions). Recording is one dict
update, merging adds counts (exact across worker processes), and memory is bounded whatever
the run length. Values are plain non-negative integers; callers record microseconds.

A bucket is named by its key: the value itself below 256, else ``(shift << 16) | (v >> shift)``
where ``shift = v.bit_length() - 8``; :func:`lowest`, :func:`highest` and :func:`width` give a
bucket's bounds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["Histogram", "bucket_key", "highest", "lowest", "width"]


def bucket_key(v: int) -> int:
    """The bucket of a non-negative value."""
    if v >= 256:
        s = v.bit_length() - 8
        return (s << 16) | (v >> s)
    return v


def lowest(key: int) -> int:
    """The smallest value in the bucket ``key``."""
    return key if key < 65536 else (key & 0xFFFF) << (key >> 16)


def width(key: int) -> int:
    """How many values the bucket ``key`` holds."""
    return 1 if key < 65536 else 1 << (key >> 16)


def highest(key: int) -> int:
    """The largest value in the bucket ``key``."""
    return lowest(key) + width(key) - 1


class Histogram:
    """Log-linear histogram of non-negative integers (we record microseconds)."""

    __slots__ = ("count", "counts", "max")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.max = 0

    def record(self, v: int, n: int = 1) -> None:
        """Add ``n`` occurrences of ``v`` (negative values count as 0)."""
        if v < 0:
            v = 0
        if v >= 256:
            s = v.bit_length() - 8
            key = (s << 16) | (v >> s)
        else:
            key = v
        c = self.counts
        c[key] = c.get(key, 0) + n
        self.count += n
        if v > self.max:
            self.max = v

    def record_all(self, values: Iterable[int]) -> None:
        """:meth:`record` each of ``values``: one call for many (the replay's lean path keeps
        its latencies in a list and hands them over in bulk)."""
        c = self.counts
        get = c.get
        n = 0
        top = self.max
        for v in values:
            if v >= 256:
                s = v.bit_length() - 8
                key = (s << 16) | (v >> s)
            else:
                if v < 0:
                    v = 0
                key = v
            c[key] = get(key, 0) + 1
            n += 1
            if v > top:
                top = v
        self.count += n
        self.max = top

    @staticmethod
    def _value(key: int) -> float:
        """The middle of a bucket: what :meth:`percentile` reports for it."""
        if key < 65536:
            return float(key)
        s = key >> 16
        return ((key & 0xFFFF) << s) + ((1 << s) - 1) / 2

    def buckets(self) -> list[tuple[int, int]]:
        """``[(key, count), ...]`` of the recorded buckets, in value order."""
        return sorted(self.counts.items())

    def percentile(self, p: float) -> float:
        """Value at percentile ``p`` (0..100): the middle of the bucket holding the
        ``ceil(p% * count)``-th value, never above the largest value recorded; 0 when empty."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return min(self._value(key), float(self.max))
        return float(self.max)

    def merge(self, other: Histogram) -> None:
        for k, n in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + n
        self.count += other.count
        self.max = max(self.max, other.max)

    def to_dict(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "max": self.max}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Histogram:
        h = cls()
        h.counts = {int(k): int(v) for k, v in d.get("counts", {}).items()}
        h.count = sum(h.counts.values())
        h.max = int(d.get("max", 0))
        return h
