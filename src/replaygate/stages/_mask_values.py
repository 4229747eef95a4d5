"""Masking values: the pseudonym of one value, by detector or by where it is (a secret
header, cookie or field), and detector findings in free text.

:class:`ValueMasker` is the bottom layer of :class:`~._mask_engine.Masker` (JSON documents in
:mod:`._mask_json`, HTTP messages in :mod:`._mask_engine` build on it). It is pure: the same
value always masks to the same text under one key. Every finding is reported through
``record`` (rule, location, already masked?), never with its value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._detectors import FieldMatcher, TextScanner, b64_encode, b64_text
from ._mask_fp import REDACT_RE, Keyed, fp_is_pseudonym

if TYPE_CHECKING:
    from ._mask_body import JsonPath

__all__ = [
    "JWT_CLAIMS",
    "Loc",
    "Recorder",
    "Rules",
    "ValueMasker",
    "findings_summary",
    "resolve_loc",
]

#: a location, or how to build it: only recorders that report locations (scan) build them
Loc = str | Callable[[], str]
#: (rule, location, already masked?) for every finding; counts only, never values
Recorder = Callable[[str, Loc, bool], None]

#: JWT claims that identify a person or a session, pseudonymized inside masked tokens
JWT_CLAIMS = (
    "sub",
    "email",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "nickname",
    "upn",
    "unique_name",
    "jti",
    "sid",
    "phone_number",
    "oid",
    "username",
    "user_id",
)
_TOKEN_KEEP = {"aws_access_key": 4, "slack_token": 5}


@dataclass
class Rules:
    """Compiled masking rules (built by :class:`replaygate.stages.mask.MaskConfig`)."""

    default_action: str
    headers: frozenset[str]
    keep_headers: frozenset[str]
    cookies: frozenset[str]
    query: frozenset[str]
    form: frozenset[str]
    json_paths: list[JsonPath]
    fields: FieldMatcher
    scanner: TextScanner
    actions: dict[str, str]
    skip_types: tuple[str, ...]
    responses: bool = True

    def action(self, kind: str, name: str = "") -> str:
        a = self.actions
        if not a:
            return self.default_action
        key = f"{kind}:{name}".lower()
        return a.get(key) or a.get(kind.lower()) or self.default_action


class ValueMasker:
    """Masks values and free text according to :class:`Rules` with the pseudonyms of one key
    (JSON documents and JWTs: :class:`~._mask_json.JsonMasker`, which extends it)."""

    #: (``CORE.mask_named``, the recorder it stands in for, its context) when the recorder
    #: only counts (:meth:`~._mask_json.JsonMasker.count_into`), else None
    named_core: tuple[Any, Recorder, tuple[Any, ...]] | None = None

    def __init__(self, rules: Rules, key: bytes, record: Recorder | None = None) -> None:
        self.rules = rules
        self.k = Keyed(key)
        self.record: Recorder = record or (lambda rule, loc, masked: None)
        self._jwt_fields = rules.fields.extended(JWT_CLAIMS)
        self._named_cache: dict[str, str | bool] = {}
        self._det_cache: dict[str, str] = {}
        #: short texts (header values, path segments, query values) repeat: their result
        #: and the findings to record again
        self._text_cache: dict[str, tuple[str | None, list[tuple[str, bool]]]] = {}
        #: what a computation under :meth:`_collect` read from the caches above (a memo of
        #: it stays exact while they are all there), and pseudonyms made afresh (a fresh
        #: one may record findings inside it once, e.g. a JWT's claims: no memo then)
        self._deps: list[tuple[dict[str, Any], str]] | None = None
        self._fresh = 0

    # == values ============================================================================
    def is_masked(self, value: str, whole: str | bool | None = False) -> bool:
        """True for anything this engine (with any key) could have produced. ``whole``:
        the detector matching all of ``value`` when the caller already knows it."""
        if (value[:10] == _REDACTED and REDACT_RE.fullmatch(value)) or fp_is_pseudonym(value):
            return True
        scheme, _, cred = value.partition(" ")
        if cred and scheme.lower() in ("bearer", "basic", "token") and self.is_masked(cred):
            return True
        if cred and scheme.lower() == "basic" and self.k.basic_is_pseudonym(cred.strip()):
            return True
        rule = self.rules.scanner.whole(value) if whole is False else whole
        return isinstance(rule, str) and self._detector_masked(rule, value)

    def _detector_masked(self, rule: str, v: str) -> bool:
        k = self.k
        # the format's own mark first (a reserved domain, a test card range, RGMASKED): a
        # string test, where the generic checksum below costs a SHA-256; same answer
        if rule == "email":
            return k.email_is_pseudonym(v) or _any_pseudonym(v)
        if rule == "card":
            return k.card_is_pseudonym(v) or _any_pseudonym(v)
        if rule == "jwt":
            return k.jwt_is_pseudonym(v) or _any_pseudonym(v)
        if _any_pseudonym(v):
            return True
        if rule == "iban":
            return k.iban_is_pseudonym(v)
        if rule == "phone":
            return k.phone_is_pseudonym(v)
        if rule == "basic":
            return k.basic_is_pseudonym(v)
        if rule == "private_key":
            return k.pem_is_pseudonym(v)
        if rule in ("ipv4", "ipv6"):
            return k.ip_is_pseudonym(v)
        if rule == "bearer" and v.startswith("eyJ") and v.count(".") == 2:
            return k.jwt_is_pseudonym(v)
        return fp_is_pseudonym(v, _token_keep(rule, v))

    def _detector_pseudonym(self, rule: str, v: str) -> str:
        k = self.k
        if rule == "email":
            return k.email(v)
        if rule == "card":
            return k.card(v)
        if rule == "jwt" or (rule == "bearer" and v.startswith("eyJ") and v.count(".") == 2):
            return self.jwt(v)
        if rule == "iban":
            return k.iban(v)
        if rule == "phone":
            return k.phone(v)
        if rule == "basic":
            return k.basic(v)
        if rule == "private_key":
            return k.pem(v)
        if rule in ("ipv4", "ipv6"):
            return k.ip(v)
        return k.fp(v, _token_keep(rule, v))

    def _detected(self, rule: str, value: str, loc: Loc) -> str | None:
        """A detector match (recorded): what replaces it ("" to drop), or None when it is
        masked already. Values repeat (a card in every order, a token in every request):
        each (rule, value) is checked and pseudonymized once, as the key makes it the same
        every time."""
        key = rule + "\x00" + value
        cache = self._det_cache
        out = cache.get(key)
        if self._deps is not None:
            self._deps.append((cache, key))
        if out is None and self._detector_masked(rule, value):
            out = _MASKED
            if len(cache) >= 50_000:
                cache.clear()
            cache[key] = out
        if out is _MASKED:
            self.record(rule, loc, True)
            return None
        self.record(rule, loc, False)
        if out is None:
            self._fresh += 1
            action = self.rules.action(rule)
            if action == "drop":
                out = ""
            elif action == "redact":
                out = self.k.redact(value)
            else:
                out = self._detector_pseudonym(rule, value)
            if len(cache) >= 50_000:
                cache.clear()
            cache[key] = out
        return out

    def named(
        self, value: str, kind: str, name: str, loc: Loc, whole: str | bool | None = False
    ) -> str | None:
        """Mask a value that is secret because of *where* it is (header, cookie, field...).

        Keeps a known format when the whole value has one (an e-mail stays an e-mail, a JWT a
        JWT, ``Bearer x`` keeps its scheme). Returns None to drop, ``value`` when unchanged.
        ``whole``: the detector matching all of ``value`` (or None) when the caller knows it.
        """
        if not value:
            return value
        core = self.named_core
        if core is not None and whole is False and self.record is core[1]:
            # the compiled core does the common values alone (and counts them itself)
            r: str | None = core[0](value, kind, core[2])
            if r is not NotImplemented:
                return r
        rule = kind
        cached = self._named_cache.get(value)
        if self._deps is not None:
            self._deps.append((self._named_cache, value))
        if cached is None and whole is False:
            whole = self.rules.scanner.whole(value)
        if cached is True or (cached is None and self.is_masked(value, whole)):
            self._remember(value, True)
            self.record(rule, loc, True)
            return value
        self.record(rule, loc, False)
        action = self.rules.action(kind, name)
        if action == "drop":
            return None
        if action == "redact":
            return self.k.redact(value)
        if isinstance(cached, str):
            return cached
        self._fresh += 1
        scheme, sp, cred = value.partition(" ")
        if sp and cred and scheme.lower() in ("bearer", "basic", "token"):
            if scheme.lower() == "basic":
                out = f"{scheme} {self.k.basic(cred.strip())}"
            else:
                out = f"{scheme} {self._opaque(cred.strip())}"
        else:
            out = self._opaque(value, whole)
        self._remember(value, out)
        return out

    def _remember(self, value: str, result: str | bool) -> None:
        """Values repeat (a session cookie on every request): remember what they mask to."""
        if len(self._named_cache) >= _NAMED_MAX:
            self._named_cache.clear()
        self._named_cache[value] = result

    def _opaque(self, value: str, whole: str | bool | None = False) -> str:
        det = self.rules.scanner.whole(value) if whole is False else whole
        if isinstance(det, str) and det not in ("bearer", "basic"):
            return self._detector_pseudonym(det, value)
        if value.startswith("eyJ") and value.count(".") == 2:
            return self.jwt(value)
        return self.k.fp(value, check=False)

    # == text ===============================================================================
    def text(self, text: str, loc: Loc) -> str | None:
        """Mask detector findings (and ``field=value`` pairs) in free text; None if unchanged.

        A pseudonym of another length (short values grow to carry their checksum, e-mails
        change length) can form a new match with the text next to it (``/To/`` + ``@x.io``);
        then the result is masked again, silently, until nothing changes, so that masking
        stays idempotent.
        """
        if len(text) > _TEXT_CACHED:
            return self._text(text, loc)
        hit = self._text_cache.get(text)
        if self._deps is not None:
            self._deps.append((self._text_cache, text))
        if hit is not None:  # the same text masks the same way: replay its findings here
            result, found = hit
            for rule, masked in found:
                self.record(rule, loc, masked)
            return result
        outer = self.record
        found = []
        same_loc = True

        def collect(rule: str, where: Loc, masked: bool) -> None:
            nonlocal same_loc
            same_loc = same_loc and where is loc
            found.append((rule, masked))
            outer(rule, where, masked)

        self.record = collect
        try:
            result = self._text(text, loc)
        finally:
            self.record = outer
        if same_loc:  # every finding at ``loc`` itself (not inside base64): replayable
            if len(self._text_cache) >= 20_000:
                self._text_cache.clear()
            self._text_cache[text] = (result, found)
        return result

    def _text_clean(self, text: str) -> None:
        """What :meth:`text` does with a text known to hold no finding (one scan of many,
        ``TextScanner.clean``): it records nothing, returns None and remembers that."""
        if len(text) > _TEXT_CACHED:
            return
        cache = self._text_cache
        if self._deps is not None:
            self._deps.append((cache, text))
        if text not in cache:
            if len(cache) >= 20_000:
                cache.clear()
            cache[text] = (None, [])

    def _text(self, text: str, loc: Loc) -> str | None:
        result, grew = self._text_once(text, loc)
        if result is None or not grew:
            return result
        record = self.record
        self.record = lambda rule, loc, masked: None
        try:
            for _ in range(4):
                again, _grew = self._text_once(result, loc)
                if again is None:
                    break
                result = again
        finally:
            self.record = record
        return result

    def _text_once(self, text: str, loc: Loc) -> tuple[str | None, bool]:
        out: list[str] = []
        grew = False
        pos = 0  # end of the text copied so far
        seen = 0  # end of the last finding handled: overlapping ones are skipped
        changed = False
        for f in sorted(self.rules.scanner.findings(text), key=lambda f: (f.start, -f.end)):
            if f.start < seen:
                continue  # overlaps an earlier finding (masked or not)
            seen = f.end
            v = text[f.start : f.end]
            if f.rule == "field":
                new = self.named(v, "field", "", loc)
                new = "" if new is None else new
            elif f.rule == "base64":
                b64 = self.base64(v, loc)
                if b64 is None:
                    continue
                new = b64
            else:
                det = self._detected(f.rule, v, loc)
                if det is None:
                    continue
                new = det
            if new != v:
                out.append(text[pos : f.start])
                out.append(new)
                pos = f.end
                changed = True
                grew = grew or len(new) != len(v)
        if not changed:
            return None, False
        out.append(text[pos:])
        return "".join(out), grew

    def base64(self, value: str, loc: Loc) -> str | None:
        """Mask what a base64 value decodes to (text or JSON) and re-encode it the same way;
        None when it does not decode to text or nothing inside needed masking."""
        dec = b64_text(value)
        if dec is None:
            return None
        inner, urlsafe = dec

        def where() -> str:
            return f"{resolve_loc(loc)}.base64"

        new: str | None = None
        if inner.lstrip()[:1] in ("{", "["):
            j = self.json_doc(inner, where())
            new = j if isinstance(j, str) else None
            if j is not False:
                return None if new is None else b64_encode(new, value, urlsafe)
        new = self.text(inner, where)
        return None if new is None else b64_encode(new, value, urlsafe)

    def json_doc(self, text: str, loc: str) -> str | bool:
        """Overridden by the JSON layer: base64 values may hold JSON."""
        raise NotImplementedError

    def jwt(self, token: str) -> str:
        """Overridden by the JSON layer: a JWT's claims are JSON."""
        raise NotImplementedError


