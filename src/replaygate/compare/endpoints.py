"""Endpoint grouping: which requests are "the same endpoint" for counting and judging.

Numbers are kept per endpoint, so ``/users/123`` and ``/users/456`` must land in one bucket.
Four ways, first match wins:

1. a header that names the endpoint (``endpoint_header = "X-Endpoint"``), as API gateways and
   routers often add one;
2. user rules such as ``"GET /api/users/:id"``, ``"/files/**"`` or ``"* /v1/{kind}/list"``;
3. a route list (``--routes FILE`` / ``[compare] routes``): an OpenAPI 3 document (JSON or YAML
   ``paths``) or a text file of patterns, one a line (``GET /users/{id}``); concrete routes are
   tried before templated ones, as OpenAPI prescribes;
4. automatic templates: each path segment that looks like an identifier is replaced by its
   kind: ``{int}``, ``{uuid}``, ``{hex}``, ``{hash}``, ``{date}``, ``{email}``, ``{token}``,
   also before an extension (``/db/orders/982.json`` -> ``/db/orders/{int}.json``). A
   cardinality guard then folds a path position that takes more than ``max_segment_values``
   distinct values under the same prefix (blog slugs, user names) to ``{slug}`` (when they are
   all slugs) or ``{var}``.

A rule that matched no request is reported (``unmatched_rules``): a typo in a pattern would
otherwise silently leave its endpoints to automatic templates.

The query string never takes part (it is too varied to group by). Templating is cached per
(method, path), because real traffic repeats paths a lot.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from ..errors import ConfigError
from ..model import Request
from ._routes import load_routes

__all__ = [
    "EndpointRule",
    "EndpointTemplater",
    "fold_endpoints",
    "load_routes",
    "template_path",
    "template_segment",
]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INT = re.compile(r"^-?\d+$")
_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$|^\d{8}$"
)
_EMAIL = re.compile(r"^[^@/\s]+@[^@/\s]+\.[A-Za-z]{2,}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-+=.~]+$")
_EMBEDDED = re.compile(
    r"(?<=[-_.~])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,128})(?=[-_.~]|$)"
)
_HASH_LENGTHS = frozenset((32, 40, 56, 64, 96, 128))
_WORDY = re.compile(r"^[A-Za-z]+(?:[-_.][A-Za-z]+)*(?:[-_.]\d{1,4})?$")
_EXT = re.compile(r"^(.+)\.([A-Za-z][A-Za-z0-9]{0,5})$")
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)+$")


def template_segment(seg: str) -> str:
    """The placeholder for one path segment, or the segment itself when it is a word."""
    if not seg:
        return seg
    seg_dec = unquote(seg) if "%" in seg else seg
    if _INT.match(seg_dec):
        return (
            "{date}"
            if len(seg_dec) == 8 and _DATE.match(seg_dec) and seg_dec[:2] in ("19", "20")
            else "{int}"
        )
    if _UUID.match(seg_dec):
        return "{uuid}"
    if seg_dec[:1].isdigit() and _DATE.match(seg_dec):
        return "{date}"
    if "@" in seg_dec and _EMAIL.match(seg_dec):
        return "{email}"
    n = len(seg_dec)
    if n >= 8 and _HEX.match(seg_dec) and any(c.isdigit() for c in seg_dec):
        if n in _HASH_LENGTHS:
            return "{hash}"
        return "{hex}"
    if "." in seg_dec:
        # an id before an extension: 982.json -> {int}.json, <uuid>.csv -> {uuid}.csv
        m = _EXT.match(seg_dec)
        if m is not None:
            base = template_segment(m.group(1))
            if base != m.group(1) and base.startswith("{") and base.endswith("}"):
                return base + "." + m.group(2)
    if "-" in seg_dec or "_" in seg_dec or "." in seg_dec:
        # fingerprinted assets and ids inside names: app-3f2a…e9.js -> app-{hash}.js
        emb = _EMBEDDED.sub(_embedded_kind, seg_dec)
        if emb != seg_dec:
            return emb
    if (
        n >= 16
        and _TOKEN.match(seg_dec)
        and (_case_flips(seg_dec) if _WORDY.match(seg_dec) else _looks_random(seg_dec))
    ):
        return "{token}"
    return seg


def _embedded_kind(m: re.Match[str]) -> str:
    t = m.group(0)
    if "-" in t:
        return "{uuid}"
    if not any(c.isdigit() for c in t):
        return t
    return "{hash}" if len(t) in _HASH_LENGTHS else "{hex}"


def _case_flips(s: str) -> bool:
    """Digit-less base64 changes case all along, unlike CamelCase words."""
    flips = sum(1 for a, b in itertools.pairwise(s) if a.isupper() != b.isupper())
    return flips >= len(s) // 3


def _looks_random(s: str) -> bool:
    """Base64-ish tokens mix digits and letters (or cases); slugs are words joined by dashes."""
    digits = sum(c.isdigit() for c in s)
    upper = sum(c.isupper() for c in s)
    lower = sum(c.islower() for c in s)
    if digits and upper and lower:
        return True
    if not digits and upper and lower:
        return _case_flips(s)

    # lowercase/uppercase-only ids: many letter<->digit switches
    switches = sum(1 for a, b in itertools.pairwise(s) if a.isdigit() != b.isdigit())
    return digits >= 3 and switches >= 4


@lru_cache(maxsize=65536)
def template_path(path: str) -> str:
    """``/users/123/orders/9f8e...`` -> ``/users/{int}/orders/{uuid}``."""
    if not path:
        return "/"
    return "/".join(template_segment(s) for s in path.split("/"))


_PARAM = re.compile(r"^(?::[A-Za-z_][\w]*|\{[^/{}]+\}|\*)$")
_INNER_PARAM = re.compile(r"\{[^/{}]+\}")

Compiled = tuple[str | None, re.Pattern[str], str, bool]


@dataclass(frozen=True)
class EndpointRule:
    """A user rule: ``[METHOD ]PATH`` where ``:name``, ``{name}`` and ``*`` match one segment
    (``{name}`` also inside one: ``{id}.json``) and a final ``**`` matches the rest. ``name``
    is what the endpoint is called in reports (default: the pattern itself, with the method)."""

    pattern: str
    name: str | None = None

    def compile(self) -> Compiled:
        text = self.pattern.strip()
        method: str | None = None
        path = text
        if " " in text:
            method, _, path = text.partition(" ")
            method = method.strip().upper()
            path = path.strip()
            if method == "*":
                method = None
        if not path.startswith("/"):
            raise ConfigError(
                f"[compare] endpoints: rule {self.pattern!r} must have a path starting with /"
            )
        parts: list[str] = []
        segs = path.split("/")
        for i, seg in enumerate(segs):
            if seg == "**" and i == len(segs) - 1:
                parts.append(".*")
            elif _PARAM.match(seg):
                parts.append("[^/]+")
            elif "{" in seg:
                bits = _INNER_PARAM.split(seg)
                parts.append("[^/]+?".join(re.escape(b) for b in bits))
            else:
                parts.append(re.escape(seg).replace(r"\*", "[^/]*"))
        rx = re.compile("^" + "/".join(parts) + "/?$")
        name = self.name or (f"{method} {path}" if method else path)
        return method, rx, name, self.name is None and method is None

    @property
    def specificity(self) -> tuple[int, int]:
        """Sort key: concrete routes before templated ones (``/users/me`` before
        ``/users/{id}``), longer before shorter."""
        path = self.pattern.strip().rpartition(" ")[2]
        segs = path.split("/")
        params = sum(1 for x in segs if _PARAM.match(x) or "{" in x or x == "**")
        return (params, -len(segs))


def _rule(r: str | Mapping[str, Any] | EndpointRule, what: str) -> EndpointRule:
    if isinstance(r, EndpointRule):
        return r
    if isinstance(r, str):
        return EndpointRule(r)
    if isinstance(r, Mapping) and isinstance(r.get("pattern"), str):
        return EndpointRule(str(r["pattern"]), r.get("name"))
    raise ConfigError(
        f"[compare] {what}: cannot read rule {r!r} (a string or {{pattern=..., name=...}})"
    )


class EndpointTemplater:
    """Maps a request to its endpoint name (``"GET /users/{int}"``)."""

    def __init__(
        self,
        rules: Iterable[str | Mapping[str, Any] | EndpointRule] = (),
        header: str | None = None,
        routes: Iterable[EndpointRule] = (),
        max_segment_values: int = 0,
    ) -> None:
        self.rules = [_rule(r, "endpoints") for r in rules]
        self._rules: list[Compiled] = [r.compile() for r in self.rules]
        self.hits = [0] * len(self._rules)
        ordered = sorted(routes, key=lambda r: r.specificity)
        self._routes: list[Compiled] = [r.compile() for r in ordered]
        self._header = header
        self._cache: dict[tuple[str, str], str] = {}
        # cardinality guard: (method, folded prefix) -> distinct values at the next position
        self._limit = max_segment_values
        self._values: dict[tuple[str, tuple[str, ...]], set[str]] = {}
        self._folded: set[tuple[str, tuple[str, ...]]] = set()

    def endpoint(self, req: Request) -> str:
        method = req.method.upper() or "?"
        if self._header:
            v = req.header(self._header)
            if v:
                return v if " " in v else f"{method} {v}"
        path = req.path
        key = (method, path)
        hit = self._cache.get(key)
        if hit is not None:
            if hit[0] == "\x00":  # automatic template: the guard may have folded it since
                return self._fold(method, hit[1:], learn=False)
            return hit
        name = self._match(method, path)
        if name is None:
            tpl = template_path(path)
            if len(self._cache) < 100_000:
                self._cache[key] = "\x00" + tpl
            return self._fold(method, tpl, learn=True)
        if len(self._cache) < 100_000:
            self._cache[key] = name
        return name

    def _match(self, method: str, path: str) -> str | None:
        for i, (m, rx, name, add_method) in enumerate(self._rules):
            if (m is None or m == method) and rx.match(path):
                self.hits[i] += 1
                return f"{method} {name}" if add_method else name
        for m, rx, name, add_method in self._routes:
            if (m is None or m == method) and rx.match(path):
                return f"{method} {name}" if add_method else name
        return None

    def _fold(self, method: str, tpl: str, *, learn: bool) -> str:
        if self._limit <= 0:
            return f"{method} {tpl}"
        segs = tpl.split("/")
        for i in range(1, len(segs)):
            if not segs[i]:
                continue
            k = (method, tuple(segs[:i]))
            if k in self._folded:
                segs[i] = "{var}"
                continue
            if learn and (k in self._values or len(self._values) < 100_000):
                # values that differ only in digits (issue1, issue2...) count once here:
                # fold_endpoints names them issue{int} when the run is judged
                vals = self._values.setdefault(k, set())
                vals.add(_shape(segs[i]))
                if len(vals) > self._limit:
                    self._folded.add(k)
                    del self._values[k]
                    segs[i] = "{var}"
        return f"{method} {'/'.join(segs)}"

    def unmatched_rules(self) -> list[str]:
        """Config rules that matched no request (most likely a typo in the pattern)."""
        return [r.pattern for r, n in zip(self.rules, self.hits, strict=True) if n == 0]

    def is_automatic(self, name: str) -> bool:
        """Whether an endpoint name came from automatic templates (not a rule or a route)."""
        method, _, path = name.partition(" ")
        if not path.startswith("/"):
            return False
        for m, _rx, rname, add_method in (*self._rules, *self._routes):
            if (f"{method} {rname}" if add_method else rname) == name and (m in (None, method)):
                return False
        return True


def fold_endpoints(names: Iterable[str], limit: int, automatic: Any = None) -> dict[str, str]:
    """The cardinality guard over finished endpoint names (names made before a fold began, or
    on other workers): ``{old: new}``. At each path position, under the same method and
    prefix, values that differ only in their digits fold to their shape when there are at
    least ``SHAPE_MIN`` of them (``issue1``, ``issue14`` -> ``issue{int}``), then a position
    with more than ``limit`` distinct values folds to ``{slug}`` or ``{var}``. The root and
    empty segments are never folded. ``automatic(name)`` says which names may be folded
    (rules and routes are kept as named)."""
    if limit <= 0:
        return {}
    current = {n: n for n in names if automatic is None or automatic(n)}
    for pos in range(1, 64):
        groups: dict[tuple[str, tuple[str, ...]], set[str]] = {}
        for new in current.values():
            method, _, path = new.partition(" ")
            segs = path.split("/")
            if len(segs) > pos and segs[pos]:
                groups.setdefault((method, tuple(segs[:pos])), set()).add(segs[pos])
        if not groups:
            break
        renames: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        for k, vals in groups.items():
            shapes: dict[str, set[str]] = {}
            for v in vals:
                shapes.setdefault(_shape(v), set()).add(v)
            table = {
                v: shape
                for shape, vs in shapes.items()
                if shape != next(iter(vs)) and len(vs) >= SHAPE_MIN
                for v in vs
            }
            folded = {table.get(v, v) for v in vals}
            # "{var}": folded while the traffic was read (here or on another worker)
            if len(folded) > limit or "{var}" in folded:
                name = _fold_name(vals)
                table = dict.fromkeys(vals, name)
            if table:
                renames[k] = table
        if not renames:
            continue
        for old, new in current.items():
            method, _, path = new.partition(" ")
            segs = path.split("/")
            if len(segs) <= pos or not segs[pos]:
                continue
            table = renames.get((method, tuple(segs[:pos])), {})
            if segs[pos] in table:
                segs[pos] = table[segs[pos]]
                current[old] = f"{method} {'/'.join(segs)}"
    return {o: n for o, n in current.items() if o != n}


SHAPE_MIN = 5
_DIGITS = re.compile(r"\d+")


def _shape(seg: str) -> str:
    """``issue14`` -> ``issue{int}``; placeholders and digit-free words stay as they are."""
    if "{" in seg:
        return seg
    return _DIGITS.sub("{int}", seg)


def _fold_name(values: set[str]) -> str:
    return "{slug}" if all(_SLUG.match(v) for v in values if v != "{var}") else "{var}"
