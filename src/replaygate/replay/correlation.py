"""Session and token correlation: make recorded sessions work against staging.

A recorded session carries production's cookies, CSRF tokens, access tokens and created ids;
staging issues its own. This hook learns, for every replayed exchange, the value the
*original* response issued and the value *staging* issued for the same response (same cookie
name, same JSON path, same header, same regex match, same position in a Location URL), then
substitutes staging's value wherever the original value appears in later requests of the same
session: cookies, headers, the target (path and query), JSON and form bodies.

Scope: values are learned per (target, session); session = ``ex.session``, else the original
connection. A value not found in the session is looked up among everything learned for the
target, since issued tokens are unique (this handles sessions spread over connections).

Token-like values (cookies, tokens, CSRF) are replaced wherever they occur, bounded so that a
token is never replaced inside a longer token, and only when at least ``min_length`` long.
Id-like values (``kind = "location"`` and rules with ``id = true``) are only replaced where a
whole path segment, query/form value or JSON value equals them, so ``/orders/12`` does not
touch ``/orders/123``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import orjson

from ..jsonpath import JsonPath
from ..model import Exchange, HTTPMessage, Request
from ._correlation_rules import DEFAULT_RULES, CorrelationConfig, CorrelationRule

__all__ = [
    "DEFAULT_RULES",
    "CorrelationConfig",
    "CorrelationHook",
    "CorrelationRule",
    "session_of",
]


def session_of(ex: Exchange) -> str:
    """The session an exchange belongs to (``ex.session``, else its connection, else "")."""
    if ex.session:
        return ex.session
    if ex.conn is not None:
        return str(ex.conn)
    return ""


@dataclass
class _Scope:
    """Values learned in one session (or, as a fallback, in one target): at most ``cap`` of
    each kind, the oldest forgotten first, so a long replay keeps constant per-request cost."""

    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # orig -> (new, rule)
    ids: dict[str, tuple[str, str]] = field(default_factory=dict)
    cap: int = 256
    version: int = 0
    _heads: dict[str, list[str]] = field(default_factory=dict)
    _heads_version: int = -1
    _ids_rx: re.Pattern[str] | None = None
    _ids_version: int = -1

    def learn(self, orig: str, new: str, rule: str, is_id: bool) -> None:
        if not is_id:  # percent-encoded forms too (query strings, form bodies, cookies)
            for enc in (quote, quote_plus):
                e = enc(orig, safe="")
                if e != orig:
                    self._learn(self.tokens, e, enc(new, safe=""), rule)
        self._learn(self.ids if is_id else self.tokens, orig, new, rule)

    def _learn(self, table: dict[str, tuple[str, str]], orig: str, new: str, rule: str) -> None:
        if table.get(orig, ("",))[0] != new:
            table.pop(orig, None)
            table[orig] = (new, rule)  # (re)inserted last: the most recent
            while len(table) > self.cap:
                del table[next(iter(table))]
            self.version += 1

    def heads(self) -> dict[str, list[str]]:
        """Learned tokens by their leading ``[A-Za-z0-9_-]`` run, longest first: a request is
        searched run by run with dict lookups (no regex of all values to recompile whenever
        one more is learned)."""
        if self._heads_version != self.version:
            heads: dict[str, list[str]] = {}
            for orig in sorted(self.tokens, key=len, reverse=True):
                m = _RUN.match(orig)
                heads.setdefault(m.group() if m else "", []).append(orig)
            self._heads = heads
            self._heads_version = self.version
        return self._heads

    def ids_rx(self) -> re.Pattern[str] | None:
        """Ids as whole JSON / form values (recompiled only when ids change)."""
        if self._ids_version != self.version:
            keys = sorted(self.ids, key=len, reverse=True)
            self._ids_rx = (
                re.compile(
                    r'(?P<pre>[:\[,]\s*"?|(?:^|&)[^=&]*=)(?P<v>'
                    + "|".join(map(re.escape, keys))
                    + r')(?P<post>"?\s*(?=[,}\]])|(?=&|$))'
                )
                if keys
                else None
            )
            self._ids_version = self.version
        return self._ids_rx


class CorrelationHook:
    """A :class:`~replaygate.replay.hooks.ReplayHook` that carries staging's session values."""

    #: It learns only from a recorded response next to its replayed one and substitutes only
    #: what it learned, so on exchanges without a recorded response (request-only
    #: recordings) it does nothing: the lean ``--max`` path (:mod:`._lean`), which reads
    #: request-only files, runs as if it were not there.
    idle_without_responses = True

    def __init__(self, config: CorrelationConfig | None = None) -> None:
        self.config = config or CorrelationConfig()
        self._scopes: dict[tuple[str, str], _Scope] = {}
        self._targets: dict[str, _Scope] = {}
        self._subs: Counter[str] = Counter()
        self._learned: Counter[str] = Counter()
        self._regex = [
            (r, re.compile(r.name, re.IGNORECASE | re.DOTALL))
            for r in self.config.rules
            if r.kind == "regex"
        ]
        self._paths = {
            r.name: JsonPath.parse(r.name)
            for r in self.config.rules
            if r.kind == "json" and r.name.startswith("$")
        }
        # rules that are JSON paths, in rule order (the first that matches a value wins)
        self._path_rules = [
            (r, self._paths[r.name]) for r in self.config.rules if r.name in self._paths
        ]
        # head rules in order, each with the lower-case bytes the original head must contain
        # for the rule to find a value there (None: always look)
        self._head_rules = [
            (r, _needle(r)) for r in self.config.rules if r.kind in ("cookie", "header", "location")
        ]
        self._json_names = {
            _norm(r.name): r for r in self.config.rules if r.kind == "json" and r.name[:1] != "$"
        }

    # -- ReplayHook ----------------------------------------------------------------------
    def after_response(self, ex: Exchange) -> None:
        if not self.config.enabled or ex.response is None or ex.replayed is None:
            return
        target = ex.meta.get("target", "")
        key = (target, session_of(ex))
        scope = self._scopes.pop(key, None) or _Scope()
        self._scopes[key] = scope  # most recently used last
        while len(self._scopes) > _MAX_SESSIONS:
            del self._scopes[next(iter(self._scopes))]
        glob = self._targets.setdefault(target, _Scope(cap=1024))
        created: bool | None = None  # worked out only for a value of a ``created`` rule
        for orig, new, rule, is_id in self._pairs(ex.response, ex.replayed):
            if orig == new or not orig or not new:
                continue
            if rule.created:
                if created is None:
                    created = (
                        ex.request.method.upper() in ("POST", "PUT", "PATCH")
                        and 200 <= ex.response.status < 300
                        and 200 <= ex.replayed.status < 300
                    )
                if not created:
                    continue
            if not is_id and len(orig) < self.config.min_length:
                continue
            scope.learn(orig, new, rule.rule_name, is_id)
            glob.learn(orig, new, rule.rule_name, is_id)
            self._learned[rule.rule_name] += 1

    def before_send(self, ex: Exchange, request: Request) -> Request:
        if not self.config.enabled:
            return request
        target = ex.meta.get("target", "")
        glob = self._targets.get(target)
        if glob is None or not (glob.tokens or glob.ids):
            # nothing learned for the target (a session's values are in its target's too)
            return request
        scopes = [
            s
            for s in (self._scopes.get((target, session_of(ex))), glob)
            if s is not None and (s.tokens or s.ids)  # an empty scope substitutes nothing
        ]
        if not scopes:
            return request
        out = request
        for sc in scopes:
            out = self._substitute(out, sc)
        return out

    def issued_values(self, ex: Exchange) -> Iterator[str]:
        """Values the *original* response of ``ex`` issued under these rules (for
        ``--order sessions``: a later request carrying one waits for ``ex``)."""
        resp = ex.response
        if not self.config.enabled or resp is None:
            return
        created = ex.request.method.upper() in ("POST", "PUT", "PATCH") and (
            200 <= resp.status < 300
        )
        for v, _, rule, is_id in self._pairs(resp, resp):
            if not v or (rule.created and not created):
                continue
            if is_id or len(v) >= self.config.min_length:
                yield v

    def stats(self) -> dict[str, int]:
        """Substitutions made per rule (``learned:<rule>`` counts values learned)."""
        d = dict(self._subs)
        d.update({f"learned:{k}": v for k, v in self._learned.items()})
        return d

    def summary(self) -> str:
        """One line for the end of a replay: ``correlation: 12 substitutions (set-cookie=8,
        json:csrf_token=4), 3 values learned``. Counts only, never values."""
        subs = sum(self._subs.values())
        per = ", ".join(f"{k}={v}" for k, v in sorted(self._subs.items()))
        learned = sum(self._learned.values())
        return (
            f"correlation: {subs} substitution{'s' * (subs != 1)}"
            + (f" ({per})" if per else "")
            + f", {learned} value{'s' * (learned != 1)} learned"
        )

    # -- learning ------------------------------------------------------------------------
    def _pairs(
        self, orig: HTTPMessage, new: HTTPMessage
    ) -> Iterator[tuple[str, str, CorrelationRule, bool]]:
        # Every value is issued by the *original* response: what it cannot carry is never
        # parsed, decoded or looked for in staging's answer (a cheap look at the original
        # head first; names are ASCII-lowered bytes, a superset of the parsed names' match).
        ohead = orig.raw[: orig.head_len].lower()
        o_dec: bytes | None = None  # decoded bodies, computed once
        n_dec: bytes | None = None
        oh: dict[str, str] | None = None  # first value of each header, by lower-case name
        nh: dict[str, str] = {}
        for rule, needle in self._head_rules:
            if needle is not None and needle not in ohead:
                continue  # the original has no such header: no value from this rule
            if rule.kind == "cookie":
                oc, nc = _set_cookies(orig), _set_cookies(new)
                for name, ov in oc.items():
                    if (rule.name == "*" or name == rule.name) and name in nc:
                        yield ov, nc[name], rule, rule.id
            elif rule.kind == "header":
                if oh is None:
                    oh, nh = _first_values(orig), _first_values(new)
                ov2, nv2 = oh.get(rule.name.lower()), nh.get(rule.name.lower())
                if ov2 and nv2:
                    yield ov2, nv2, rule, rule.id
            elif rule.kind == "location":
                yield from ((o, n, rule, True) for o, n in _location_ids(orig, new))
        if self._json_names or self._paths:
            o_dec = _decoded(orig, ohead)
            o_json = _json_of(orig, o_dec) if _maybe_json(ohead, o_dec) else _UNSET
            if o_json is not _UNSET:
                n_dec = new.decoded_body()
                n_json = _json_of(new, n_dec)
                if n_json is not _UNSET:
                    try:
                        ovals = dict(self._json_values(o_json))
                        nvals = dict(self._json_values(n_json))
                    except RecursionError:  # absurdly deep documents: nothing learned
                        ovals, nvals = {}, {}
                    for key, (ov, rule) in ovals.items():
                        got = nvals.get(key)
                        if got is not None:
                            yield ov, got[0], rule, rule.id
        if self._regex:
            if o_dec is None:
                o_dec = _decoded(orig, ohead)
            o_body = _text_of(orig, o_dec)
            n_body: str | None = None
            for rule, rx in self._regex:
                om = [_grp(m) for m in rx.finditer(o_body)]
                if not om:
                    continue
                if n_body is None:
                    if n_dec is None:
                        n_dec = new.decoded_body()
                    n_body = _text_of(new, n_dec)
                nm = [_grp(m) for m in rx.finditer(n_body)]
                for ov, nv in zip(om, nm, strict=False):
                    yield ov, nv, rule, rule.id

    def _json_values(
        self, doc: Any, path: tuple[str | int, ...] = ()
    ) -> Iterator[tuple[tuple[str | int, ...], tuple[str, CorrelationRule]]]:
        if isinstance(doc, dict):
            for k, v in doc.items():
                p = (*path, k)
                rule = self._json_names.get(_norm(k))
                if rule is None and self._path_rules:
                    rule = next((r for r, jp in self._path_rules if jp.matches(p)), None)
                if rule is not None and isinstance(v, str | int) and not isinstance(v, bool):
                    yield p, (str(v), rule)
                elif isinstance(v, dict | list):
                    yield from self._json_values(v, p)
        elif isinstance(doc, list):
            for i, v in enumerate(doc):
                p = (*path, i)
                if self._path_rules and not isinstance(v, dict | list):
                    rule = next((r for r, jp in self._path_rules if jp.matches(p)), None)
                    if rule is not None and isinstance(v, str | int) and not isinstance(v, bool):
                        yield p, (str(v), rule)
                        continue
                yield from self._json_values(v, p)

    # -- substitution --------------------------------------------------------------------
    def _substitute(self, req: Request, sc: _Scope) -> Request:
        rx = sc.heads() or None
        head = req.raw[: req.head_len].decode("latin-1")
        body_raw = req.body_raw
        new_head = head
        if rx is not None:
            new_head = self._replace_tokens(rx, head, sc)
        if sc.ids:
            new_head = self._replace_ids_in_head(new_head, sc)
        out = req
        if new_head != head:
            hb = new_head.encode("latin-1", "replace")
            out = Request(
                hb + bytes(body_raw),
                ts_first_ns=req.ts_first_ns,
                ts_last_ns=req.ts_last_ns,
                head_len=len(hb),
            )
        if len(body_raw) and not out.header_values("content-encoding"):
            body = out.body().decode("utf-8", "surrogateescape")
            new_body = body
            if rx is not None:
                new_body = self._replace_tokens(rx, body, sc)
            if sc.ids:
                new_body = self._replace_ids_in_body(new_body, sc)
            if new_body != body:
                new_msg = out.with_body(new_body.encode("utf-8", "surrogateescape"))
                assert isinstance(new_msg, Request)
                out = new_msg
        return out

    def _replace_tokens(self, heads: dict[str, list[str]], text: str, sc: _Scope) -> str:
        """Replace learned tokens that start a ``[A-Za-z0-9_-]`` run and end at one's end."""
        out: list[str] = []
        pos = 0
        n = len(text)
        for m in _RUN.finditer(text):
            cands = heads.get(m.group())
            start = m.start()
            if not cands or start < pos:
                continue
            for orig in cands:
                end = start + len(orig)
                if text.startswith(orig, start) and (end >= n or not _is_run_char(text[end])):
                    new, rule = sc.tokens[orig]
                    self._subs[rule] += 1
                    out.append(text[pos:start])
                    out.append(new)
                    pos = end
                    break
        odd = heads.get("")  # values that start with punctuation: plain replace
        if not out and not odd:
            return text
        out.append(text[pos:])
        text = "".join(out)
        for orig in odd or ():
            if orig in text:
                new, rule = sc.tokens[orig]
                self._subs[rule] += text.count(orig)
                text = text.replace(orig, new)
        return text

    def _replace_ids_in_head(self, head: str, sc: _Scope) -> str:
        line, sep, rest = head.partition("\r\n")
        parts = line.split(" ")
        if len(parts) >= 2:
            parts[1] = self._replace_ids_in_target(parts[1], sc)
        return " ".join(parts) + sep + rest

    def _replace_ids_in_target(self, target: str, sc: _Scope) -> str:
        path, q, query = target.partition("?")
        segs = path.split("/")
        for i, s in enumerate(segs):
            hit = sc.ids.get(s)
            if hit is not None:
                segs[i] = hit[0]
                self._subs[hit[1]] += 1
        if q:
            pairs = query.split("&")
            for i, pair in enumerate(pairs):
                k, eq, v = pair.partition("=")
                hit = sc.ids.get(v) if eq else None
                if hit is not None:
                    pairs[i] = f"{k}={hit[0]}"
                    self._subs[hit[1]] += 1
            query = "&".join(pairs)
        return "/".join(segs) + q + query

    def _replace_ids_in_body(self, body: str, sc: _Scope) -> str:
        rx = sc.ids_rx()
        if rx is None:
            return body

        def sub(m: re.Match[str]) -> str:
            new, rule = sc.ids[m.group("v")]
            self._subs[rule] += 1
            return m.group("pre") + new + m.group("post")

        return rx.sub(sub, body)


