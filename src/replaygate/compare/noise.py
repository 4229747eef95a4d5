"""Noise: differences that are not regressions, and why each one was excluded.

Three sources, checked in this order, each giving the reason shown in reports:

1. **explicit rules** (``[compare] ignore``) and volatile headers (Date, ETag, trace ids...);
2. **learned volatility** (no second copy needed): byte-identical original requests (volatile
   request headers such as trace ids aside) whose original responses differ in a field show
   that the field changes by itself. A field differing in at least ``learn_min_rate`` of at
   least ``learn_min_pairs`` such pairs is volatile; only the kinds of difference seen while
   learning are excused (a volatile timestamp that *disappears* is still a regression);
3. **Diffy's method**: the same requests replayed to a second copy of the baseline. A field
   counts only where the candidate differs from the original clearly more often than the
   baseline copy does: ``cand_rate - base_rate >= noise_absolute`` and
   ``cand_rate >= base_rate * (1 + noise_relative)``. A field the baseline never showed is
   never noise.

Without a second copy, endpoints with too few repeated requests to learn from borrow what was
learned on other endpoints (``learn_across_endpoints``): request ids and timestamps added by
shared middleware are volatile everywhere.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..model import Request, Response
from ._config import DEFAULT_VOLATILE_HEADERS, CompareConfig
from ._glob import glob_match
from .diff import ResponseDiffer

__all__ = ["IgnoreRule", "NoiseModel", "VolatilityLearner", "normalize_field", "request_key"]

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
        keys = {d.key for d in self._differ.diff(prev, resp)}
        if keys:
            c = self.fields.setdefault(endpoint, Counter())
            c.update(keys)

    def merge(self, other: VolatilityLearner) -> None:
        self.pairs.update(other.pairs)
        for ep, c in other.fields.items():
            self.fields.setdefault(ep, Counter()).update(c)


class NoiseModel:
    """Decides, per endpoint and difference key, whether it is noise and says why."""

    def __init__(self, config: CompareConfig) -> None:
        self.config = config
        self.rules = [IgnoreRule(r) for r in config.ignore]
        self.volatile_headers = config.all_volatile_headers
        self.elsewhere: dict[DiffKey, tuple[str, int, int]] = {}

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

    def explain(
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
    ) -> str | None:
        """Why ``key`` is noise on ``endpoint``, or None when it is a real difference."""
        field, _kind = key
        why = self.explicit(endpoint, field)
        if why:
            return why
        cfg = self.config
        if learned is not None and pairs >= cfg.learn_min_pairs:
            seen = learned.get(key, 0)
            if seen >= cfg.learn_min_pairs and seen / pairs >= cfg.learn_min_rate:
                return (
                    f"learned: differed in {seen} of {pairs} pairs of identical original requests"
                )
        if base_n > 0 and n > 0 and base > 0:
            c = cand / n
            b = base / base_n
            if not (c - b >= cfg.noise_absolute and c >= b * (1 + cfg.noise_relative)):
                return (
                    f"baseline: differs in {b:.0%} of baseline replays vs {c:.0%} of candidate "
                    "replays (not clearly more)"
                )
            return None
        if pairs < cfg.learn_min_pairs and cfg.learn_across_endpoints:
            other = self.elsewhere.get(key)
            if other is not None:
                ep, seen, total = other
                return (
                    f"learned on {ep}: differed in {seen} of {total} pairs of identical original "
                    "requests (too few repeated requests here to learn)"
                )
        return None

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
