from __future__ import annotations

from replaygate.compare.latency import LatencyHistogram, TimeSeries, latency_regression


def hist(values_ms: list[float]) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values_ms:
        h.record_ns(int(v * 1e6))
    return h


def test_summary_and_merge_exact() -> None:
    a = hist([float(i) for i in range(1, 501)])
    b = hist([float(i) for i in range(501, 1001)])
    whole = hist([float(i) for i in range(1, 1001)])
    m = LatencyHistogram.from_state(a.to_state())
    m.merge(b)
    assert m.summary() == whole.summary()
    s = whole.summary()
    assert s["count"] == 1000 and 495 <= s["p50"] <= 505 and 985 <= s["p99"] <= 1000
    assert LatencyHistogram().summary() == {"count": 0}
    d = whole.distribution(10)
    assert len(d) == 10 and sum(c for _, c in d) == 1000


def test_extremes_clamped() -> None:
    h = hist([0.0, 1e9])
    assert h.count == 2


def test_regression_rules() -> None:
    ref = hist([10.0] * 30)
    slow = hist([40.0] * 30)
    r = latency_regression(ref, slow, max_ratio=1.5, min_delta_ms=20, min_samples=20)
    assert r["regressed"] and r["ratio"] > 3.9 and r["percentile"] == 90
    big = latency_regression(
        hist([10.0] * 200),
        hist([10.0] * 197 + [900.0] * 3),
        max_ratio=1.5,
        min_delta_ms=20,
        min_samples=20,
    )
    assert big["percentile"] == 99 and big["regressed"]
    few = latency_regression(
        ref, hist([10.0] * 28 + [900.0] * 2), max_ratio=1.5, min_delta_ms=20, min_samples=20
    )
    assert few["percentile"] == 90 and not few["regressed"]  # two outliers are not a regression
    assert not latency_regression(
        ref, hist([25.0] * 30), max_ratio=1.5, min_delta_ms=20, min_samples=20
    )["regressed"]
    assert not latency_regression(
        ref, hist([40.0] * 5), max_ratio=1.5, min_delta_ms=20, min_samples=20
    )["regressed"]
    assert (
        latency_regression(LatencyHistogram(), slow, max_ratio=1.5, min_delta_ms=20, min_samples=1)[
            "ratio"
        ]
        is None
    )


def test_timeseries() -> None:
    t = TimeSeries.new()
    for i in range(10):
        t.record(1_000_000_000 * (100 + i), 2_000_000 * (i + 1))
    pts = t.points()
    assert pts[0] == [0, 1, 2.0, 2.0] and pts[-1][0] == 9
    t2 = TimeSeries.from_state(t.to_state())
    t2.merge(t)
    assert t2.points()[0] == [0, 2, 2.0, 2.0]
    assert len(t.points(max_points=3)) <= 4


def test_fast_percentiles_match_hdrh() -> None:
    import random

    rnd = random.Random(3)
    h = hist([rnd.lognormvariate(3, 1) for _ in range(5000)])
    raw = h._h
    s = h.summary()
    for p in (50, 90, 99):
        assert s[f"p{p}"] == round(raw.get_value_at_percentile(p) / 1000.0, 3)
    assert abs(s["mean"] - raw.get_mean_value() / 1000.0) < 0.01
