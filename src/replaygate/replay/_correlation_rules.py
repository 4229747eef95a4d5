"""The ``[correlation]`` section: where issued values are learned from (the rules).

:mod:`.correlation` applies them; this module only describes and validates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..jsonpath import JsonPath

__all__ = ["DEFAULT_RULES", "CorrelationConfig", "CorrelationRule"]

_KINDS = ("cookie", "header", "json", "regex", "location")
_JSON_NAMES = (
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "auth_token",
    "csrf",
    "csrf_token",
    "_csrf",
    "xsrf",
    "xsrf_token",
    "csrfmiddlewaretoken",
    "authenticity_token",
    "session",
    "session_id",
    "sessionid",
    "sid",
)
_HEADER_NAMES = ("X-Csrf-Token", "X-Xsrf-Token", "X-Auth-Token", "X-Session-Id", "X-Access-Token")
_HTML_HIDDEN = (
    r"<input[^>]*?name=[\"'](?:[\w-]*csrf[\w-]*|authenticity_token|__RequestVerificationToken|"
    r"[\w-]*xsrf[\w-]*)[\"'][^>]*?value=[\"']([^\"']+)[\"']"
)
_HTML_HIDDEN_REV = (
    r"<input[^>]*?value=[\"']([^\"']+)[\"'][^>]*?name=[\"'](?:[\w-]*csrf[\w-]*|"
    r"authenticity_token|__RequestVerificationToken|[\w-]*xsrf[\w-]*)[\"']"
)
_HTML_META = (
    r"<meta[^>]*?name=[\"'](?:csrf-token|csrf_token|_csrf)[\"'][^>]*?content=[\"']([^\"']+)"
)


@dataclass(frozen=True)
class CorrelationRule:
    """Where issued values are learned from.

    * ``cookie``: ``name`` = cookie name, ``*`` for every Set-Cookie cookie
    * ``header``: ``name`` = response header
    * ``json``: ``name`` = a field name matched at any depth, or a JSON path (``$.data.token``,
      ``$.items[*].id``); values are paired by their concrete path
    * ``regex``: ``name`` = a pattern on the response head + body; group 1 (or the match)
      is the value; the n-th match of the original pairs with the n-th of staging's
    * ``location``: ids in the Location header (path segments that differ)

    ``id = true``: replace only whole path segments / values; ``created = true``: learn only
    from successful answers to POST, PUT and PATCH (the id of what was just created).
    """

    kind: str
    name: str = "*"
    id: bool = False
    label: str = ""
    created: bool = False  # only learn from 2xx answers to POST/PUT/PATCH (creations)

    @property
    def rule_name(self) -> str:
        return self.label or f"{self.kind}:{self.name}"


DEFAULT_RULES: tuple[CorrelationRule, ...] = (
    CorrelationRule("cookie", "*", label="set-cookie"),
    *(CorrelationRule("json", n, label=f"json:{n}") for n in _JSON_NAMES),
    *(CorrelationRule("header", h, label=f"header:{h.lower()}") for h in _HEADER_NAMES),
    CorrelationRule("location", "*", id=True, label="location"),
    CorrelationRule("json", "$.id", id=True, created=True, label="json:id"),
    CorrelationRule("json", "$.data.id", id=True, created=True, label="json:id"),
    CorrelationRule("regex", _HTML_HIDDEN, label="html:csrf"),
    CorrelationRule("regex", _HTML_HIDDEN_REV, label="html:csrf"),
    CorrelationRule("regex", _HTML_META, label="html:csrf"),
)


@dataclass
class CorrelationConfig:
    """The ``[correlation]`` section. ``rules`` add to the defaults unless
    ``default_rules = false``; a rule is ``{kind = "json", name = "$.data.token"}``."""

    enabled: bool = True
    rules: list[Any] = field(default_factory=list)
    default_rules: bool = True
    min_length: int = 6

    def __post_init__(self) -> None:
        parsed: list[CorrelationRule] = []
        for i, r in enumerate(self.rules):
            if isinstance(r, CorrelationRule):
                parsed.append(r)
                continue
            if not isinstance(r, dict):
                raise ConfigError(f"[correlation] rules[{i}]: must be a table (kind, name)")
            unknown = set(r) - {"kind", "name", "id", "label", "created"}
            if unknown:
                raise ConfigError(f"[correlation] rules[{i}]: unknown key {sorted(unknown)[0]!r}")
            kind = str(r.get("kind", ""))
            if kind not in _KINDS:
                raise ConfigError(
                    f"[correlation] rules[{i}].kind: {kind!r} is not one of {', '.join(_KINDS)}"
                )
            parsed.append(
                CorrelationRule(
                    kind,
                    str(r.get("name", "*")),
                    bool(r.get("id", False)),
                    str(r.get("label", "")),
                    bool(r.get("created", False)),
                )
            )
        for i, pr in enumerate(parsed):
            if pr.kind == "regex":
                try:
                    re.compile(pr.name)
                except re.error as e:
                    raise ConfigError(f"[correlation] rules[{i}].name: bad regex ({e})") from None
            elif pr.kind == "json" and pr.name.startswith("$"):
                JsonPath.parse(pr.name, f"[correlation] rules[{i}].name")
        if self.default_rules:
            parsed = [*DEFAULT_RULES, *parsed]
        self.rules = parsed
        if self.min_length < 1:
            raise ConfigError("[correlation] min_length: must be >= 1")
