"""The one histogram: its buckets are HDR's (2 significant digits), so compare's state stays
HDR's encoding and its figures those of an HDR histogram; replay's percentiles keep their rule."""

from __future__ import annotations

import base64
import math

from hdrh.histogram import HdrHistogram
from hypothesis import given
from hypothesis import strategies as st

from replaygate._histogram import Histogram, bucket_key, highest, lowest, width
from replaygate.compare.latency import LatencyHistogram
from replaygate.replay import Histogram as ReplayHistogram

_VALUES = st.integers(min_value=1, max_value=3_600_000_000)


def _hdr() -> HdrHistogram:
    return HdrHistogram(1, 3_600_000_000, 2, word_size=4)


@given(_VALUES)
def test_buckets_are_hdr_buckets(v: int) -> None:
    h = _hdr()
    k = bucket_key(v)
    assert lowest(k) == h.get_lowest_equivalent_value(v)
    assert highest(k) == h.get_highest_equivalent_value(v)
    assert lowest(k) + (width(k) >> 1) == h._hdr_median_equiv_value(v)
    assert lowest(k) <= v <= highest(k)


@given(st.lists(_VALUES, min_size=1, max_size=300))
def test_latency_histogram_reads_and_writes_hdr(values_us: list[int]) -> None:
    hdr = _hdr()
    ours = LatencyHistogram()
    for v in values_us:
        hdr.record_value(v)
        ours.record_ns(v * 1000)
    assert ours.to_state() == base64.b64encode(hdr.encode()).decode()
    back = LatencyHistogram.from_state(ours.to_state())
    assert back.summary() == ours.summary()
    assert back.buckets() == ours.buckets()
    s = ours.summary()
    assert s["max"] == round(hdr.get_max_value() / 1000, 3)
    assert s["mean"] == round(hdr.get_mean_value() / 1000, 3)


@given(st.lists(st.integers(min_value=-5, max_value=10**10), max_size=200), st.floats(0, 100))
def test_replay_percentile_is_bucket_middle_capped_at_max(values: list[int], p: float) -> None:
    h = ReplayHistogram()
    for v in values:
        h.record(v)
    assert ReplayHistogram is Histogram
    got = h.percentile(p)
    if not values:
        assert got == 0
        return
    assert got <= h.max == max(0, *values)
    ranked = sorted(max(v, 0) for v in values)
    exact = ranked[max(1, math.ceil(p / 100 * len(values))) - 1]
    k = bucket_key(int(exact))
    assert lowest(k) <= got <= highest(k) or got == h.max


def test_merge_adds_counts() -> None:
    a, b = Histogram(), Histogram()
    a.record(5)
    b.record(5, 3)
    b.record(10_000)
    a.merge(b)
    assert a.count == 5 and a.counts[5] == 4 and a.max == 10_000
    assert Histogram.from_dict(a.to_dict()).to_dict() == a.to_dict()
