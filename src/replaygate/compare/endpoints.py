"""Endpoint grouping: which requests are "the same endpoint" for counting and judging.

Numbers are kept per endpoint, so ``/users/123`` and ``/users/456`` must land in one bucket.
Three ways, first match wins:

1. a header that names the endpoint (``endpoint_header = "X-Endpoint"``), as API gateways and
   routers often add one;
2. user rules such as ``"GET /api/users/:id"``, ``"/files/**"`` or ``"* /v1/{kind}/list"``;
3. automatic templates: each path segment that looks like an identifier is replaced by its
   kind: ``{int}``, ``{uuid}``, ``{hex}``, ``{hash}``, ``{date}``, ``{email}``, ``{token}``.

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

__all__ = ["EndpointRule", "EndpointTemplater", "template_path", "template_segment"]

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
    if "-" in seg_dec or "_" in seg_dec or "." in seg_dec:
        # fingerprinted assets and ids inside names: app-3f2a…e9.js -> app-{hash}.js
        emb = _EMBEDDED.sub(_embedded_kind, seg_dec)
        if emb != seg_dec:
            return emb
    if n >= 16 and _TOKEN.match(seg_dec) and not _WORDY.match(seg_dec) and _looks_random(seg_dec):
        return "{token}"
    return seg


def _embedded_kind(m: re.Match[str]) -> str:
    t = m.group(0)
    if "-" in t:
        return "{uuid}"
    if not any(c.isdigit() for c in t):
        return t
    return "{hash}" if len(t) in _HASH_LENGTHS else "{hex}"


def _looks_random(s: str) -> bool:
    """Base64-ish tokens mix digits and letters (or cases); slugs are words joined by dashes."""
    digits = sum(c.isdigit() for c in s)
    upper = sum(c.isupper() for c in s)
    lower = sum(c.islower() for c in s)
    if digits and upper and lower:
        return True
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


@dataclass(frozen=True)
class EndpointRule:
    """A user rule: ``[METHOD ]PATH`` where ``:name``, ``{name}`` and ``*`` match one segment
    and a final ``**`` matches the rest. ``name`` is what the endpoint is called in reports
    (default: the pattern itself, with the method)."""

    pattern: str
    name: str | None = None

    def compile(self) -> tuple[str | None, re.Pattern[str], str, bool]:
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
            else:
                parts.append(re.escape(seg))
        rx = re.compile("^" + "/".join(parts) + "/?$")
        name = self.name or (f"{method} {path}" if method else path)
        return method, rx, name, self.name is None and method is None


class EndpointTemplater:
    """Maps a request to its endpoint name (``"GET /users/{int}"``)."""

    def __init__(
        self,
        rules: Iterable[str | Mapping[str, Any] | EndpointRule] = (),
        header: str | None = None,
    ) -> None:
        self._rules: list[tuple[str | None, re.Pattern[str], str, bool]] = []
        for r in rules:
            if isinstance(r, EndpointRule):
                rule = r
            elif isinstance(r, str):
                rule = EndpointRule(r)
            elif isinstance(r, Mapping) and isinstance(r.get("pattern"), str):
                rule = EndpointRule(str(r["pattern"]), r.get("name"))
            else:
                raise ConfigError(
                    f"[compare] endpoints: cannot read rule {r!r} (a string or {{pattern=..., name=...}})"
                )
            self._rules.append(rule.compile())
        self._header = header
        self._cache: dict[tuple[str, str], str] = {}

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
            return hit
        name = self._match(method, path)
        if len(self._cache) < 100_000:
            self._cache[key] = name
        return name

    def _match(self, method: str, path: str) -> str:
        for m, rx, name, add_method in self._rules:
            if (m is None or m == method) and rx.match(path):
                return f"{method} {name}" if add_method else name
        return f"{method} {template_path(path)}"
