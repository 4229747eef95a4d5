"""Noise: differences that are not regressions, and why each one was excluded.

Three sources, checked in this order, each giving the reason shown in reports:

1. **explicit rules** (``[compare] ignore``) and volatile headers (Date, ETag, trace ids...);
2. **learned volatility** (no second copy needed): byte-identical original requests (volatile
   request headers such as trace ids aside) whose original responses differ in a field show
   that the field changes by itself. A field differing in at least ``learn_min_rate`` of at
   least ``learn_min_pairs`` such pairs is volatile; only the kinds of difference seen while
   learning are excused (a volatile timestamp that *disappears* is still a regression);
3. **Diffy's method, tested**: the same requests replayed to a second copy of the baseline.
   A field counts only where the candidate differs from the original *significantly* more
   often than the baseline copy does: a one-sided Fisher exact test of the two change rates
   at ``noise_confidence`` (99%: p < 0.01), and by at least the effect sizes
   ``noise_absolute`` (percentage points) and ``noise_relative``. A fixed margin is crossed by
   chance on the second run of an identical copy; an exact test on the counts is not (at the
   stated rate), while a path that changes in the candidate and stays put in the baseline
   copy is significant as soon as there are a handful of replays (5 of 5 vs 0 of 5: p=0.004).
   When the baseline copy never changed the field and there are so few replays that even
   "changed every time in the candidate, never in the baseline" would not be significant,
   the field borrows the baseline copy's change rate of the same field on other endpoints
   (page layouts and middleware are shared); without one it is *unjudged*: neither noise nor
   a regression, counted apart with its own gate threshold (``max_unjudged_rate``).

Without a second copy, endpoints with too few repeated requests to learn from borrow what was
learned on other endpoints (``learn_across_endpoints``): request ids and timestamps added by
shared middleware are volatile everywhere.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..errors import ConfigError
from ..model import Request, Response
from ._config import DEFAULT_VOLATILE_HEADERS, CompareConfig
from ._glob import glob_match
from ._significance import fisher_greater
from .diff import ResponseDiffer

__all__ = [
    "IgnoreRule",
    "Judgement",
    "NoiseModel",
    "VolatilityLearner",
    "normalize_field",
    "request_key",
]

DiffKey = tuple[str, str]

VOLATILE_REQUEST_HEADERS = frozenset(
    (
        "date",
        "x-request-id",
        "x-correlation-id",
        "traceparent",
        "tracestate",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-amzn-trace-id",
        "x-cloud-trace-context",
        "uber-trace-id",
        "x-forwarded-for",
        "x-real-ip",
        "x-forwarded-port",
    )
)


def request_key(req: Request) -> int:
    """Identity of a request for learning: method, target, body and non-volatile headers."""
    hs = tuple((k.lower(), v) for k, v in req.headers if k.lower() not in VOLATILE_REQUEST_HEADERS)
    return hash((req.start_line[0] if req.start_line else "", req.target, hs, bytes(req.body_raw)))


def normalize_field(p: str) -> str:
    """User spelling -> field key: ``$.a.b`` / ``a.b`` -> ``body:$.a.b``; ``header:X-A`` ->
    ``header:x-a``; ``[3]`` -> ``[*]``."""
    import re

    p = p.strip()
    if p in ("status", "body:text", "body:binary", "body:kind") or p == "*":
        return p
    if p.lower().startswith("header:"):
        return "header:" + p[7:].strip().lower()
    if p.startswith("body:"):
        p = p[5:]
        if p.startswith(("/", "line[", "csv")):  # HTML, text and CSV paths are kept as written
            return "body:" + p
    if not p.startswith("$"):
        p = "$." + p.lstrip(".")
    return "body:" + re.sub(r"\[\d+\]", "[*]", p)


_DEFAULT_SET = frozenset(DEFAULT_VOLATILE_HEADERS)


class IgnoreRule:
    """``field`` pattern, optionally only for endpoints matching ``endpoint``."""

    __slots__ = ("endpoint", "field", "text")

    def __init__(self, spec: str | Mapping[str, Any]) -> None:
        if isinstance(spec, str):
            self.endpoint: str | None = None
            self.field = normalize_field(spec)
            self.text = spec
        elif isinstance(spec, Mapping) and isinstance(spec.get("field"), str):
            ep = spec.get("endpoint")
            if ep is not None and not isinstance(ep, str):
                raise ConfigError(f"[compare] ignore: endpoint must be a string in {dict(spec)!r}")
            self.endpoint = ep
            self.field = normalize_field(str(spec["field"]))
            self.text = f"{ep} {spec['field']}" if ep else str(spec["field"])
        else:
            raise ConfigError(
                f"[compare] ignore: cannot read {spec!r} (a field pattern or "
                "{endpoint = ..., field = ...})"
            )

    def matches(self, endpoint: str, field: str) -> bool:
        if self.endpoint is not None and not glob_match(endpoint, self.endpoint):
            return False
        return glob_match(field, self.field) or (
            # a rule on an object path also covers everything below it
            field.startswith((self.field + ".", self.field + "[", self.field + "/"))
        )


class VolatilityLearner:
    """Learns volatile fields from the original traffic (see module docstring, method 2)."""

    def __init__(self, differ: ResponseDiffer, window: int) -> None:
        self._differ = differ
        self._window = window
        self._seen: OrderedDict[int, Response] = OrderedDict()
        self.pairs: Counter[str] = Counter()
        self.fields: dict[str, Counter[DiffKey]] = {}

    def observe(self, endpoint: str, req: Request, resp: Response) -> None:
        if self._window <= 0:
            return
        k = request_key(req)
        prev = self._seen.pop(k, None)
        self._seen[k] = resp
        if prev is resp:  # the same captured response seen again (not a new observation)
            return
        if prev is None:
            if len(self._seen) > self._window:
                self._seen.popitem(last=False)
            return
        self.pairs[endpoint] += 1
        if prev.raw == resp.raw:
            return
        keys = {d.key for d in self._differ.diff(prev, resp, grpc_method=req.path)}
        if keys:
            c = self.fields.setdefault(endpoint, Counter())
            c.update(keys)

    def merge(self, other: VolatilityLearner) -> None:
        self.pairs.update(other.pairs)
        for ep, c in other.fields.items():
            self.fields.setdefault(ep, Counter()).update(c)


class Judgement(NamedTuple):
    """What the noise model says about one difference key on one endpoint."""

    noise: str | None  # why it is noise; None: not noise
    p_value: float | None = None  # the baseline test's, when one ran
    unjudged: str | None = None  # not noise, yet too little evidence to call it a regression


class NoiseModel:
    """Decides, per endpoint and difference key, whether it is noise and says why."""

    def __init__(self, config: CompareConfig) -> None:
        self.config = config
        self.rules = [IgnoreRule(r) for r in config.ignore]
        self.volatile_headers = config.all_volatile_headers
        self.elsewhere: dict[DiffKey, tuple[str, int, int]] = {}
        # key -> (baseline replays that changed it, baseline replays, endpoints) pooled over
        # endpoints with enough baseline replays
        self.base_elsewhere: dict[DiffKey, tuple[int, int, int]] = {}
        # Benjamini-Hochberg over the run's baseline tests (set_tests): None = test alone
        self._cutoff: float | None = None
        self._tests = 0
        self._fisher: dict[tuple[int, int, int, int], float] = {}

    def explicit(self, endpoint: str, field: str) -> str | None:
        for r in self.rules:
            if r.matches(endpoint, field):
                return f"ignore rule {r.text!r}"
        if field.startswith("header:") and field[7:] in self.volatile_headers:
            return (
                "volatile header (default list)"
                if field[7:] in _DEFAULT_SET
                else ("volatile header (configured)")
            )
        return None

    def explain(self, endpoint: str, key: DiffKey, **evidence: Any) -> str | None:
        """Why ``key`` is noise on ``endpoint``, or None when it is a real difference
        (``evidence``: the keywords of :meth:`classify`)."""
        return self.classify(endpoint, key, **evidence).noise

    def classify(
        self,
        endpoint: str,
        key: DiffKey,
        *,
        cand: int,
        n: int,
        base: int,
        base_n: int,
        learned: Counter[DiffKey] | None,
        pairs: int,
    ) -> Judgement:
        """Noise (with why), a real difference, or too little evidence to tell."""
        field, _kind = key
        why = self.explicit(endpoint, field)
        if why:
            return Judgement(why)
        cfg = self.config
        if learned is not None and pairs >= cfg.learn_min_pairs:
            seen = learned.get(key, 0)
            if seen >= cfg.learn_min_pairs and seen / pairs >= cfg.learn_min_rate:
                return Judgement(
                    f"learned: differed in {seen} of {pairs} pairs of identical original requests"
                )
        if base_n > 0 and n > 0:
            return self._baseline_test(key, cand, n, base, base_n)
        if pairs < cfg.learn_min_pairs and cfg.learn_across_endpoints:
            other = self.elsewhere.get(key)
            if other is not None:
                ep, seen, total = other
                return Judgement(
                    f"learned on {ep}: differed in {seen} of {total} pairs of identical original "
                    "requests (too few repeated requests here to learn)"
                )
        return Judgement(None)

    def _baseline_test(self, key: DiffKey, cand: int, n: int, base: int, base_n: int) -> Judgement:
        cfg = self.config
        alpha = 1.0 - cfg.noise_confidence
        where = ""
        if cand == 0:
            return Judgement("differs only in baseline replays")
        if base == 0 and fisher_greater(n, n, 0, base_n) >= alpha:
            # even "changed in every candidate replay, in no baseline replay" would not be
            # significant: too few replays to test on this endpoint
            pooled = self.base_elsewhere.get(key)
            if pooled is None:
                return Judgement(
                    None,
                    unjudged=(
                        f"changed in {cand} of {n} candidate replays and none of {base_n} "
                        "baseline replays: too few to tell a regression from noise at "
                        f"noise_confidence {cfg.noise_confidence:.3g}"
                    ),
                )
            base, base_n, eps = pooled
            where = f" on {eps} other endpoint{'s' if eps > 1 else ''}"
        p = self._fisher_p(cand, n, base, base_n)
        c = cand / n
        b = base / base_n
        if p < alpha if self._cutoff is None else p <= self._cutoff:
            if c - b >= cfg.noise_absolute and c >= b * (1 + cfg.noise_relative):
                return Judgement(None, p)
            return Judgement(
                f"baseline: differs in {_rate(b)} of {base_n} baseline replays{where} vs "
                f"{_rate(c)} of {n} candidate replays: significant (p={_p(p)}) but smaller "
                f"than noise_absolute {_rate(cfg.noise_absolute)} / noise_relative "
                f"{cfg.noise_relative:g}",
                p,
            )
        return Judgement(
            f"baseline: differs in {_rate(b)} of {base_n} baseline replays{where} vs {_rate(c)} "
            f"of {n} candidate replays: not significantly more (one-sided Fisher p={_p(p)}; "
            f"noise_confidence {cfg.noise_confidence:.3g}"
            + (
                f" over {self._tests} fields tested, Benjamini-Hochberg)"
                if self._tests > 1
                else f": needs < {_p(alpha)})"
            ),
            p,
        )

    def set_tests(self, p_values: list[float]) -> None:
        """Decide significance over all the baseline tests of a run (Benjamini-Hochberg at
        ``1 - noise_confidence``): a run tests hundreds of fields, and each alone at 0.1% would
        find a few by chance. With no real difference anywhere (an identical copy) the chance
        that *any* field is called a regression stays at 0.1%; real differences, whose
        p-values are tiny, are found as before."""
        alpha = 1.0 - self.config.noise_confidence
        m = len(p_values)
        cutoff = -1.0  # nothing significant
        for k, p in enumerate(sorted(p_values), 1):
            if p <= k / m * alpha:
                cutoff = p
        self._cutoff = cutoff
        self._tests = m

    def _fisher_p(self, a: int, n: int, b: int, m: int) -> float:
        k = (a, n, b, m)
        p = self._fisher.get(k)
        if p is None:
            p = self._fisher[k] = fisher_greater(a, n, b, m)
        return p

    def learn_baseline_elsewhere(
        self, per_endpoint: Mapping[str, tuple[Counter[DiffKey], int]]
    ) -> None:
        """Pool the baseline copy's change counts per key over the endpoints where it changed
        (``{endpoint: (base_diffs, base_compared)}``), for endpoints too small to test on
        their own."""
        pooled: dict[DiffKey, list[int]] = {}
        for diffs, m in per_endpoint.values():
            for key, k in diffs.items():
                if k:
                    pooled.setdefault(key, [0, 0, 0])
                    pooled[key][0] += k
                    pooled[key][1] += m
                    pooled[key][2] += 1
        self.base_elsewhere = {k: (v[0], v[1], v[2]) for k, v in pooled.items()}

    def learn_elsewhere(self, pairs: Counter[str], fields: dict[str, Counter[DiffKey]]) -> None:
        """Volatile fields learned on endpoints with enough evidence, for endpoints without."""
        cfg = self.config
        best: dict[DiffKey, tuple[str, int, int]] = {}
        for ep, c in fields.items():
            n = pairs.get(ep, 0)
            if n < cfg.learn_min_pairs:
                continue
            for key, seen in c.items():
                ok = seen >= cfg.learn_min_pairs and seen / n >= cfg.learn_min_rate
                if ok and (key not in best or n > best[key][2]):
                    best[key] = (ep, seen, n)
        self.elsewhere = best


def _rate(x: float) -> str:
    return f"{x:.0%}" if x == 0 or x >= 0.01 else f"{x:.2%}"


def _p(p: float) -> str:
    return f"{p:.2g}"
