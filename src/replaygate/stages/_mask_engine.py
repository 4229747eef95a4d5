"""The masking engine: walks one HTTP message (start line, headers, body) and masks it.

:class:`Masker` is built once from a compiled rule set and a key and is then pure: the same
message always masks to the same bytes. It reports every finding through ``record`` (rule,
location, already-masked?) so the stage can count and ``scan`` can report, never with values.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, TypeVar, cast
from urllib.parse import quote, quote_plus, unquote

from ..model import HTTPMessage, Request, Response, dechunk, decode_content
from ._detect_fields import FieldMatcher
from ._detect_quick import MessageQuick
from ._mask_body import (
    body_kind,
    body_kind_by_type,
    chunk_trailers,
    encode_content,
    looks_like_text,
    map_multipart,
    map_pair,
)
from ._mask_fp import CORE
from ._mask_json import _DROP, JsonMasker, _enclosing
from ._mask_values import _TEXT_CACHED, Collect, Loc, Memo, Recorder, Rules, replay, resolve_loc

__all__ = ["Loc", "Masker", "Recorder", "Rules", "resolve_loc"]
__all__ += ["_DROP", "_enclosing"]  # for the data masker and the tests

M = TypeVar("M", bound=HTTPMessage)
#: a comma that starts another cookie in a folded ``Set-Cookie`` (not the one in Expires)
_SET_COOKIE_SPLIT = re.compile(r"(,[ \t]*)(?=[^;,=\s]+=)")
_URL_HEADERS = frozenset({"location", "referer", "content-location", "origin"})
_SKIP_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "content-encoding", "connection", "date"}
)
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
#: a JSON number that may be a card next to a comma (``[1,4111111111111111,0]``): the raw-text
#: pass takes the comma for a decimal separator, the walk checks the number alone
_CARD_BY_COMMA = re.compile(r",[2-6][0-9]{12,18}(?![0-9])|(?<![0-9])[2-6][0-9]{12,18},[0-9]")
#: the compiled JSON masker (``make accel``; used through :attr:`JsonMasker.json_core`)
CORE_MASK_JSON = CORE.mask_json if CORE is not None else None
CORE_MASK_HEAD = CORE.mask_head if CORE is not None else None
# how the whole path treats a header field by its name (:meth:`Masker._head_class`)
_KEEP, _COOKIE, _NAMED, _URL, _GENERIC = range(1, 6)
#: memo entries: values up to this length, this many entries (then cleared)
_MEMO_LEN, _MEMO_SIZE = 512, 4096
#: a header field -> (new value or None, changed?, findings to replay, reads back otherwise?)
_LineMemo = dict[tuple[str, str], tuple[str | None, bool, Memo | None, bool]]
#: (new pair or None, unchanged?, findings to replay)
_PairHit = tuple[str | None, bool, Memo | None]
# what a header name means to the fast path (:meth:`Masker._head_code`): bits
_SCAN, _CTYPE, _CENC, _TENC, _RULE = 1, 2, 4, 8, 16


class Masker(JsonMasker):
    """Masks messages according to :class:`Rules` with the pseudonyms of one key: the start
    line, headers, cookies, trailers and bodies (values: :class:`ValueMasker`, JSON:
    :class:`JsonMasker`)."""

    def __init__(self, rules: Rules, key: bytes, record: Recorder | None = None) -> None:
        super().__init__(rules, key, record)
        sc = rules.scanner
        mq = None
        if sc.prefilter and not rules.json_paths:
            mq = MessageQuick(sc.detectors, sc.quick.words)
        #: the fast path's one pass (None: every message takes the whole path)
        self._mq = mq if mq is not None and mq.available else None
        # what the fast path remembers: header names, content types, header values and
        # request targets (names and values repeat; verdicts depend on the rules only)
        self._head_codes: dict[str, int] = {}
        self._kinds: dict[str, str] = {}
        self._value_clean: dict[str, bool] = {}
        self._target_verdicts: dict[str, bool] = {}
        # memos of the whole path (exact: see :class:`Collect`): header fields by side,
        # query and form pairs, and how each header name is treated
        self._line_memo: dict[str, _LineMemo] = {}
        self._pair_memo: dict[tuple[str, str, str], _PairHit] = {}
        self._classes: dict[str, int] = {}
        #: a masked header value that would read back otherwise (set by :meth:`headers`)
        self._odd_value = False

    #: the compiled head masker's settings (``CORE.mask_head``), set by :meth:`count_into`
    head_core: tuple[Any, ...] | None = None

    def count_into(self, findings: Counter[str], already: Counter[str]) -> None:
        super().count_into(findings, already)
        if self.json_core is None or CORE is None:
            return
        r = self.rules
        self.head_core = (
            self.json_core,
            r.headers,
            r.keep_headers,
            r.cookies,
            r.query,
            _SKIP_HEADERS,
            _AUTH_HEADERS,
            _URL_HEADERS,
            lambda value, kind, name: self.named(value, kind, name, "head"),
            CORE.JsonKeys(),
            CORE.JsonKeys(),
        )

    # == messages ===========================================================================
    def message(self, msg: M, side: str) -> M:
        """Mask one request or response; the same object when nothing changed."""
        if self._mq is not None and self.unchanged(msg):
            return msg
        headers = msg.headers
        start = msg.start_line
        new_start = start
        fast = None
        if self.head_core is not None and CORE_MASK_HEAD is not None and self._counting():
            # the compiled head masker: the common heads, as the code below masks them
            target = start[1] if isinstance(msg, Request) and len(start) >= 2 else None
            fast = CORE_MASK_HEAD(target, headers, self.head_core)
        if fast is not None and fast is not NotImplemented:
            new_target, fast_headers = fast
            if new_target is not None:
                new_start = [start[0], new_target, *start[2:]]
            new_headers = headers if fast_headers is None else fast_headers
            # the compiled head's fields read back as they are (ASCII, stripped, no line
            # breaks): the head is not parsed again
            self._odd_value = False
        else:
            if isinstance(msg, Request) and len(start) >= 2 and not self._target_clean(start[1]):
                target = self.target(start[1], side)
                if target is not None:
                    new_start = [start[0], target, *start[2:]]
            self._odd_value = False
            new_headers = self.headers(headers, side)
        out = msg
        head_changed = new_start is not start or new_headers is not headers
        if head_changed and (self._odd_value or not _plain_target(new_start)):
            # a value the message would read back otherwise (white space at an end): the
            # new head is written, then read as the message reads it
            out = cast(M, msg.with_head(" ".join(new_start), new_headers))
            encodings, ctype, chunked = _head_facts(out.headers)
        else:  # the fields read back as they are: the new head is not parsed again
            encodings, ctype, chunked = _head_facts(new_headers)
        body = self._body(msg, side, encodings, ctype, chunked)
        trailers = chunk_trailers(bytes(msg.body_raw)) if chunked else None
        if trailers is not None:
            if out is msg and head_changed:
                out = cast(M, msg.with_head(" ".join(new_start), new_headers))
            return self._with_trailers(out, body, trailers, side)
        if out is not msg:
            return out if body is None else cast(M, out.with_body(body))
        if body is None and not head_changed:
            return msg
        if type(msg) in (Request, Response):  # written once, with its body
            return cast(M, msg.with_fields(new_start, new_headers, body))
        out = cast(M, msg.with_head(" ".join(new_start), new_headers))
        return out if body is None else cast(M, out.with_body(body))

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
        """A query string, fragment or form body: pairs by name and detectors, names too.
        Short pairs repeat (``page=2``): each is masked once, then its findings replayed."""
        memo = self._pair_memo
        changed = False
        out: list[str] = []
        for pair in text.split("&"):
            if not pair:
                out.append(pair)
                continue
            key = (kind, loc, pair)
            hit = memo.get(key)
            if hit is None or not replay(self, hit[2]):
                with Collect(self) as c:
                    new = map_pair(
                        pair,
                        lambda n, v: self.pair(kind, n, v, f"{loc}:{n}"),
                        _quote_value,
                        lambda n: self.text(n, f"{loc}.name"),
                    )
                hit = (new, new is pair, c.memo())
                if len(pair) <= _MEMO_LEN and hit[2] is not None:
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    memo[key] = hit
            new, same, _found = hit
            if new is None:
                changed = True
                continue
            if not same:
                changed = True
            out.append(new)
        return "&".join(out) if changed else None

    def path(self, path: str, loc: str) -> str | None:
        segs = path.split("/")
        changed = False
        for i, seg in enumerate(segs):
            if not seg:
                continue
            raw = unquote(seg) if "%" in seg else seg
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
        return self._names_clean(target) and self.rules.scanner.clean(target, target=True)

    def _names_clean(self, target: str) -> bool:
        """No query (or fragment) parameter of ``target`` is masked by its name."""
        r = self.rules
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

    def headers(self, headers: list[tuple[str, str]], side: str) -> list[tuple[str, str]]:
        """Mask header fields; ``headers`` itself when nothing changed. Fields repeat (the
        same User-Agent, the same token): each is masked once, then its findings replayed
        (:class:`Collect`). Values only scanned are cleared together first (one scan)."""
        memo = self._line_memo.get(side)
        if memo is None:
            memo = self._line_memo[side] = {}
        out: list[tuple[str, str]] = []
        changed = False
        clean: set[tuple[str, str]] | None = None
        classes = self._classes
        for i, item in enumerate(headers):
            kind = classes.get(item[0]) or self._head_class(item[0])
            if kind == _KEEP:  # Host, Content-Length...: kept as they are
                out.append((item[0], item[1].strip()))
                continue
            hit = memo.get(item)
            if hit is None or not replay(self, hit[2]):
                if clean is None and kind == _GENERIC:
                    clean = self._clean_values(headers, i, memo)
                if clean is not None and item in clean:  # what masking it finds: nothing
                    value = item[1].strip()
                    self._text_clean(value)
                    deps = ((self._text_cache, value),) if len(value) <= _TEXT_CACHED else ()
                    hit = (value, False, ((), deps), False)
                else:
                    with Collect(self) as c:
                        new = self._header(item[0], item[1], side)
                    value = item[1].strip()
                    odd = new is not None and new != value and (new != new.strip() or "\n" in new)
                    hit = (new, new != value, c.memo(), odd)
                if len(item[1]) <= _MEMO_LEN and hit[2] is not None:
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    memo[item] = hit
            new, diff, _found, odd = hit
            if new is None:
                changed = True
                continue
            if diff:
                changed = True
                if odd:
                    self._odd_value = True
            out.append((item[0], new))
        return out if changed else headers

    def _clean_values(
        self, headers: list[tuple[str, str]], i: int, memo: _LineMemo
    ) -> set[tuple[str, str]]:
        """The fields from ``i`` on, not in ``memo``, that are only scanned (no rule by
        name) and that hold no finding: all of them when one scan of their values together
        finds nothing to look at (``TextScanner.clean``), else none."""
        todo = [
            item
            for item in headers[i:]
            if self._head_class(item[0]) == _GENERIC and item not in memo and item[1].strip()
        ]
        if len(todo) < 2 or not self.rules.scanner.clean("\n".join(v.strip() for _n, v in todo)):
            return set()
        return set(todo)

    def _head_class(self, name: str) -> int:
        """How :meth:`_header` treats a field by its name (remembered: names repeat)."""
        c = self._classes.get(name)
        if c is not None:
            return c
        r = self.rules
        ln = name.lower()
        if ln in r.keep_headers or ln in _SKIP_HEADERS:
            c = _KEEP
        elif ln in ("cookie", "set-cookie") and (ln in r.headers or r.cookies):
            c = _COOKIE
        elif ln in r.headers or r.fields.matches(name):
            c = _NAMED
        elif ln in _URL_HEADERS:
            c = _URL
        else:
            c = _GENERIC
        if len(self._classes) < _MEMO_SIZE:
            self._classes[name] = c
        return c

    def _header(self, name: str, value: str, side: str) -> str | None:
        """One header field's new value (None: dropped)."""
        value = value.strip()
        if not value:
            return value
        c = self._head_class(name)
        if c == _KEEP:
            return value
        r = self.rules
        ln = name.lower()
        loc = f"{side}.header:{name}"
        if c == _COOKIE:
            if ln in r.headers and r.action("header", ln) == "drop":
                self.record("header", loc, False)
                return None
            return self.cookies(value, ln, side)
        if c == _NAMED:
            if ln in _AUTH_HEADERS or ln in r.headers:
                return self.named(value, "header", ln, loc)
            return self.named(value, "field", ln, loc)
        if c == _URL:
            return self.target(value, loc) or value
        return self.text(value, loc) or value

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

    # -- the fast path ---------------------------------------------------------------------
    def unchanged(self, msg: HTTPMessage) -> bool:
        """True when masking ``msg`` provably changes nothing and records nothing; False
        sends it the whole way (a conservative test).

        No header is masked by its name and no header value holds a finding (values repeat:
        their verdicts are remembered); one pass over the decoded JSON or text body and the
        request target finds no detector literal, no field word and no base64 run in the
        body, and nothing in the target that :meth:`_target_clean` would not clear.
        """
        raw = msg.raw
        hl = msg.head_len
        if hl == 0:
            return False
        codes = self._head_codes
        verdicts = self._value_clean
        ctype: str | None = None
        encodings: list[str] = []
        unknown: list[str] = []
        fields, start = msg.headers, msg.start_line
        for name, value in fields:
            code = codes.get(name)
            if code is None:
                code = self._head_code(name)
            if not code:
                continue
            if code & _SCAN:
                ok = verdicts.get(value)
                if ok is None:
                    unknown.append(value)
                elif not ok:
                    return False
            if code & _CTYPE:
                if ctype is None:
                    ctype = value
            elif code & _CENC:
                encodings.extend(p.strip() for p in value.split(",") if p.strip())
            elif not code & _SCAN:  # masked by name, or chunked (trailers): the whole way
                return False
        if unknown and not self._values_clean(unknown):
            return False
        body = b""
        if len(raw) > hl:
            ctype = ctype or ""
            kind = self._kinds.get(ctype)
            if kind is None:
                kind = body_kind_by_type(ctype, self.rules.skip_types)
                if len(self._kinds) < 1024:
                    self._kinds[ctype] = kind
            body = raw[hl:]
            if encodings:
                try:
                    body = decode_content(body, encodings)
                except Exception:
                    return False
            if not kind:
                kind = body_kind(ctype, body, self.rules.skip_types)
            if (kind != "json" and kind != "text") or b"\\" in body:
                return False  # forms, multipart and binary; escapes can hide anything
        target = None
        if isinstance(msg, Request) and len(start) >= 2:
            target = start[1]
            ok = self._target_verdicts.get(target)
            if ok is not None:
                if not ok:
                    return False
                target = None
            elif "%" in target or not self._names_clean(target):
                return False
        if target is None:
            if not body:
                return True
            return self._mq_scan(body, len(body)) is not None
        # the target after the body, ``/`` as a space: a base64 run there is a segment
        found = self._mq_scan(body + b"\n" + target.replace("/", " ").encode("latin-1"), len(body))
        ok = found is not None and (
            not found[1] or self.rules.scanner._only_unused_words(target, found[1])
        )
        if ok and found is not None and found[0]:  # a detector literal: the target's own test
            ok = self._target_clean(target)
        if len(target) <= 256:
            if len(self._target_verdicts) >= 4096:
                self._target_verdicts.clear()
            self._target_verdicts[target] = ok
        return ok

    def _mq_scan(self, data: bytes, split: int) -> tuple[bool, set[str]] | None:
        assert self._mq is not None
        return self._mq.scan(data, split)

    def _values_clean(self, values: list[str]) -> bool:
        """No finding in any of these header values (as :meth:`headers` scans them); every
        verdict remembered. One test for all of them first (``TextScanner.clean``)."""
        sc = self.rules.scanner
        verdicts = self._value_clean
        if len(verdicts) >= 4096:
            verdicts.clear()
        if sc.clean("\n".join(v.strip() for v in values)):
            for v in values:
                verdicts[v] = True
            return True
        for v in values:
            ok = next(sc.findings(v.strip()), None) is None
            verdicts[v] = ok
            if not ok:
                return False
        return True

    def _head_code(self, name: str) -> int:
        """What header ``name`` means to :meth:`unchanged` (remembered: names repeat): its
        value scanned (``_SCAN``), a fact about the body (``_CTYPE``, ``_CENC``), or masked
        by name or chunked (any other bit: the whole path)."""
        r = self.rules
        ln = name.strip().lower()
        if ln == "content-encoding":  # never masked (a skipped header): a fact only
            code = _CENC
        elif ln == "transfer-encoding":
            code = _TENC
        elif ln in r.keep_headers or ln in _SKIP_HEADERS:
            code = _CTYPE if ln == "content-type" else 0
        elif (
            ln in r.headers
            or ln in _URL_HEADERS
            or (ln in ("cookie", "set-cookie") and r.cookies)
            or r.fields.matches(name.strip())
        ):
            code = _RULE
        else:
            code = _SCAN | (_CTYPE if ln == "content-type" else 0)
        if len(self._head_codes) < 4096:
            self._head_codes[name] = code
        return code

    def json_doc(
        self,
        text: str,
        loc: str,
        fields: FieldMatcher | None = None,
        hits: dict[str, str] | None = None,
    ) -> str | bool:
        # a JSON document may be counted past the recorder (the compiled masker): what
        # masked one is never replayed (:class:`Collect`)
        self._fresh += 1
        return super().json_doc(text, loc, fields, hits)

    # -- bodies ----------------------------------------------------------------------------
    def body(self, msg: HTTPMessage, side: str) -> bytes | None:
        """The masked (unframed, re-encoded) body, or None when nothing changed."""
        return self._body(msg, side, *_head_facts(msg.headers))

    def _body(
        self, msg: HTTPMessage, side: str, encodings: list[str], ctype: str, chunked: bool
    ) -> bytes | None:
        if len(msg.raw) <= msg.head_len:
            return None
        if (
            not chunked
            and self._kinds.get(ctype) == "json"
            and self.json_core is not None
            and CORE_MASK_JSON is not None
            and self._counting()
        ):
            fast = self._json_fast(msg, side, encodings, ctype)
            if fast is not False:
                return cast(bytes | None, fast)
        framed = dechunk(msg.body_raw)[0] if chunked else bytes(msg.body_raw)
        data = framed
        decoded_ok = True
        if encodings:
            try:
                data = decode_content(framed, encodings)
            except Exception:
                decoded_ok = False
        kind = self._kinds.get(ctype)  # by type, remembered (types repeat)
        if kind is None:
            kind = body_kind_by_type(ctype, self.rules.skip_types)
            if len(self._kinds) < 1024:
                self._kinds[ctype] = kind
        if not kind:  # by sniffing the body
            kind = body_kind(ctype, data, self.rules.skip_types)
        loc = f"{side}.body"
        new: bytes | None
        if kind == "binary" and looks_like_text(data):
            kind = body_kind("", data, ())  # text labelled binary (octet-stream): scan it
        if kind == "binary":
            self.record("skipped_binary", loc, True)
            return None
        sc = self.rules.scanner
        prechecked = (
            kind in ("json", "text")
            and sc.prefilter
            and not self.rules.json_paths
            and data.isascii()
            and b"\\" not in data
        )
        if prechecked and not sc.quick.scan(data):
            return None  # no trigger, no field word, no escape: nothing to find (one scan)
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
            core = self.json_core
            if (
                core is not None
                and CORE_MASK_JSON is not None
                and b"\\" not in data
                and self._counting()
            ):
                # the compiled masker (count_into: prefilter on, no json_paths): the trigger
                # scan above already ran on ASCII bodies; others get the one of text below
                if not prechecked and not sc.quick(data.decode("utf-8", "surrogateescape")):
                    return None
                fast = CORE_MASK_JSON(data, core)
                if fast is not NotImplemented:
                    return None if fast is None else self._encoded(fast, encodings, decoded_ok)
            new = self._json_body(data, side, loc)
        else:
            new = self._text_bytes(data, loc)
        if new is None:
            return None
        return self._encoded(new, encodings, decoded_ok)

    def _json_body(self, data: bytes, side: str, loc: str) -> bytes | None:
        """A JSON body by the Python walk: the masked body, or None when unchanged."""
        sc = self.rules.scanner
        t = data.decode("utf-8", "surrogateescape")
        escaped = "\\" in t
        if sc.prefilter and not (escaped or self.rules.json_paths) and not sc.quick(t):
            return None  # no trigger, no field word: nothing to find (one scan)
        found = list(sc.findings(t))
        if not (
            found
            or escaped
            or self.rules.json_paths
            or self.rules.fields.mentioned(t)
            or _CARD_BY_COMMA.search(t)  # the walk checks numbers the text pass refuses
        ):
            return None
        j = self.json_doc(t, side, hits=None if escaped else _enclosing(t, found, bool(sc.custom)))
        if j is True:
            return None
        if j is False:  # not JSON after all: scan it as text
            return self._text_bytes(data, loc)
        return str(j).encode("utf-8", "surrogateescape")

    def _json_fast(
        self, msg: HTTPMessage, side: str, encodings: list[str], ctype: str
    ) -> bytes | bool | None:
        """:meth:`_body` for a JSON body by its type when the compiled masker is on (the
        same steps, fewer of them): the masked body, None when unchanged, False when the
        body has to take :meth:`_body`'s way (it did nothing that counts)."""
        data = msg.raw[msg.head_len :]
        if encodings:
            try:
                data = decode_content(data, encodings)
            except Exception:
                return False
        if b"\\" in data:
            return False
        sc = self.rules.scanner
        if data.isascii():
            if not sc.quick.scan(data):
                return None
        elif not sc.quick(data.decode("utf-8", "surrogateescape")):
            return None
        assert self.json_core is not None and CORE_MASK_JSON is not None
        fast = CORE_MASK_JSON(data, self.json_core)
        if fast is NotImplemented:
            new = self._json_body(data, side, f"{side}.body")
            return None if new is None else self._encoded(new, encodings, True)
        return None if fast is None else self._encoded(fast, encodings, True)

    @staticmethod
    def _encoded(new: bytes, encodings: list[str], decoded_ok: bool) -> bytes:
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


def _plain_target(start: list[str]) -> bool:
    """A start line that reads back as these parts (its target has no space or line end)."""
    if len(start) < 2:
        return True
    t = start[1]
    return " " not in t and "\n" not in t and "\r" not in t


def _quote_value(s: str) -> str:
    return quote_plus(s, safe="@:,/*!$'()~", errors="surrogateescape")


def _head_facts(headers: list[tuple[str, str]]) -> tuple[list[str], str, bool]:
    """Content-Encoding values, the Content-Type and "chunked?" in one pass over the headers
    (what ``header_values``, ``header`` and ``is_chunked`` of the message say)."""
    encodings: list[str] = []
    ctype: str | None = None
    te: list[str] = []
    for k, v in headers:
        lk = k.lower()
        if lk == "content-encoding":
            encodings.extend(p.strip() for p in v.split(",") if p.strip())
        elif lk == "content-type":
            ctype = v if ctype is None else ctype
        elif lk == "transfer-encoding":
            te.extend(p.strip() for p in v.split(",") if p.strip())
    return encodings, ctype or "", bool(te) and te[-1].lower() == "chunked"


def _boundary(ctype: str) -> str:
    for part in ctype.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.lower() == "boundary":
            return v.strip().strip('"')
    return ""