#: one finding as recorded: (rule, location, already masked?)
Found = tuple[str, Loc, bool]
#: what :class:`Collect` keeps: the findings, the cache entries read (cache, key)
Memo = tuple[tuple[Found, ...], tuple[tuple[dict[str, Any], str], ...]]


class Collect:
    """``with Collect(masker) as c:`` runs a computation that records its findings as
    usual and keeps them, with the cache entries it read, for a memo (:meth:`memo`):
    :func:`replay` records them again exactly as running it again would (the caches hold
    every entry it read: each read is a hit again, which changes nothing).

    Findings can depend on the caches: a pseudonym made afresh (a JWT's) records the
    findings inside it, a cached one does not. So no memo is kept of a computation that
    made one, nor replayed once an entry it read is gone. Nested: what an inner one read,
    the outer one read too."""

    __slots__ = ("_fresh", "_m", "_outer", "_outer_deps", "deps", "found")

    def __init__(self, masker: ValueMasker) -> None:
        self._m = masker
        self.found: list[Found] = []
        self.deps: list[tuple[dict[str, Any], str]] = []

    def __enter__(self) -> Collect:
        m = self._m
        self._outer = m.record
        self._outer_deps = m._deps
        self._fresh = m._fresh
        m.record = self
        m._deps = self.deps
        return self

    def __call__(self, rule: str, where: Loc, masked: bool) -> None:
        self.found.append((rule, where, masked))
        self._outer(rule, where, masked)

    def __exit__(self, *exc: object) -> None:
        m = self._m
        m.record = self._outer
        m._deps = self._outer_deps
        if self._outer_deps is not None:
            self._outer_deps.extend(self.deps)

    def memo(self) -> Memo | None:
        """(findings, cache entries read) to replay, or None when running it again would
        record other findings (a pseudonym made afresh records what is inside it once)."""
        if self._m._fresh != self._fresh:
            return None
        return tuple(self.found), tuple(self.deps)