_MAX_SESSIONS = 100_000
_RUN = re.compile(r"[A-Za-z0-9_-]+")


def _is_run_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in "_-")


class _Unset:
    pass


_UNSET: Any = _Unset()


_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def _norm(name: str) -> str:
    """Lower case, letters and digits only (``X-CSRF_token`` -> ``xcsrftoken``)."""
    if name.isascii():
        return _NOT_ALNUM.sub("", name.lower())
    return "".join(c for c in name.lower() if c.isalnum())


def _first_values(msg: HTTPMessage) -> dict[str, str]:
    """``msg.header(name)`` for every name at once: the first value by lower-case name."""
    out: dict[str, str] = {}
    for k, v in msg.headers:
        out.setdefault(k.lower(), v)
    return out


def _needle(rule: CorrelationRule) -> bytes | None:
    """Bytes a head must contain (lower-cased) to have the header ``rule`` reads."""
    name = {"cookie": "set-cookie", "location": "location"}.get(rule.kind, rule.name.lower())
    try:
        return name.encode("latin-1") if name else None
    except UnicodeEncodeError:  # never equal to a parsed (latin-1) name: look anyway
        return None


def _decoded(msg: HTTPMessage, head: bytes) -> bytes:
    """``msg.decoded_body()`` (``head``: its head, lower-cased); without parsing the head when
    it names neither a transfer nor a content encoding (the body is then the bytes as is)."""
    if msg.head_len >= len(msg.raw):
        return b""
    if b"-encoding" in head:
        return msg.decoded_body()
    return msg.raw[msg.head_len :]


