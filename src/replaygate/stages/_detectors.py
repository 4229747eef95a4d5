"""Detectors: find secrets and personal data anywhere in text, in one regex pass.

All enabled detectors are compiled into **one** alternation with a named group per detector,
so a body is scanned once whatever the number of detectors. Matches that need a check
(Luhn for cards, mod-97 for IBANs, base64 ``user:pass`` for Basic, a real address for IPv6)
are validated afterwards; a failed check is simply not a finding. Detectors whose value sits
after a prefix (``Bearer <token>``, ``aws_secret_access_key = <key>``, ``password=<value>``)
have an inner group ``<name>_v`` marking the part to mask.

Speed: each detector has a cheap literal trigger (``eyJ`` for JWTs, four digits for cards,
``@`` for e-mail...); the alternation is compiled (and cached) only from the detectors whose
trigger occurs in the text, so most strings cost a few substring searches. E-mails are found
from each ``@`` outwards instead of by a regex tried at every position.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ._detect_fields import FIELD_NEEDS as _FIELD_NEEDS
from ._detect_fields import FieldMatcher, normalize_field
from ._detect_fields import field_patterns as _field_patterns
from ._detect_fields import field_word as _word
from ._detect_quick import Quick as _Quick
from ._mask_fp import CORE, iban_valid, luhn_valid

__all__ = [
    "ALL_DETECTORS",
    "DEFAULT_DETECTORS",
    "FieldMatcher",
    "Finding",
    "TextScanner",
    "b64_encode",
    "b64_text",
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
    "jwt": r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
    "bearer": r"[Bb](?<!\w[Bb])(?:earer|EARER)\s+(?P<bearer_v>[A-Za-z0-9._~+/-]{8,}=*)",
    "basic": r"[Bb](?<!\w[Bb])(?:asic|ASIC)\s+(?P<basic_v>[A-Za-z0-9+/]{4,}={0,2})(?![\w+/=])",
    "aws_access_key": (
        r"A(?<![A-Z0-9]A)(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|NVA|PKA)[A-Z0-9]{16}(?![A-Z0-9])"
    ),
    "aws_secret_key": (
        r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
        r"(?P<aws_secret_key_v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
    ),
    "github_token": (
        r"g(?<!\wg)(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{22,255})(?!\w)"
    ),
    "stripe_key": r"[spr]k_(?<!\w[spr]k_)(?:live|test)_[A-Za-z0-9]{10,247}(?!\w)",
    "slack_token": r"xox(?<!\wxox)[abprs]-[A-Za-z0-9-]{10,250}(?![\w-])",
    "iban": (
        r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}"
        r"(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])"
    ),
    "card": (
        r"[2-6](?<![\d.,-][2-6])(?:\d{12,18}|\d{3}(?:[ -]\d{4}){2}[ -]\d{1,7}"
        r"|(?<=3)\d{3}[ -]\d{6}[ -]\d{5})(?!\d|[.,]\d)"
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

_DIG4 = re.compile(r"\d{4}", re.ASCII)
_AWS_PRE = re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|NVA|PKA)")
_IPV4_PRE = re.compile(r"\d\.\d", re.ASCII)
_IPV6_PRE = re.compile(r"[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:")
_GH = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")

#: a literal test per detector that every match needs: regexes only run when it passes
_TRIGGERS: dict[str, Callable[[str], bool]] = {
    "private_key": lambda t: "PRIVATE KEY" in t,
    "jwt": lambda t: "eyJ" in t,
    "bearer": lambda t: "earer" in t or "EARER" in t,
    "basic": lambda t: "asic" in t or "ASIC" in t,
    "aws_access_key": lambda t: _AWS_PRE.search(t) is not None,
    "aws_secret_key": lambda t: "ecret" in t or "ECRET" in t,
    "github_token": lambda t: any(g in t for g in _GH),
    "stripe_key": lambda t: "_live_" in t or "_test_" in t,
    "slack_token": lambda t: "xox" in t,
    "iban": lambda t: _DIG4.search(t) is not None,
    "card": lambda t: _DIG4.search(t) is not None,
    "phone": lambda t: ("+" in t or "(" in t) and _DIG4.search(t) is not None,
    "ipv4": lambda t: _IPV4_PRE.search(t) is not None,
    "ipv6": lambda t: "::" in t or _IPV6_PRE.search(t) is not None,
}


_EMAIL_LOCAL_REV = re.compile(r"[A-Za-z0-9._%+-]{1,64}", re.ASCII)
_EMAIL_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])",
    re.ASCII,
)


def _emails_py(text: str) -> Iterator[Finding]:
    """E-mail addresses, anchored on each ``@`` / ``%40``: the domain is matched forwards,
    the local part backwards (on the reversed text), so each address costs two short
    matches (a regex tried at every position would be quadratic on alphanumeric runs)."""
    rev = text[::-1]
    n = len(text)
    for sep in ("@", "%40"):
        i = text.find(sep)
        while i >= 0:
            m = _EMAIL_LOCAL_REV.match(rev, n - i)
            if m is not None:
                start = i - (m.end() - m.start())
                before = text[start - 1] if start > 0 else ""
                if not (before and (before.isalnum() or before in "._%+-")):
                    dom = _EMAIL_DOMAIN.match(text, i + len(sep))
                    if dom is not None:
                        yield Finding("email", start, dom.end())
            i = text.find(sep, i + 1)


def _emails_core(text: str) -> Iterator[Finding]:
    """:func:`_emails_py` by the compiled core (``make accel``): the same findings in the same
    order (property tests and the ``mask_core`` fuzz target compare them)."""
    assert CORE is not None
    for start, end in CORE.email_spans(text):
        yield Finding("email", start, end)


_emails = _emails_py if CORE is None else _emails_core


#: IP addresses are opt-in: they are everywhere (X-Forwarded-For, logs) and often not personal.
DEFAULT_DETECTORS: tuple[str, ...] = tuple(d for d in ALL_DETECTORS if d not in ("ipv4", "ipv6"))


def _basic_ok(v: str) -> bool:
    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in raw


def _card_ok_py(v: str) -> bool:
    d = "".join(c for c in v if c.isdigit())
    return 13 <= len(d) <= 19 and luhn_valid(d)


def _card_ok_core(v: str) -> bool:
    assert CORE is not None
    ok = CORE.card_ok(v)
    return _card_ok_py(v) if ok is None else ok


#: 13 to 19 digits that pass the Luhn check (the compiled core's twin when it is built)
_card_ok = _card_ok_py if CORE is None else _card_ok_core


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


_B64_SEGMENT = re.compile(r"[A-Za-z0-9+_-]{16}", re.ASCII)
_B64_RUN = re.compile(r"(?<![\w+/-])[A-Za-z0-9+/_-]{16,}={0,2}(?![\w+/=-])", re.ASCII)
_B64_CHARS = re.compile(r"[A-Za-z0-9+/_-]{16,}", re.ASCII)
_B64_TAIL = re.compile(r"={0,2}(?![\w+/=-])", re.ASCII)


def _b64_runs_py(text: str) -> Iterator[tuple[int, int]]:
    """The spans of :data:`_B64_RUN` in ``text``, found faster: each maximal run of base64
    characters (a search that starts with a character class, where ``re`` tried the
    look-behind at every position), then its padding and end checked once. The same spans:
    the look-behind's class is the run's, so a match can only start where a run starts, and
    a run whose end fails fails from every start inside it."""
    for m in _B64_CHARS.finditer(text):
        tail = _B64_TAIL.match(text, m.end())
        if tail is not None:
            yield m.start(), tail.end()


#: the spans of the base64 runs in a text (:func:`_b64_runs_py`; the compiled core's twin
#: when it is built: one pass in C over every character of a body)
b64_runs: Callable[[str], Iterable[tuple[int, int]]] = (
    _b64_runs_py if CORE is None else CORE.b64_spans
)


def b64_text(value: str) -> tuple[str, bool] | None:
    """``value`` as base64 (standard or URL-safe alphabet) of printable UTF-8 text of 12+
    characters: (the text, URL-safe?); None for anything else (random tokens, hex, binary)."""
    std = "+" in value or "/" in value
    url = "-" in value or "_" in value
    if std and url:
        return None
    core = value.rstrip("=")
    if len(core) % 4 == 1:
        return None
    try:
        raw = (base64.urlsafe_b64decode if url else base64.b64decode)(core + "=" * (-len(core) % 4))
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if len(text) < 12 or not all(c.isprintable() or c in "\r\n\t" for c in text):
        return None
    return text, url


def b64_encode(text: str, like: str, urlsafe: bool) -> str:
    """Encode ``text`` as ``like`` was encoded (alphabet, padding)."""
    raw = text.encode("utf-8", "surrogatepass")
    out = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    if like.endswith("="):
        return out
    if len(like) % 4 or urlsafe:  # unpadded (URL-safe values usually are)
        return out.rstrip("=")
    return out


class Finding(NamedTuple):
    """One detector match: the detector (or ``field``) and where the value is. A named tuple:
    a body yields dozens, and a frozen dataclass costs three ``object.__setattr__`` each."""

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
        #: the field names (FieldMatcher patterns) the field patterns were made of
        self.field_names: tuple[str, ...] = tuple(field_names)
        field_names = self.field_names
        self._email = "email" in self.detectors
        order = ["private_key", "jwt", "bearer", "basic", "aws_secret_key"]
        order += [d for d in self.detectors if d not in order and d != "email"]
        self._rx: list[tuple[str, re.Pattern[str]]] = [
            (d, re.compile(_PATTERNS[d], re.ASCII)) for d in order if d in self.detectors
        ]
        # named fields: lower-case patterns run on the lower-cased text (no IGNORECASE: an
        # ignore-case alternation is two orders of magnitude slower in ``re``)
        fields = _field_patterns(field_names)
        # (field word that must occur, regex, same regex ignoring case for non-ASCII texts)
        self._fields = [
            (
                n[3:] if n.startswith("kv:") else "",
                _FIELD_NEEDS.get(n, ""),
                re.compile(p, re.ASCII),
                re.compile(p, re.ASCII | re.IGNORECASE),
            )
            for n, p in fields
        ]
        self._words = tuple(sorted({_word(n) for n in field_names} - {""}))
        #: the field patterns by the word they need ("": none, just their ``need``)
        self._fields_of: dict[str, list[tuple[str, str, re.Pattern[str], re.Pattern[str]]]] = {}
        for f in self._fields:
            self._fields_of.setdefault(f[0], []).append(f)
        self.custom = list(custom)
        self.quick = _Quick(self.detectors, self._words if fields else ())
        self._plain = _Quick(self.detectors, self._words if fields else (), b64=False)
        #: custom regexes can match anything: no prefilter then
        self.prefilter = not self.custom
        #: base64 run -> does not decode to text (head runs repeat: application/json)
        self._b64_runs: dict[str, bool] = {}

    @property
    def words(self) -> tuple[str, ...]:
        """The field words (lower case): one occurs in every match of a field pattern."""
        return self._words

    @property
    def has_fields(self) -> bool:
        """Field patterns are looked for (``field`` findings)."""
        return bool(self._fields)

    def findings(
        self, text: str, *, fields: bool = True, encoded: bool = True
    ) -> Iterator[Finding]:
        """Validated matches: detectors, then named fields, e-mails, custom patterns and
        base64 runs whose decoded text holds a finding (``encoded``; one level deep).
        Callers that need text order sort them (overlaps: the earlier, longer one wins)."""
        tags: set[str] | None = None
        words: set[str] | None = None  # the field words in the text, when known
        if self.prefilter:
            both = self.quick.which_words(text)
            if both is None:
                if not self.quick(text):
                    return
            else:
                tags, words = both
                if not tags:
                    return
        for name, rx in self._rx:
            if (tags is not None and name not in tags) or not _TRIGGERS[name](text):
                continue
            inner = f"{name}_v"
            has_inner = inner in rx.groupindex
            check = _VALIDATORS.get(name)
            for m in rx.finditer(text):
                start, end = m.span(inner) if has_inner else m.span()
                if check is not None and not check(text[start:end]):
                    continue
                yield Finding(name, start, end)
        if fields and self._fields and (tags is None or "words" in tags):
            low = text.lower()
            present = {w for w in self._words if w in low} if words is None else words
            if present:
                same = len(low) == len(text)
                for word, need, rx, rx_i in self._fields:
                    if (word and word not in present) or need not in low:
                        continue
                    r = rx if same else rx_i
                    inner = next(g for g in r.groupindex if g.endswith("_v"))
                    for m in r.finditer(low if same else text):
                        yield Finding("field", *m.span(inner))
        if self._email and (tags is None or "email" in tags) and ("@" in text or "%40" in text):
            yield from _emails(text)
        for cname, crx in self.custom:
            for m in crx.finditer(text):
                if crx.groups >= 1 and m.group(1) is not None:
                    start, end = m.span(1)
                else:
                    start, end = m.span()
                if end > start:
                    yield Finding(cname, start, end)
        if encoded and len(text) >= 16 and (tags is None or "base64" in tags):
            for start, end in b64_runs(text):
                dec = b64_text(text[start:end])
                if dec is not None and next(self.findings(dec[0], encoded=False), None):
                    yield Finding("base64", start, end)

    def clean(self, text: str, *, target: bool = False) -> bool:
        """True when no part of ``text`` cut at delimiters (header values of a head, path
        segments and query pairs of a target) can hold a finding: no trigger, no field word,
        no base64 run that decodes to text. For a target also no ``%`` (decoding could make
        a trigger) and no 16-character run without ``/`` (a segment's base64 candidate)."""
        if not self.prefilter:
            return False
        if target:
            if "%" in text or _B64_SEGMENT.search(text) is not None:
                return False
            both = self._plain.which_words(text)  # one scan: which triggers, if any
            if both is None:  # without hyperscan
                return not self._plain(text)
            tags, words = both
            return not tags or (tags == {"words"} and self._only_unused_words(text, words))
        if self._plain(text):
            return False
        cache = self._b64_runs
        for start, end in b64_runs(text):
            run = text[start:end]
            plain = cache.get(run)
            if plain is None:
                plain = b64_text(run) is None
                if len(cache) >= 4096:
                    cache.clear()
                cache[run] = plain
            if not plain:
                return False
        return True

    def _only_unused_words(self, text: str, words: set[str] | None = None) -> bool:
        """An ASCII target whose only trigger (the caller knows) is a field word that no field
        pattern uses
        there (``/api/v1/items``: the word of ``*api_key``, never followed by ``=``). Field
        patterns start after a non-word character or anywhere and match forwards, so none
        matching the whole target means none matches any of its segments, names or values
        (cut at ``/ ? & = #``, all non-word characters)."""
        if not text.isascii():
            return False
        low = text.lower()
        fields = self._fields
        if words is not None:  # the words present: only the patterns that need one of them
            fields = [f for w in sorted(words) for f in self._fields_of.get(w, ())]
            fields += self._fields_of.get("", [])
        for word, need, rx, _rx_i in fields:
            if (word and word not in low) or need not in low:
                continue
            if rx.search(low) is not None:
                return False
        return True

    def mentions_field(self, text: str) -> bool:
        low = text.lower()
        return any(w in low for w in self._words)

    def might_match(self, text: str) -> bool:
        """Cheap pre-check: is there any finding at all?"""
        return next(self.findings(text), None) is not None

    def whole(self, value: str) -> str | None:
        """The detector that matches all of ``value`` (used to keep a named field's format).
        Named fields and base64 runs are no detector here: they are not looked for."""
        for f in self.findings(value, fields=False, encoded=False):
            if f.start == 0 and f.end == len(value) and f.rule not in ("field", "base64"):
                return f.rule
        return None
