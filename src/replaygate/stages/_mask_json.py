"""Masking JSON documents: a walk of the parsed document that masks values under secret
names and ``json_paths``, detector findings in strings, and the claims inside JWTs.

The raw-text pass of :meth:`~._mask_engine.Masker.body` hands the walk the strings that hold
a detector match (``hits``), so every other string is passed over without a scan.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ._detectors import FieldMatcher, Finding
from ._mask_body import PathPart, path_text
from ._mask_fp import CORE, fp_is_pseudonym
from ._mask_values import Loc, ValueMasker

__all__ = ["JsonMasker"]


class JsonMasker(ValueMasker):
    """:class:`ValueMasker` plus JSON documents (and the JWTs whose claims are JSON)."""

    #: the compiled JSON masker's settings (``CORE.mask_json``), or None: every JSON body
    #: is walked here. Set by :meth:`count_into`; a test sets it to None to compare.
    json_core: tuple[Any, ...] | None = None

    def count_into(self, findings: Counter[str], already: Counter[str]) -> None:
        """The recorder only counts (rule -> findings, already masked), into these: JSON
        bodies and the common values masked by name (:meth:`named`) may then take the
        compiled core (``make accel``), which counts there itself (locations are not
        built). Needs the default actions and no ``json_paths`` or custom patterns;
        otherwise a no-op. A test sets ``json_core`` and ``named_core`` to None to compare."""
        r = self.rules
        sc = r.scanner
        if CORE is None or r.json_paths or r.actions or sc.custom or not sc.prefilter:
            return
        if r.default_action != "pseudonymize":
            return
        leaf = CORE.LeafConfig(
            tuple(sc.detectors), tuple(sc.words), bool(sc.has_fields), sc.field_names
        )
        k = self.k
        self.json_core = (
            leaf,
            k.core,
            r.fields.known,
            r.fields.matches,
            self._named_cache,
            self._det_cache,
            findings,
            already,
            self._json_sub,
            self._json_named,
            self._json_detected,
            _float_text,
            CORE.JsonKeys(),
        )
        self.named_core = (CORE.mask_named, self.record, self.json_core)

    def _counting(self) -> bool:
        """The recorder in place is the counting one the compiled paths stand in for (not a
        recorder swapped in later, nor the one :meth:`text` puts in place to collect)."""
        core = self.named_core
        return core is not None and self.record is core[1]

    def _json_sub(self, raw: bytes, key: str | None, secret: bool) -> Any:
        """What the walk makes of one value the compiled masker leaves to Python (the JSON
        text ``raw``, under ``key`` or in a list): its new JSON text, None when unchanged,
        NotImplemented when it has to be dropped (the whole body then comes here)."""
        node = orjson.loads(raw)
        path: list[PathPart] = [] if key is None else [key]
        hits = None
        if type(node) is str and not secret:
            # as the walk of the whole body sees it: the raw-text pass's hits of this string
            t = raw.decode("utf-8")
            hits = _enclosing(t, list(self.rules.scanner.findings(t)), False)
        fields = self.rules.fields
        new, changed = self._walk(node, path, "json", fields, "field" if secret else "", hits)
        if not changed:
            return None
        if new is _DROP:
            return NotImplemented
        return _dumps(new)

    def _json_named(self, value: str, key: str) -> str | None:
        """:meth:`named` for a string under a secret key (the compiled masker's fallback)."""
        return self.named(value, "field", key, "json")

    def _json_detected(self, rule: str, value: str) -> str | None:
        """:meth:`_detected` for a string that is one whole match (the compiled masker's
        fallback for the rules it does not pseudonymize itself)."""
        return self._detected(rule, value, "json")

    def json_text(self, text: str, loc: str) -> str | None:
        """Mask a JSON document; None when it is not JSON or nothing changed."""
        r = self.json_doc(text, loc)
        return r if isinstance(r, str) else None

    def json_doc(
        self,
        text: str,
        loc: str,
        fields: FieldMatcher | None = None,
        hits: dict[str, str] | None = None,
    ) -> str | bool:
        """The masked document, or False when ``text`` is not JSON, True when unchanged.

        ``hits``: when the text has no escapes, every detector match in the raw text and the
        string that encloses it; other string values are then not scanned (the fast path).
        """
        try:
            doc = orjson.loads(text.encode("utf-8", "surrogateescape"))
        except orjson.JSONDecodeError:
            try:
                doc = json.loads(text)
            except (ValueError, RecursionError):
                return False
        try:
            new, changed = self._walk(doc, [], loc, fields or self.rules.fields, "", hits)
            return _dumps(new) if changed else True
        except RecursionError:  # absurdly deep nesting: mask it as plain text instead
            return False

    def _walk(
        self,
        node: Any,
        path: list[PathPart],
        loc: str,
        fields: FieldMatcher,
        secret: str,
        hits: dict[str, str] | None = None,
    ) -> tuple[Any, bool]:
        if isinstance(node, dict):
            changed = False
            out: dict[str, Any] = {}
            json_paths = self.rules.json_paths
            matches = fields.matches
            names = fields.known  # name -> secret?, for the names seen (one get, no call)
            for key, val in node.items():
                vt = type(val)
                if secret:
                    sec = secret
                elif names.get(key) or (key not in names and matches(key)):
                    sec = "field"
                elif json_paths and self._path_rule([*path, key]):
                    sec = "json"
                else:
                    # most nodes: nothing to find, no path needed; string leaves that are one
                    # whole detector match are masked here (the leaf cases of the recursion)
                    sec = ""
                    if vt is str:
                        if hits is not None:
                            rule = hits.get(val)
                            if rule is None:
                                out[key] = val
                                continue
                            if rule and rule != FIELD_ONLY:
                                one = self._one(val, rule, _where(loc, path, key))
                                out[key] = val if one is None else one
                                changed |= one is not None
                                continue
                    elif (
                        (val in _SHORT_INT if vt is int else vt is float or vt is bool)
                        or val is None
                        or (
                            vt is list
                            and hits is not None
                            and not json_paths
                            and _plain_strings(val, hits)  # ["tag", "tag"]: the walk's result
                        )
                    ):
                        out[key] = val
                        continue
                p = [*path, key]
                if sec and not secret and self.rules.action(sec, key) == "drop":
                    self.record(sec, f"{loc}.json:{path_text(p)}", False)
                    changed = True  # a secret key dropped whole, whatever its value
                    continue
                if sec and vt is str:  # a secret string leaf, as the recursion masks it
                    known: str | bool | None = False
                    if hits is not None:  # the raw-text pass saw what matches all of it
                        rule = hits.get(val)
                        if rule is None or rule == FIELD_ONLY:
                            known = None
                        else:
                            known = rule if rule != "base64" and rule else False
                    named = self.named(val, sec, key, _where(loc, path, key), known)
                    if named is None:
                        changed = True
                        continue
                    out[key] = named
                    changed |= named != val
                    continue
                new, ch = self._walk(val, p, loc, fields, sec, hits)
                if new is _DROP:
                    changed = True
                    continue
                out[key] = new
                changed |= ch
            return (out if changed else node), changed
        if isinstance(node, list):
            changed = False
            lst: list[Any] = []
            json_paths = self.rules.json_paths
            for i, val in enumerate(node):
                if not (secret or json_paths):
                    if type(val) is str and hits is not None:
                        rule = hits.get(val)
                        if rule is None:
                            lst.append(val)
                            continue
                        if rule and rule != FIELD_ONLY:
                            one = self._one(val, rule, _where(loc, path, i))
                            lst.append(val if one is None else one)
                            changed |= one is not None
                            continue
                    elif type(val) is not dict and _plain_leaf(val, hits):
                        lst.append(val)
                        continue
                p = [*path, i]
                sec = secret or ("json" if json_paths and self._path_rule(p) else "")
                new, ch = self._walk(val, p, loc, fields, sec, hits)
                if new is _DROP:
                    changed = True
                    continue
                lst.append(new)
                changed |= ch
            return (lst if changed else node), changed
        if isinstance(node, bool) or node is None:
            return node, False

        def where() -> str:
            return f"{loc}.json:{path_text(path)}"

        if isinstance(node, str):
            if secret:
                name = next((p for p in reversed(path) if isinstance(p, str)), "")
                whole: str | bool | None = False
                if hits is not None:  # the raw-text pass saw what matches all of it
                    rule = hits.get(node)
                    if rule is None or rule == FIELD_ONLY:
                        whole = None
                    else:
                        whole = rule if rule != "base64" and rule else False
                new = self.named(node, secret, name, where, whole)
                return (_DROP if new is None else new), new != node
            if hits is not None:
                rule = hits.get(node)
                if rule is None:
                    return node, False
                if rule and rule != FIELD_ONLY:
                    one = self._one(node, rule, where)
                    return (node if one is None else one), one is not None
            s = node.lstrip()[:1]
            if s in ("{", "[") and len(node) > 1:
                nested = self.json_doc(node, where(), fields)
                if isinstance(nested, str):
                    return nested, True
                if nested is True:
                    return node, False
            t = self.text(node, where)
            return (node if t is None else t), t is not None
        if isinstance(node, int):
            if secret:
                name = next((p for p in reversed(path) if isinstance(p, str)), "")
                return self._named_number(node, secret, name, where)
            # not looked up in the raw-text hits: there a card number after a comma (an
            # array ``[1,4111111111111111]``) is no match, the card pattern refusing a digit
            # run that follows ``,`` (a decimal separator in text)
            if 13 <= len(str(node)) <= 19 and "card" in self.rules.scanner.detectors:
                t = self.text(str(node), where)
                if t is not None and t.isdigit():
                    return int(t), True
            return node, False
        if isinstance(node, float) and secret:
            name = next((p for p in reversed(path) if isinstance(p, str)), "")
            new = self.named(repr(node), secret, name, where)
            return (_DROP if new is None else new), True
        return node, False

    def _one(self, value: str, rule: str, loc: Loc) -> str | None:
        """``value`` is one whole detector match (known from the raw-text pass)."""
        if rule == "base64":
            return self.text(value, loc)
        new = self._detected(rule, value, loc)
        return None if new is None or new == value else new

    def _named_number(self, node: int, kind: str, name: str, where: Loc) -> tuple[Any, bool]:
        text = str(node)
        if fp_is_pseudonym(text):
            self.record(kind, where, True)
            return node, False
        self.record(kind, where, False)
        action = self.rules.action(kind, name)
        if action == "drop":
            return _DROP, True
        if action == "redact":
            return self.k.redact(text), True
        return int(self.k.fp(text, numeric=True)), True

    def _secret_key(self, key: str, path: list[PathPart], fields: FieldMatcher) -> str:
        """``field`` (a secret name), ``json`` (a json_paths rule) or "" (not secret)."""
        if fields.matches(key):
            return "field"
        return "json" if self.rules.json_paths and self._path_rule(path) else ""

    def _path_rule(self, path: Sequence[PathPart]) -> bool:
        return any(jp.matches(path) for jp in self.rules.json_paths)

    def jwt(self, token: str) -> str:
        """A well-formed JWT: header kept, identifying claims masked, signature replaced."""
        parts = token.split(".")
        if self.k.jwt_is_pseudonym(token):
            return token
        try:
            header = json.loads(_b64url_decode(parts[0]))
            payload = json.loads(_b64url_decode(parts[1]))
            if isinstance(payload, dict | list):
                payload = self._walk(payload, [], "jwt", self._jwt_fields, "")[0]
            h = _b64url(_dumps(header).encode())
            p = _b64url(_dumps(payload).encode())
        except (ValueError, binascii.Error, RecursionError):  # not a real JWT inside
            h = _b64url(b'{"alg":"none","typ":"JWT"}')
            p = _b64url(_dumps({"sub": self.k.fp(token)}).encode())
        return f"{h}.{p}.{self.k.jwt_signature(token, len(parts[2]) if len(parts) > 2 else 43)}"


class _Drop:
    pass


_DROP: Any = _Drop()


#: integers in this range have at most 12 characters: too short for a card number
_SHORT_INT = range(-(10**10), 10**12)


def _where(loc: str, path: list[PathPart], last: PathPart) -> Callable[[], str]:
    """The location of ``path + [last]``, built only if a recorder asks for it."""
    return lambda: f"{loc}.json:{path_text([*path, last])}"


def _plain_leaf(val: Any, hits: dict[str, str] | None) -> bool:
    """A value under no secret name that :meth:`Masker._walk` would return unchanged, known
    without a call: a string that holds no detector hit of the raw-text pass, a number too
    short to be a card, a boolean or null."""
    t = type(val)
    if t is str:
        return hits is not None and val not in hits
    if t is int:
        return val in _SHORT_INT
    return t is float or t is bool or val is None


def _plain_strings(values: list[Any], hits: dict[str, str]) -> bool:
    """A list of strings without any detector hit of the raw-text pass, under no secret name
    and no ``json_paths``: :meth:`JsonMasker._walk` would return it unchanged."""
    for v in values:  # noqa: SIM110 (a loop: all() over a generator costs twice as much)
        if type(v) is not str or v in hits:
            return False
    return True


#: a hits value: "" (scan the string) for a string that only named-field matches touch
FIELD_ONLY = "\x00field"
#: detectors whose match may hold a quote (a private key block, an AWS secret's prefix)
_CROSSING = frozenset({"private_key", "aws_secret_key"})


def _enclosing_py(t: str, found: list[Finding], custom: bool = False) -> dict[str, str]:
    """Each match and the JSON string around it (``t`` has no escapes, so the quotes before
    and after a match delimit the string value that holds it) -> the rule when the match is
    the whole string (no need to scan it again), else "" (scan it)."""
    # FIELD_ONLY: "" for a string that only named-field matches touch, so that no detector
    # can match all of it (the matches of a string's own text are the ones seen in it here:
    # every look-around takes a quote as it takes the end of a text); exact unless a match
    # can run over a quote into another string (private keys, AWS secrets, custom patterns)
    marks = not custom and not any(f.rule in _CROSSING for f in found)
    out: dict[str, str] = {}
    for f in found:
        v = t[f.start : f.end]
        qs = t.rfind('"', 0, f.start)
        qe = t.find('"', f.end)
        if f.rule == "field":
            if not marks:
                out.setdefault(v, "")
                if qs >= 0 and qe >= 0:
                    out[t[qs + 1 : qe]] = ""
                continue
            out.setdefault(v, FIELD_ONLY)
            if qs >= 0 and qe >= 0:
                enc = t[qs + 1 : qe]
                out[enc] = FIELD_ONLY if out.get(enc, FIELD_ONLY) == FIELD_ONLY else ""
            continue
        if qs + 1 == f.start and qe == f.end:
            if out.get(v, f.rule) == f.rule:
                out[v] = f.rule
            else:
                out[v] = ""  # two rules for one value: let the scan decide
            continue
        if out.get(v, FIELD_ONLY) == FIELD_ONLY:
            out[v] = ""
        if qs >= 0 and qe >= 0:
            out[t[qs + 1 : qe]] = ""
    return out


def _enclosing_core(t: str, found: list[Finding], custom: bool = False) -> dict[str, str]:
    """:func:`_enclosing_py` by the compiled core (``make accel``): the same dictionary."""
    assert CORE is not None
    out: dict[str, str] = CORE.enclosing(t, found, custom, FIELD_ONLY, _CROSSING)
    return out


_enclosing = _enclosing_py if CORE is None else _enclosing_core


def _float_text(token: bytes) -> bytes:
    """How ``orjson.dumps`` writes the JSON number ``token`` (the compiled masker asks for
    the numbers it cannot tell are written that way already)."""
    return orjson.dumps(orjson.loads(token))


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _dumps(doc: Any) -> str:
    try:
        return orjson.dumps(doc).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