def replay(m: ValueMasker, memo: Memo | None) -> bool:
    """Record a :meth:`Collect.memo` again; False (nothing recorded) when a cache entry it
    read is gone (running it again could record more)."""
    if memo is None:
        return False
    found, deps = memo
    for d, k in deps:
        if k not in d:
            return False
    if len(m._named_cache) >= _NAMED_MAX:  # a hit there would clear it (:meth:`_remember`)
        return False
    if m._deps is not None:
        m._deps.extend(deps)
    record = m.record
    for rule, where, masked in found:
        record(rule, where, masked)
    return True


#: entries of the named cache (:meth:`ValueMasker._remember`) before it is cleared (the
#: compiled core's NAMED_MAX is the same: the memos of the head path rely on it); 8192 keeps
#: the hot values (sessions, tokens) and the dict small enough to stay in the CPU's caches
#: (50,000 cost ~7% on traffic full of new secrets)
_NAMED_MAX = 8192
#: texts up to this length are remembered by :meth:`ValueMasker.text`
_TEXT_CACHED = 256
#: the cached answer "already masked" of :meth:`ValueMasker._detected`
_MASKED = "\x00masked"


def _any_pseudonym(v: str) -> bool:
    """Any pseudonym of the generic kinds: a redaction marker or a checksummed value."""
    return (v[:10] == _REDACTED and REDACT_RE.fullmatch(v) is not None) or fp_is_pseudonym(v)


#: how a redaction marker (:data:`REDACT_RE`) starts: a slice compare before the regex
_REDACTED = "[redacted:"


def findings_summary(head: str, findings: Counter[str], already_masked: Counter[str]) -> str:
    """``head (email=60, header=40, ...), 12 already masked``: the counts of a run."""
    per = ", ".join(f"{k}={v}" for k, v in sorted(findings.items()))
    out = f"{head} ({per})" if per else head
    done = sum(already_masked.values())
    return f"{out}, {done} already masked" if done else out


def resolve_loc(loc: Loc) -> str:
    """The location text of a :data:`Loc`."""
    return loc if isinstance(loc, str) else loc()


def _token_keep(rule: str, v: str) -> int:
    if rule == "github_token":
        return 11 if v.startswith("github_pat_") else 4
    if rule == "stripe_key":
        return v.find("_", 3) + 1
    return _TOKEN_KEEP.get(rule, 0)
