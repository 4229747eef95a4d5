"""Small exact statistics for the gate: no scipy, deterministic, cheap on counts and histograms.

- :func:`fisher_greater`: one-sided Fisher exact test on two proportions ("does the candidate
  change this field more often than the baseline copy?"). Exact for any counts, so a field seen
  on 3 of 4 replays is judged as honestly as one seen on 3,000 of 4,000.
- :func:`mann_whitney_greater`: one-sided Mann-Whitney U ("are the candidate's latencies
  stochastically larger?") computed from two bucketed histograms in one merge pass, with the
  tie correction (HDR buckets are ties) and a normal approximation.
- :func:`bootstrap_percentile_delta`: a seeded bootstrap interval for the difference of one
  percentile (candidate minus reference). Each resample's order statistic is drawn directly
  (the k-th of n draws from F is F^-1 of a Beta(k, n+1-k) variate), so a resample costs one
  Beta variate and one bisection instead of n draws.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_left
from collections.abc import Sequence

__all__ = [
    "bootstrap_percentile_delta",
    "fisher_greater",
    "mann_whitney_greater",
    "percentile_rank",
]


def _lchoose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(a: int, n: int, b: int, m: int) -> float:
    """P-value of "``a`` of ``n`` is a larger share than ``b`` of ``m``": the probability,
    with both groups drawn from one population, that the first group holds ``a`` or more of
    the ``a + b`` successes (hypergeometric upper tail). 1.0 when there is nothing to test."""
    if n <= 0 or m <= 0 or a <= 0:
        return 1.0
    total = n + m
    k = a + b
    hi = min(n, k)
    if a > hi:
        return 0.0
    log_den = _lchoose(total, n)
    term = math.exp(_lchoose(k, a) + _lchoose(total - k, n - a) - log_den)
    p = term
    x = a
    while x < hi:
        # ratio of consecutive hypergeometric terms
        term *= (k - x) * (n - x) / ((x + 1) * (total - k - n + x + 1))
        p += term
        x += 1
        if term < p * 1e-15:
            break
    return min(1.0, p)


def mann_whitney_greater(
    cand: Sequence[tuple[int, int]], ref: Sequence[tuple[int, int]]
) -> tuple[float, float]:
    """``(p_value, auc)``: one-sided Mann-Whitney U test that ``cand`` values tend to be
    larger than ``ref`` values. Inputs are ``[(value, count), ...]`` sorted by value (histogram
    buckets; equal values are ties). ``auc`` is U / (n·m): 0.5 when neither is larger."""
    n = sum(c for _, c in cand)
    m = sum(c for _, c in ref)
    if n == 0 or m == 0:
        return 1.0, 0.5
    u = 0.0
    ties = 0.0
    below = 0  # reference values below the current candidate value
    i = j = 0
    while i < len(cand) or j < len(ref):
        v = min(cand[i][0] if i < len(cand) else math.inf, ref[j][0] if j < len(ref) else math.inf)
        cc = cand[i][1] if i < len(cand) and cand[i][0] == v else 0
        rc = ref[j][1] if j < len(ref) and ref[j][0] == v else 0
        u += cc * (below + 0.5 * rc)
        t = cc + rc
        ties += t * t * t - t
        below += rc
        if cc:
            i += 1
        if rc:
            j += 1
    nm = n * m
    total = n + m
    var = nm / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    if var <= 0:
        return 1.0, u / nm
    z = (u - nm / 2.0 - 0.5) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2.0)), u / nm


def percentile_rank(p: float, n: int) -> int:
    """The rank (1-based) of the ``p``-th percentile among ``n`` values (the histogram rule)."""
    return min(max(int(min(p, 100.0) * n / 100 + 0.5), 1), n)


def _quantile_sampler(
    buckets: Sequence[tuple[int, int]], p: float
) -> tuple[list[float], list[int], int, int]:
    n = sum(c for _, c in buckets)
    cum: list[float] = []
    run = 0
    for _, c in buckets:
        run += c
        cum.append(run / n)
    k = percentile_rank(p, n)
    return cum, [v for v, _ in buckets], k, n


def bootstrap_percentile_delta(
    cand: Sequence[tuple[int, int]],
    ref: Sequence[tuple[int, int]],
    p: float,
    *,
    confidence: float,
    resamples: int = 1000,
    seed: str = "",
) -> tuple[float, float]:
    """A central ``confidence`` interval ``(lo, hi)`` for percentile ``p`` of ``cand`` minus
    that of ``ref`` (values in the buckets' unit), by a bootstrap seeded from ``seed`` (the same
    inputs always give the same interval)."""
    rng = random.Random(zlib.crc32(seed.encode()))
    cc, cv, ck, cn = _quantile_sampler(cand, p)
    rc, rv, rk, rn = _quantile_sampler(ref, p)
    beta = rng.betavariate
    deltas = []
    for _ in range(resamples):
        xc = cv[min(bisect_left(cc, beta(ck, cn + 1 - ck)), len(cv) - 1)]
        xr = rv[min(bisect_left(rc, beta(rk, rn + 1 - rk)), len(rv) - 1)]
        deltas.append(xc - xr)
    deltas.sort()
    alpha = (1.0 - confidence) / 2.0
    lo = deltas[min(int(alpha * resamples), resamples - 1)]
    hi = deltas[min(int((1.0 - alpha) * resamples), resamples - 1)]
    return float(lo), float(hi)
