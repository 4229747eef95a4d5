from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.compare._significance import (
    bootstrap_percentile_delta,
    fisher_greater,
    mann_whitney_greater,
    percentile_rank,
)


def _fisher_brute(a: int, n: int, b: int, m: int) -> float:
    k = a + b
    den = math.comb(n + m, n)
    return sum(math.comb(k, x) * math.comb(n + m - k, n - x) for x in range(a, min(n, k) + 1)) / den


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.integers(1, 40), st.integers(0, 40), st.integers(1, 40))
def test_fisher_matches_the_hypergeometric_tail(a: int, n: int, b: int, m: int) -> None:
    a, b = min(a, n), min(b, m)
    p = fisher_greater(a, n, b, m)
    want = _fisher_brute(a, n, b, m) if a > 0 else 1.0
    assert math.isclose(p, want, rel_tol=1e-9, abs_tol=1e-12)


def test_fisher_known_values() -> None:
    assert math.isclose(fisher_greater(5, 5, 0, 5), 1 / 252)
    assert math.isclose(fisher_greater(3, 3, 1, 3), 0.2)
    assert fisher_greater(0, 10, 3, 10) == 1.0
    assert fisher_greater(3000, 3000, 0, 3000) < 1e-300 or fisher_greater(3000, 3000, 0, 3000) == 0


def _u_brute(c: list[int], r: list[int]) -> float:
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x, y in itertools.product(c, r))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 8), min_size=1, max_size=30),
    st.lists(st.integers(1, 8), min_size=1, max_size=30),
)
def test_mann_whitney_u_from_buckets(c: list[int], r: list[int]) -> None:
    def buckets(xs: list[int]) -> list[tuple[int, int]]:
        return sorted((v, xs.count(v)) for v in set(xs))

    p, auc = mann_whitney_greater(buckets(c), buckets(r))
    assert math.isclose(auc, _u_brute(c, r) / (len(c) * len(r)))
    assert 0.0 <= p <= 1.0


def test_mann_whitney_separation() -> None:
    p, auc = mann_whitney_greater([(20, 30)], [(10, 30)])
    assert auc == 1.0 and p < 1e-10
    p, auc = mann_whitney_greater([(10, 30)], [(10, 30)])
    assert auc == 0.5 and p == 1.0


def test_bootstrap_interval_is_seeded() -> None:
    cand = [(v, 3) for v in range(20, 60)]
    ref = [(v, 3) for v in range(10, 50)]
    a = bootstrap_percentile_delta(cand, ref, 90, confidence=0.99, seed="GET /a")
    assert a == bootstrap_percentile_delta(cand, ref, 90, confidence=0.99, seed="GET /a")
    lo, hi = a
    assert lo <= 10 <= hi and lo > 0
    assert percentile_rank(99, 100) == 99 and percentile_rank(50, 1) == 1