def _maybe_json(head: bytes, body: bytes) -> bool:
    """False when ``_json_of`` would find no document: no "json" in the head (so none in
    the content type) and a body that does not start like one."""
    return b"json" in head or body.lstrip()[:1] in (b"{", b"[")


def _grp(m: re.Match[str]) -> str:
    return m.group(1) if m.re.groups >= 1 and m.group(1) is not None else m.group()


def _set_cookies(msg: HTTPMessage) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in msg.headers:
        if k.lower() == "set-cookie":
            first = v.split(";", 1)[0]
            name, eq, val = first.partition("=")
            if eq:
                out[name.strip()] = val.strip().strip('"')
    return out


_ID_SEG = re.compile(r"^(?:\d+|[0-9a-fA-F-]{8,}|[A-Za-z0-9_-]{12,})$")


def _location_ids(orig: HTTPMessage, new: HTTPMessage) -> Iterator[tuple[str, str]]:
    ol, nl = orig.header("location"), new.header("location")
    if not ol or not nl:
        return
    osegs = urlsplit(ol).path.split("/")
    nsegs = urlsplit(nl).path.split("/")
    if len(osegs) != len(nsegs):
        return
    for o, n in zip(osegs, nsegs, strict=True):
        if o != n and _ID_SEG.match(o) and _ID_SEG.match(n):
            yield o, n


def _text_of(msg: HTTPMessage, body: bytes) -> str:
    """Head and decoded ``body`` of ``msg`` as text (what regex rules search)."""
    head = msg.raw[: msg.head_len].decode("latin-1")
    return head + body.decode("utf-8", "replace")


def _json_of(msg: HTTPMessage, body: bytes) -> Any:
    """The JSON document in ``msg`` (decoded ``body``), or _UNSET."""
    ct = (msg.header("content-type") or "").lower()
    if "json" not in ct and body.lstrip()[:1] not in (b"{", b"["):
        return _UNSET
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _UNSET
