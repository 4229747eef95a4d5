"""Detectors: find secrets and personal data anywhere in text, in one regex pass.

All enabled detectors are compiled into **one** alternation with a named group per detector,
so a body is scanned once whatever the number of detectors. Matches that need a check
(Luhn for cards, mod-97 for IBANs, base64 ``user:pass`` for Basic, a real address for IPv6)
are validated afterwards; a failed check is simply not a finding. Detectors whose value sits
after a prefix (``Bearer <token>``, ``aws_secret_access_key = <key>``, ``password=<value>``)
have an inner group ``<name>_v`` marking the part to mask.

The e-mail alternative is costly on long alphanumeric runs, so it is only included when the
text contains ``@`` or ``%40``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ._mask_fp import iban_valid, luhn_valid

__all__ = [
    "ALL_DETECTORS",
    "DEFAULT_DETECTORS",
    "FieldMatcher",
    "TextScanner",
    "normalize_field",
]

_EMAIL = (
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}(?:@|%40)"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)

# name -> pattern (order matters: earlier alternatives win at the same position)
_PATTERNS: dict[str, str] = {
    "private_key": (
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?s:.){0,20000}?"
        r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
    ),
    "jwt": r"(?<![\w-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
    "bearer": r"\b(?:[Bb]earer|BEARER)\s+(?P<bearer_v>[A-Za-z0-9._~+/-]{8,}=*)",
    "basic": r"\b(?:[Bb]asic|BASIC)\s+(?P<basic_v>[A-Za-z0-9+/]{4,}={0,2})(?![\w+/=])",
    "aws_access_key": (
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|APKA)[A-Z0-9]{16}"
        r"(?![A-Z0-9])"
    ),
    "aws_secret_key": (
        r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
        r"(?P<aws_secret_key_v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
    ),
    "github_token": (
        r"(?<![\w])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?!\w)"
    ),
    "stripe_key": r"(?<![\w])(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{10,247}(?!\w)",
    "slack_token": r"(?<![\w])xox[abprs]-[A-Za-z0-9-]{10,250}(?![\w-])",
    "iban": (
        r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}"
        r"(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])"
    ),
    "card": (
        r"(?<![\d.,-])(?:[2-6]\d{12,18}|[2-6]\d{3}(?:[ -]\d{4}){2}[ -]\d{1,7}"
        r"|3\d{3}[ -]\d{6}[ -]\d{5})(?!\d|[.,]\d)"
    ),
    "email": _EMAIL,
    "phone": (
        r"(?<![\w+])(?:\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}"
        r"|\(\d{3}\) ?\d{3}[-.]\d{4})(?![\w])"
    ),
    "ipv4": (
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
        r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)"
    ),
    "ipv6": r"(?<![\w:.])(?=[0-9A-Fa-f:]*::?[0-9A-Fa-f]*:)[0-9A-Fa-f:]{3,39}(?![\w:.])",
}

ALL_DETECTORS: tuple[str, ...] = tuple(_PATTERNS)
#: IP addresses are opt-in: they are everywhere (X-Forwarded-For, logs) and often not personal.
DEFAULT_DETECTORS: tuple[str, ...] = tuple(d for d in ALL_DETECTORS if d not in ("ipv4", "ipv6"))


def _basic_ok(v: str) -> bool:
    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in raw


def _card_ok(v: str) -> bool:
    d = "".join(c for c in v if c.isdigit())
    return 13 <= len(d) <= 19 and luhn_valid(d)


def _ipv6_ok(v: str) -> bool:
    if v.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(v)
    except ValueError:
        return False
    return True


def _phone_ok(v: str) -> bool:
    n = sum(c.isdigit() for c in v)
    return 8 <= n <= 15


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "basic": _basic_ok,
    "card": _card_ok,
    "iban": lambda v: iban_valid(v.replace(" ", "")),
    "ipv6": _ipv6_ok,
    "phone": _phone_ok,
}


def normalize_field(name: str) -> str:
    """``X-Access_Token`` -> ``xaccesstoken``: how field names are compared."""
    return "".join(c for c in name.lower() if c.isalnum())


class FieldMatcher:
    """Which field names mean "secret", by normalised name (``X-Access_Token`` ->
    ``xaccesstoken``). A pattern is a name (exact), ``*name`` (ends with), ``name*``
    (starts with) or ``*name*`` (contains): ``*token`` matches ``csrf_token`` but not
    ``max_tokens``."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p for p in patterns if normalize_field(p))
        alts = []
        for p in self.patterns:
            core = re.escape(normalize_field(p))
            alts.append(
                (".*" if p.startswith("*") else "") + core + (".*" if p.endswith("*") else "")
            )
        self._rx = re.compile("(?:" + "|".join(alts) + ")") if alts else None
        pieces = {max(re.split(r"[^a-z0-9]+", p.lower()), key=len) for p in self.patterns} - {""}
        self._words = re.compile("|".join(sorted(map(re.escape, pieces)))) if pieces else None
        self._cache: dict[str, bool] = {}

    def matches(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            n = normalize_field(name)
            hit = bool(n) and self._rx is not None and self._rx.fullmatch(n) is not None
            if len(self._cache) < 4096:
                self._cache[name] = hit
        return hit

    def mentioned(self, text: str) -> bool:
        """Could ``text`` contain one of these names (a cheap, loose pre-check)?"""
        return self._words is not None and self._words.search(text.lower()) is not None

    def extended(self, more: Iterable[str]) -> FieldMatcher:
        return FieldMatcher((*self.patterns, *more))


def _field_patterns(names: Iterable[str]) -> list[tuple[str, str]]:
    """Named fields in free text (logs, YAML, HTML, XML, echoed requests):

    * ``password=...``, ``"api_key": "..."``, ``token: ...``
    * a multipart part ``name="password"`` followed by its content
    * an HTML input ``name="password" ... value="..."`` and an XML element ``<password>``
    """
    alts = sorted(
        {
            re.sub(r"(?:\\-|_)", "[-_]?", re.escape(n.strip("*").lower()))
            for n in names
            if normalize_field(n)
        },
        key=len,
        reverse=True,
    )
    if not alts:
        return []
    name = r"(?i:[\w-]{0,40}?(?:" + "|".join(alts) + r"))"
    return [
        (
            "field",
            r"(?<![\w-])" + name + r"(?:\\{0,7}[\"'])?[ \t]*[:=][ \t]*(?:\\{0,7}[\"'])?"
            r"(?P<field_v>(?:(?i:bearer|basic|token|digest|negotiate)[ \t]+)?"
            r"[^\"'&\s<>,;{}\[\]\\]{1,4096})",
        ),
        (
            "field_part",
            r"(?i:\bname=)[\"']?" + name + r"[\"']?[^\r\n]{0,200}(?:\r?\n[^\r\n]{1,200}){0,8}"
            r"\r?\n\r?\n(?P<field_part_v>[^\r\n]{1,4096})",
        ),
        (
            "field_html",
            r"(?i:\bname=)[\"']" + name + r"[\"'][^>]{0,200}?(?i:\bvalue=)[\"']"
            r"(?P<field_html_v>[^\"'<>]{1,4096})",
        ),
        (
            "field_xml",
            r"<(?P<field_xml_n>" + name + r")>(?P<field_xml_v>[^<]{1,4096})</(?P=field_xml_n)>",
        ),
    ]


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector match: the detector (or ``field``), where the value is, and the value."""

    rule: str
    start: int
    end: int


class TextScanner:
    """Scans text for the enabled detectors (+ ``field=value`` pairs and custom regexes)."""

    def __init__(
        self,
        detectors: Iterable[str],
        field_names: Iterable[str] = (),
        custom: Iterable[tuple[str, re.Pattern[str]]] = (),
    ) -> None:
        self.detectors = [d for d in ALL_DETECTORS if d in set(detectors)]
        fields = _field_patterns(field_names)
        parts = []
        if "private_key" in self.detectors:
            parts.append(("private_key", _PATTERNS["private_key"]))
        for d in ("jwt", "bearer", "basic", "aws_secret_key"):
            if d in self.detectors:
                parts.append((d, _PATTERNS[d]))
        parts += fields
        parts += [
            (d, _PATTERNS[d])
            for d in self.detectors
            if d not in ("private_key", "jwt", "bearer", "basic", "aws_secret_key")
        ]
        self._with_email = self._compile(parts)
        self._without_email = self._compile([p for p in parts if p[0] != "email"])
        self.custom = list(custom)

    @staticmethod
    def _compile(parts: list[tuple[str, str]]) -> re.Pattern[str] | None:
        if not parts:
            return None
        return re.compile("|".join(f"(?P<{n}>{p})" for n, p in parts), re.ASCII)

    def findings(self, text: str) -> Iterator[Finding]:
        """Validated matches in text order (custom regexes after the built-in ones)."""
        rx = (
            self._with_email
            if ("@" in text or "%40" in text or "%40" in text.upper())
            else self._without_email
        )
        if rx is not None:
            for m in rx.finditer(text):
                name = m.lastgroup
                if name is None:
                    continue
                inner = f"{name}_v"
                if inner in rx.groupindex and m.group(inner) is not None:
                    start, end = m.span(inner)
                else:
                    start, end = m.span(name)
                check = _VALIDATORS.get(name)
                if check is not None and not check(text[start:end]):
                    continue
                yield Finding("field" if name.startswith("field") else name, start, end)
        for cname, crx in self.custom:
            for m in crx.finditer(text):
                if crx.groups >= 1 and m.group(1) is not None:
                    start, end = m.span(1)
                else:
                    start, end = m.span()
                if end > start:
                    yield Finding(cname, start, end)

    def might_match(self, text: str) -> bool:
        """Cheap pre-check: is there any finding at all?"""
        return next(self.findings(text), None) is not None

    def whole(self, value: str) -> str | None:
        """The detector that matches all of ``value`` (used to keep a named field's format)."""
        for f in self.findings(value):
            if f.start == 0 and f.end == len(value) and f.rule != "field":
                return f.rule
        return None
