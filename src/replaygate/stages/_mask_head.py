"""The head path of masking in Python: request targets (path segments, query and fragment
pairs, ``user:password@``), header fields, cookies and ``Set-Cookie``.

:class:`HeadMasker` is the layer of :class:`~._mask_engine.Masker` between the JSON layer and
whole messages. Fields and pairs repeat from message to message: each is masked once, then
its result and the findings it recorded are replayed while exact (:class:`~._mask_values.Collect`).
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote

from ._detect_fields import FieldMatcher
from ._mask_body import map_pair
from ._mask_json import JsonMasker
from ._mask_values import _TEXT_CACHED, Collect, Memo, Recorder, Rules, replay

__all__ = ["HeadMasker"]

#: a comma that starts another cookie in a folded ``Set-Cookie`` (not the one in Expires)
_SET_COOKIE_SPLIT = re.compile(r"(,[ \t]*)(?=[^;,=\s]+=)")
_URL_HEADERS = frozenset({"location", "referer", "content-location", "origin"})
_SKIP_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "content-encoding", "connection", "date"}
)
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
# how the whole path treats a header field by its name (:meth:`HeadMasker._head_class`)
_KEEP, _COOKIE, _NAMED, _URL, _GENERIC = range(1, 6)
#: memo entries: values up to this length, this many entries (then cleared)
_MEMO_LEN, _MEMO_SIZE = 512, 4096
#: a header field -> (new value or None, changed?, findings to replay, reads back otherwise?)
_LineMemo = dict[tuple[str, str], tuple[str | None, bool, Memo | None, bool]]
#: (new pair or None, unchanged?, findings to replay)
_PairHit = tuple[str | None, bool, Memo | None]


class HeadMasker(JsonMasker):
    """Masks request targets and header fields (:meth:`target`, :meth:`headers`)."""

    def __init__(self, rules: Rules, key: bytes, record: Recorder | None = None) -> None:
        super().__init__(rules, key, record)
        # memos of the whole path (exact: see :class:`Collect`): header fields by side,
        # query and form pairs, and how each header name is treated
        self._line_memo: dict[str, _LineMemo] = {}
        self._pair_memo: dict[tuple[str, str, str], _PairHit] = {}
        self._classes: dict[str, int] = {}
        #: a masked header value that would read back otherwise (set by :meth:`headers`)
        self._odd_value = False

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


def _quote_value(s: str) -> str:
    return quote_plus(s, safe="@:,/*!$'()~", errors="surrogateescape")
