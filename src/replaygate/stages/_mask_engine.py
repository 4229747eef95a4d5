"""The masking engine: walks one HTTP message (start line, headers, body) and masks it.

:class:`Masker` is built once from a compiled rule set and a key and is then pure: the same
message always masks to the same bytes. It reports every finding through ``record`` (rule,
location, already-masked?) so the stage can count and ``scan`` can report, never with values.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote, quote_plus

import orjson

from ..model import HTTPMessage, Request, decode_content
from ._detectors import FieldMatcher, Finding, TextScanner, b64_encode, b64_text
from ._mask_body import (
    JsonPath,
    PathPart,
    body_kind,
    chunk_trailers,
    encode_content,
    looks_like_text,
    map_multipart,
    map_urlencoded,
    path_text,
)
from ._mask_fp import REDACT_RE, Keyed, fp_is_pseudonym

__all__ = ["Loc", "Masker", "Recorder", "Rules", "resolve_loc"]

M = TypeVar("M", bound=HTTPMessage)
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
#: a comma that starts another cookie in a folded ``Set-Cookie`` (not the one in Expires)
_SET_COOKIE_SPLIT = re.compile(r"(,[ \t]*)(?=[^;,=\s]+=)")
_URL_HEADERS = frozenset({"location", "referer", "content-location", "origin"})
_SKIP_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "content-encoding", "connection", "date"}
)
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
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


class Masker:
    """Masks messages according to :class:`Rules` with the pseudonyms of one key."""

    def __init__(self, rules: Rules, key: bytes, record: Recorder | None = None) -> None:
        self.rules = rules
        self.k = Keyed(key)
        self.record: Recorder = record or (lambda rule, loc, masked: None)
        self._jwt_fields = rules.fields.extended(JWT_CLAIMS)
        self._named_cache: dict[str, str | bool] = {}
        self._det_cache: dict[str, str] = {}

    # == values ============================================================================
    def is_masked(self, value: str, whole: str | bool | None = False) -> bool:
        """True for anything this engine (with any key) could have produced. ``whole``:
        the detector matching all of ``value`` when the caller already knows it."""
        if REDACT_RE.fullmatch(value) or fp_is_pseudonym(value):
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
        if rule == "email" and k.email_is_pseudonym(v):
            return True
        if rule == "card" and k.card_is_pseudonym(v):
            return True
        if rule == "jwt" and k.jwt_is_pseudonym(v):
            return True
        if REDACT_RE.fullmatch(v) or fp_is_pseudonym(v):  # any of our pseudonyms
            return True
        if rule == "email":
            return k.email_is_pseudonym(v)
        if rule == "card":
            return k.card_is_pseudonym(v)
        if rule == "jwt":
            return k.jwt_is_pseudonym(v)
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

    def _apply(self, action: str, rule: str, value: str) -> str | None:
        if action == "drop":
            return None
        if action == "redact":
            return self.k.redact(value)
        key = rule + "\x00" + value
        out = self._det_cache.get(key)
        if out is None:
            out = self._detector_pseudonym(rule, value)
            if len(self._det_cache) >= 50_000:
                self._det_cache.clear()
            self._det_cache[key] = out
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
        rule = kind
        cached = self._named_cache.get(value)
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
        if len(self._named_cache) >= 50_000:
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
            elif self._detector_masked(f.rule, v):
                self.record(f.rule, loc, True)
                continue
            else:
                self.record(f.rule, loc, False)
                new = self._apply(self.rules.action(f.rule), f.rule, v) or ""
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

    # == JSON ===============================================================================
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
            for key, val in node.items():
                if secret:
                    sec = secret
                elif fields.matches(key):
                    sec = "field"
                elif json_paths and self._path_rule([*path, key]):
                    sec = "json"
                else:
                    sec = ""
                    if _plain_leaf(val, hits):  # most nodes: nothing to find, no path needed
                        out[key] = val
                        continue
                p = [*path, key]
                if sec and not secret and self.rules.action(sec, key) == "drop":
                    self.record(sec, f"{loc}.json:{path_text(p)}", False)
                    changed = True  # a secret key dropped whole, whatever its value
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
                if not (secret or json_paths) and _plain_leaf(val, hits):
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
                    whole = None if rule is None else (rule if rule != "base64" and rule else False)
                new = self.named(node, secret, name, where, whole)
                return (_DROP if new is None else new), new != node
            if hits is not None:
                rule = hits.get(node)
                if rule is None:
                    return node, False
                if rule:
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
        if self._detector_masked(rule, value):
            self.record(rule, loc, True)
            return None
        self.record(rule, loc, False)
        new = self._apply(self.rules.action(rule), rule, value) or ""
        return None if new == value else new

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

    # == messages ===========================================================================
    def message(self, msg: M, side: str) -> M:
        """Mask one request or response; the same object when nothing changed."""
        headers = msg.headers
        start = msg.start_line
        new_start = start
        if isinstance(msg, Request) and len(start) >= 2 and not self._target_clean(start[1]):
            target = self.target(start[1], f"{side}")
            if target is not None:
                new_start = [start[0], target, *start[2:]]
        sc = self.rules.scanner
        # one scan of every header line: when nothing can be found in it, only the rules by
        # header name remain to apply (the values need no detector pass each)
        lines = bytes(msg.raw[: msg.head_len]).decode("latin-1").partition("\n")[2]
        folded = "\n " in lines or "\n\t" in lines  # obs-fold joins lines: not the same text
        scan = folded or not sc.clean(lines)
        new_headers = self.headers(headers, side, scan=scan)
        out = msg
        if new_start is not start or new_headers is not headers:
            out = cast(M, msg.with_head(" ".join(new_start), new_headers))
        body = self.body(out, side)
        trailers = chunk_trailers(bytes(out.body_raw)) if out.is_chunked else None
        if trailers is not None:
            return self._with_trailers(out, body, trailers, side)
        if body is not None:
            out = cast(M, out.with_body(body))
        return out

    def _with_trailers(
        self, msg: M, body: bytes | None, trailers: tuple[int, bytes], side: str
    ) -> M:
        """A chunked message with trailer fields (``X-Api-Key``, ``Authorization`` after the
        last chunk): the trailers are masked like headers and stay trailers; the body keeps
        its chunks when unchanged, else becomes one chunk."""
        at, raw_tr = trailers
        text = raw_tr.decode("latin-1")
        lines = [ln.rstrip("\r") for ln in text.split("\n")]
        fields: list[tuple[str, str]] = []
        for ln in lines:
            name, sep, value = ln.partition(":")
            if sep and name.strip():
                fields.append((name.strip(), value.strip(" \t")))
        new_fields = self.headers(fields, f"{side}.trailer")
        odd = [ln for ln in lines if ln and ":" not in ln]  # not a field: scan it as text
        new_odd = [self.text(ln, f"{side}.trailer") or ln for ln in odd]
        if body is None and new_fields is fields and new_odd == odd:
            return msg
        head = bytes(msg.raw[: msg.head_len])
        if body is None:
            chunks = bytes(msg.body_raw[:at])
        else:
            chunks = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n"
        tr = "".join(f"{k}: {v}\r\n" for k, v in new_fields)
        tr += "".join(f"{ln}\r\n" for ln in new_odd)
        raw = head + chunks + tr.encode("latin-1", "replace") + b"\r\n"
        return type(msg)(
            raw, ts_first_ns=msg.ts_first_ns, ts_last_ns=msg.ts_last_ns, head_len=len(head)
        )

    def target(self, target: str, side: str) -> str | None:
        """Mask the path and query of a request target (or URL); None when unchanged."""
        prefix = ""
        t = target
        if "://" in t[:10]:
            scheme, _, rest = t.partition("://")
            auth, slash, rest2 = rest.partition("/")
            if "@" in auth:  # user:password@host
                info, _, host = auth.rpartition("@")
                new_info = self.named(info, "url_userinfo", "", f"{side}.userinfo") or ""
                auth = f"{new_info}@{host}"
            prefix = f"{scheme}://{auth}"
            t = slash + rest2
        t, h, frag = t.partition("#")
        path, q, query = t.partition("?")
        new_path = self.path(path, f"{side}.path")
        new_query = None
        if q:
            new_query = self.urlencoded(query, "query", f"{side}.query")
        out = prefix + (path if new_path is None else new_path)
        if q:
            out += "?" + (query if new_query is None else new_query)
        if h:  # OAuth implicit flow: ``#access_token=...&id_token=...``
            new_frag = self.urlencoded(frag, "query", f"{side}.fragment")
            out += "#" + (frag if new_frag is None else new_frag)
        return None if out == target else out

    def urlencoded(self, text: str, kind: str, loc: str) -> str | None:
        """A query string, fragment or form body: pairs by name and detectors, names too."""
        return map_urlencoded(
            text,
            lambda n, v: self.pair(kind, n, v, f"{loc}:{n}"),
            _quote_value,
            lambda n: self.text(n, f"{loc}.name"),
        )

    def path(self, path: str, loc: str) -> str | None:
        from urllib.parse import unquote

        segs = path.split("/")
        changed = False
        for i, seg in enumerate(segs):
            if not seg:
                continue
            raw = unquote(seg)
            new = self.text(raw, loc)
            if new is not None:
                segs[i] = quote(new, safe="@:+,;=!$&'()*~")
                changed = True
        return "/".join(segs) if changed else None

    def pair(self, kind: str, name: str, value: str, loc: str) -> str | None:
        """One query parameter or form field."""
        r = self.rules
        names = r.query if kind == "query" else r.form
        if name.lower() in names or r.fields.matches(name):
            return self.named(value, kind if name.lower() in names else "field", name, loc)
        s = value.lstrip()[:1]
        if s in ("{", "[") and len(value) > 1:
            nested = self.json_text(value, loc)
            if nested is not None:
                return nested
        new = self.text(value, loc)
        return value if new is None else new

    def _target_clean(self, target: str) -> bool:
        """Nothing to mask in a request target: no finding possible in any segment or pair
        and no query parameter masked by name."""
        r = self.rules
        if not r.scanner.clean(target, target=True):
            return False
        rest, h, frag = target.partition("#")
        _path, q, query = rest.partition("?")
        if not q and not h:
            return True
        names = r.query
        for pair in [*query.split("&"), *frag.split("&")]:
            name = pair.partition("=")[0].replace("+", " ")
            if name.lower() in names or r.fields.matches(name):
                return False
        return True

    def headers(
        self, headers: list[tuple[str, str]], side: str, *, scan: bool = True
    ) -> list[tuple[str, str]]:
        r = self.rules
        out: list[tuple[str, str]] = []
        changed = False
        for name, value in headers:
            ln = name.lower()
            loc = f"{side}.header:{name}"
            new: str | None
            value = value.strip()
            if not value or ln in r.keep_headers or ln in _SKIP_HEADERS:
                new = value
            elif ln in ("cookie", "set-cookie") and (ln in r.headers or r.cookies):
                if ln in r.headers and r.action("header", ln) == "drop":
                    self.record("header", loc, False)
                    new = None
                else:
                    new = self.cookies(value, ln, side)
            elif ln in r.headers or r.fields.matches(name):
                if ln in _AUTH_HEADERS or ln in r.headers:
                    new = self.named(value, "header", ln, loc)
                else:
                    new = self.named(value, "field", ln, loc)
            elif ln in _URL_HEADERS:
                new = self.target(value, f"{side}.header:{name}") or value
            elif scan:
                new = self.text(value, loc) or value
            else:
                new = value
            if new is None:
                changed = True
                continue
            if new != value:
                changed = True
            out.append((name, new))
        return out if changed else headers

    def cookies(self, value: str, header: str, side: str) -> str | None:
        """Mask cookie values (names kept); ``Set-Cookie`` attributes kept (and scanned).

        A ``Set-Cookie`` folded into one line (``a=1; Path=/, b=2; Path=/``, as some
        proxies and HTTP libraries join them) holds several cookies: each is masked."""
        if header == "set-cookie":
            parts = _SET_COOKIE_SPLIT.split(value)
            if len(parts) > 1:
                each, seps = parts[::2], parts[1::2]
                outs = [self._cookie_list(p, header, side) for p in each]
                if all(o is not None and o == p for o, p in zip(outs, each, strict=True)):
                    return value
                res = ""
                for i, o in enumerate(outs):
                    if o is not None:
                        res += (seps[i - 1] if i else ", ") if res else ""
                        res += o
                return res or None
        return self._cookie_list(value, header, side)

    def _cookie_list(self, value: str, header: str, side: str) -> str | None:
        r = self.rules
        every = header in r.headers
        if header == "set-cookie":
            first, semi, attrs = value.partition(";")
            pairs = [first]
            if attrs:
                attrs = self.text(attrs, f"{side}.cookie_attributes") or attrs
        else:
            pairs, semi, attrs = value.split(";"), "", ""
        out: list[str] = []
        for pair in pairs:
            n, eq, v = pair.partition("=")
            cname = n.strip()
            if not eq or not (every or cname.lower() in r.cookies):
                out.append(self.text(pair, f"{side}.header:{header}") or pair)
                continue
            lead = v[: len(v) - len(v.lstrip())]
            val = v.strip()
            quoted = len(val) >= 2 and val[0] == val[-1] == '"'
            inner = val[1:-1] if quoted else val
            new = self.named(inner, "cookie", cname, f"{side}.cookie:{cname}")
            if new is None:
                continue
            out.append(f"{n}={lead}" + (f'"{new}"' if quoted else new))
        if not out:
            return None
        return ";".join(out) + semi + attrs

    # -- bodies ----------------------------------------------------------------------------
    def body(self, msg: HTTPMessage, side: str) -> bytes | None:
        """The masked (unframed, re-encoded) body, or None when nothing changed."""
        if len(msg.body_raw) == 0:
            return None
        framed = msg.body()
        encodings = msg.header_values("content-encoding")
        data = framed
        decoded_ok = True
        if encodings:
            try:
                data = decode_content(framed, encodings)
            except Exception:
                decoded_ok = False
        ctype = msg.header("content-type") or ""
        kind = body_kind(ctype, data, self.rules.skip_types)
        loc = f"{side}.body"
        new: bytes | None
        if kind == "binary" and looks_like_text(data):
            kind = body_kind("", data, ())  # text labelled binary (octet-stream): scan it
        if kind == "binary":
            self.record("skipped_binary", loc, True)
            return None
        if kind == "multipart":
            boundary = _boundary(ctype)
            if boundary:
                new = map_multipart(
                    data,
                    boundary,
                    lambda *a: self._part(*a, side=side),
                    lambda b: self._text_bytes(b, loc),
                )
            else:
                new = self._text_bytes(data, loc)
        elif kind == "form":
            t = data.decode("utf-8", "surrogateescape")
            m = self.urlencoded(t, "form", f"{side}.form")
            new = None if m is None else m.encode("utf-8", "surrogateescape")
        elif kind == "json":
            t = data.decode("utf-8", "surrogateescape")
            sc = self.rules.scanner
            escaped = "\\" in t
            if sc.prefilter and not (escaped or self.rules.json_paths) and not sc.quick(t):
                return None  # no trigger, no field word: nothing to find (one scan)
            found = list(sc.findings(t))
            if not (found or escaped or self.rules.json_paths or self.rules.fields.mentioned(t)):
                return None
            j = self.json_doc(t, side, hits=None if escaped else _enclosing(t, found))
            if j is True:
                return None
            if j is False:  # not JSON after all: scan it as text
                new = self._text_bytes(data, loc)
            else:
                new = str(j).encode("utf-8", "surrogateescape")
        else:
            new = self._text_bytes(data, loc)
        if new is None:
            return None
        if encodings and decoded_ok:
            try:
                return encode_content(new, encodings)
            except ValueError:
                return new
        return new

    def _text_bytes(self, data: bytes, loc: str) -> bytes | None:
        t = self.text(data.decode("utf-8", "surrogateescape"), loc)
        return None if t is None else t.encode("utf-8", "surrogateescape")

    def _part(
        self, name: str, ctype: str, is_file: bool, content: bytes, *, side: str
    ) -> bytes | None:
        r = self.rules
        loc = f"{side}.multipart:{name}"
        if name.lower() in r.form or r.fields.matches(name):
            text = content.decode("utf-8", "surrogateescape")
            kind = "form" if name.lower() in r.form else "field"
            new = self.named(text, kind, name, loc)
            return None if new is None else new.encode("utf-8", "surrogateescape")
        kind = body_kind(ctype, content, r.skip_types)
        if kind == "binary" and looks_like_text(content):
            kind = body_kind("", content, ())
        if kind == "binary":
            return content
        t = content.decode("utf-8", "surrogateescape")
        if kind == "json":
            j = self.json_doc(t, loc)
            if isinstance(j, str):
                return j.encode("utf-8", "surrogateescape")
            if j is True:
                return content
        new_t = self.text(t, loc)
        return content if new_t is None else new_t.encode("utf-8", "surrogateescape")


class _Drop:
    pass


_DROP: Any = _Drop()


#: integers in this range have at most 12 characters: too short for a card number
_SHORT_INT = range(-(10**10), 10**12)


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


def _enclosing(t: str, found: list[Finding]) -> dict[str, str]:
    """Each match and the JSON string around it (``t`` has no escapes, so the quotes before
    and after a match delimit the string value that holds it) -> the rule when the match is
    the whole string (no need to scan it again), else "" (scan it)."""
    out: dict[str, str] = {}
    for f in found:
        v = t[f.start : f.end]
        qs = t.rfind('"', 0, f.start)
        qe = t.find('"', f.end)
        if qs + 1 == f.start and qe == f.end and f.rule != "field":
            if out.get(v, f.rule) == f.rule:
                out[v] = f.rule
            else:
                out[v] = ""  # two rules for one value: let the scan decide
            continue
        out.setdefault(v, "")
        if qs >= 0 and qe >= 0:
            out[t[qs + 1 : qe]] = ""
    return out


def resolve_loc(loc: Loc) -> str:
    """The location text of a :data:`Loc`."""
    return loc if isinstance(loc, str) else loc()


_loc = resolve_loc


def _token_keep(rule: str, v: str) -> int:
    if rule == "github_token":
        return 11 if v.startswith("github_pat_") else 4
    if rule == "stripe_key":
        return v.find("_", 3) + 1
    return _TOKEN_KEEP.get(rule, 0)


def _quote_value(s: str) -> str:
    return quote_plus(s, safe="@:,/*!$'()~", errors="surrogateescape")


def _boundary(ctype: str) -> str:
    for part in ctype.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.lower() == "boundary":
            return v.strip().strip('"')
    return ""


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _dumps(doc: Any) -> str:
    try:
        return orjson.dumps(doc).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
