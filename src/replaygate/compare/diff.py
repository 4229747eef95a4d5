"""Response differences: status, headers, and bodies after content decoding.

Every difference has a *field* (what is counted: ``status``, ``header:content-type``,
``body:$.items[*].price``, ``body:text``, ``body:binary``, ``body:kind``), a *kind* (``changed``,
``type``, ``missing``, ``extra``, ``length``, ``order``, ``lines``, ``size``) and a concrete
*path* (``$.items[3].price``) for samples. Array indices are folded to ``[*]`` in the field so
that one changed price in a list of 50 is one field, not 50.

Every body is compared by its structure, so that noise is learned per path (one volatile line
does not make a whole page noise):

- JSON structurally (``==`` on whole subtrees first, so identical parts cost one C comparison);
  arrays named in ``order_insensitive`` compare as multisets;
- HTML by DOM path (``body:/html/body/div#main/p[2]/text()``, ``.../@value``, elements
  ``missing``/``extra``), see :mod:`._html`;
- CSV by cell, columns keyed by the header (``body:csv[*].total``), other text by line
  (``body:line[12]``), see :mod:`._text`;
- anything else by size and SHA-256.

Inside a text node, attribute, cell or line, a change of volatile tokens only (UUIDs, long
hex/base64 ids, timestamps) is kind ``tokens`` rather than ``changed``.

Cookies are compared by name: a cookie the new version stopped sending is
``header:set-cookie:NAME missing``, one whose attributes (Path, Domain, Secure, HttpOnly,
SameSite, whether Max-Age/Expires are set) changed is ``attributes``; a changed *value* is
``header:set-cookie`` ``changed`` (a volatile header by default: session ids differ on every
login; drop it from ``volatile_headers`` to judge values by learned or baseline noise).
Framing headers (Content-Length, Transfer-Encoding, Connection) are never compared: bodies are
compared after de-framing and decoding.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ..model import Response
from ._config import FRAMING_HEADERS, CompareConfig
from ._glob import glob_match
from ._grpc import ProtoNames, diff_trees, grpc_status, is_grpc
from ._grpc import tree as grpc_tree
from ._html import diff_html, parse_html
from ._text import diff_csv, diff_lines
from ._tokens import only_tokens_differ
from .endpoints import template_segment

__all__ = ["Difference", "ResponseDiffer", "body_kind"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_SHORT = 200
_MISSING = object()


@dataclass(slots=True)
class Difference:
    """One difference between an original and a replayed response."""

    field: str
    kind: str
    path: str
    original: Any = None
    replayed: Any = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.field, self.kind)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, values cut to a readable length. ``original``/``replayed`` hold the raw
        values; they are rendered only when a difference is sampled or shown."""
        return {
            "field": self.field,
            "kind": self.kind,
            "path": self.path,
            "original": short(self.original),
            "replayed": short(self.replayed),
        }


def short(v: Any, limit: int = _SHORT) -> Any:
    """A JSON-able, bounded rendering of a value for samples."""
    if v is _MISSING:
        return None
    if isinstance(v, str):
        return v if len(v) <= limit else v[:limit] + "…"
    if v is None or isinstance(v, bool | int | float):
        return v
    try:
        s = orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        s = repr(v)
    if len(s) <= limit and isinstance(v, dict | list):
        return v  # small containers stay structured (reports render them as JSON)
    return s if len(s) <= limit else s[:limit] + "…"


def _canon(v: Any) -> bytes:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS)


_KEY_PATHS: dict[str, str] = {}


_NORM_KEYS: dict[str, str] = {}


def _norm_key(k: str) -> str:
    """Path step for counting: object keys that are ids (``{"123": ...}``, UUID keys) fold to
    their kind like path segments do, so a map keyed by user id is one field, not thousands."""
    nk = _NORM_KEYS.get(k)
    if nk is None:
        t = template_segment(k)
        nk = "." + t if t != k and t.startswith("{") and t.endswith("}") else _key_path(k)
        if len(_NORM_KEYS) < 100_000:
            _NORM_KEYS[k] = nk
    return nk


def _key_path(k: str) -> str:
    kp = _KEY_PATHS.get(k)
    if kp is None:
        kp = "." + k if _IDENT.match(k) else "[" + orjson.dumps(k).decode() + "]"
        if len(_KEY_PATHS) < 100_000:
            _KEY_PATHS[k] = kp
    return kp


_TEXT_TYPES = ("text/", "json", "xml", "html", "javascript", "x-www-form-urlencoded", "csv", "yaml")


def body_kind(resp: Response, body: bytes | None = None) -> tuple[str, Any]:
    """(kind, value) of a response body: ``json`` (parsed), ``text`` (str), ``binary`` (bytes)
    or ``empty``. ``body`` is the decoded body when the caller already has it."""
    if body is None:
        body = resp.decoded_body()
    if not body:
        return "empty", b""
    ctype = (resp.header("content-type") or "").lower()
    if "json" in ctype or (not ctype and body[:1] in (b"{", b"[")):
        try:
            return "json", orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    if any(t in ctype for t in _TEXT_TYPES) or not ctype or "charset" in ctype:
        try:
            return "text", body.decode("utf-8")
        except UnicodeDecodeError:
            if ctype.startswith("text/"):
                return "text", body.decode("latin-1")
    return "binary", body


class ResponseDiffer:
    """Computes :class:`Difference` lists for pairs of responses under one config."""

    def __init__(self, config: CompareConfig | None = None) -> None:
        self.config = config or CompareConfig()
        pats = [_body_pattern(p) for p in self.config.order_insensitive]
        self._unordered_exact = {p for p in pats if not _has_glob(p)}
        self._unordered_glob = [p for p in pats if _has_glob(p)]
        self._unordered_cache: dict[str, bool] = {}
        self._limit = self.config.max_diffs_per_exchange
        self._rw: tuple[str, str] | None = None
        path = self.config.proto_descriptor_set
        self._proto = ProtoNames.load(path) if path else None

    # -- public -------------------------------------------------------------------------
    def diff(
        self,
        a: Response | None,
        b: Response | None,
        host_rewrite: tuple[str, str] | None = None,
        grpc_method: str | None = None,
    ) -> list[Difference]:
        """Differences from original ``a`` to replayed ``b`` (missing responses are one
        ``status`` difference).

        ``host_rewrite = (replayed_authority, original_authority)``: the replay sent another
        Host than the capture, so a replayed value that equals the original once the replay's
        authority is written back (``Location: http://staging:8080/x``, an echoed Host, an
        absolute URL in JSON) is not a difference.

        ``grpc_method``: the request's path (``/pkg.Service/Method``), which names gRPC
        message fields when a descriptor set is configured.
        """
        self._rw = host_rewrite if host_rewrite and host_rewrite[0] != host_rewrite[1] else None
        if a is None or b is None:
            if a is None and b is None:
                return []
            return [
                Difference(
                    "status",
                    "changed",
                    "status",
                    a.status if a is not None else None,
                    b.status if b is not None else None,
                )
            ]
        if a.raw == b.raw:
            return []
        out: list[Difference] = []
        if a.status != b.status:
            out.append(Difference("status", "changed", "status", a.status, b.status))
        grpc = is_grpc(a) and is_grpc(b)
        if grpc and (sa := grpc_status(a)) != (sb := grpc_status(b)):
            out.append(Difference("status", "changed", "grpc-status", sa, sb))
        if self.config.compare_headers and a.raw[: a.head_len] != b.raw[: b.head_len]:
            self._diff_headers(a, b, out)
            self._diff_cookies(a, b, out)
        if not grpc or not self._diff_grpc(a, b, out, grpc_method):
            self._diff_bodies(a, b, out)
        return out

    def _diff_grpc(
        self, a: Response, b: Response, out: list[Difference], method: str | None
    ) -> bool:
        """gRPC messages as field-number trees (see :mod:`._grpc`); False: not framed as
        gRPC, compared as any body."""
        ta, tb = grpc_tree(a), grpc_tree(b)
        if ta is None or tb is None:
            return False
        if self._proto is not None and method:
            ta, tb = self._proto.name(ta, method), self._proto.name(tb, method)
        for f, kind, path, x, y in diff_trees(ta, tb, self._limit - len(out)):
            out.append(Difference(f, kind, path, short(x, 2000), short(y, 2000)))
        return True

    # -- headers ------------------------------------------------------------------------
    def _diff_headers(self, a: Response, b: Response, out: list[Difference]) -> None:
        ha = _header_map(a.headers)
        hb = _header_map(b.headers)
        if ha == hb:
            return
        rw = self._rw
        for name in sorted(ha.keys() | hb.keys()):
            va = ha.get(name)
            vb = hb.get(name)
            if va == vb:
                continue
            if (
                rw is not None
                and va is not None
                and vb is not None
                and tuple(sorted(v.replace(rw[0], rw[1]) for v in vb)) == va
            ):
                continue
            f = "header:" + name
            if va is None:
                out.append(Difference(f, "extra", f, None, short(", ".join(vb or ()))))
            elif vb is None:
                out.append(Difference(f, "missing", f, short(", ".join(va)), None))
            else:
                out.append(Difference(f, "changed", f, short(", ".join(va)), short(", ".join(vb))))

    def _diff_cookies(self, a: Response, b: Response, out: list[Difference]) -> None:
        ca = _cookies(a.headers)
        cb = _cookies(b.headers)
        if ca == cb:
            return
        value_changed: list[str] = []
        for name in sorted(ca.keys() | cb.keys()):
            x = ca.get(name)
            y = cb.get(name)
            f = "header:set-cookie:" + name
            if x is None:
                out.append(Difference(f, "extra", f, None, short(y[0] if y else None)))
            elif y is None:
                out.append(Difference(f, "missing", f, short(x[0]), None))
            else:
                if x[1] != y[1]:
                    out.append(Difference(f, "attributes", f, _attrs_text(x[1]), _attrs_text(y[1])))
                if x[0] != y[0]:
                    value_changed.append(name)
        if value_changed:
            f = "header:set-cookie"
            out.append(
                Difference(
                    f,
                    "changed",
                    f + " " + ",".join(value_changed),
                    short("; ".join(f"{n}={ca[n][0]}" for n in value_changed)),
                    short("; ".join(f"{n}={cb[n][0]}" for n in value_changed)),
                )
            )

    # -- bodies -------------------------------------------------------------------------
    def _diff_bodies(self, a: Response, b: Response, out: list[Difference]) -> None:
        ba = a.decoded_body()
        bb = b.decoded_body()
        if ba == bb:
            return
        ka, va = body_kind(a, ba)
        kb, vb = body_kind(b, bb)
        if ka != kb:
            out.append(Difference("body:kind", "type", "body", ka, kb))
            if {ka, kb} <= {"text", "json"}:
                self._diff_text(ba.decode("utf-8", "replace"), bb.decode("utf-8", "replace"), out)
            return
        if ka == "json":
            self._diff_json(va, vb, "$", "$", out)
        elif ka == "text":
            if self._rw is not None:
                vb = vb.replace(self._rw[0], self._rw[1])
                if va == vb:
                    return
            self._diff_structured_text(a, b, va, vb, out)
        else:
            out.append(
                Difference(
                    "body:binary",
                    "size" if len(ba) != len(bb) else "changed",
                    "body",
                    {"size": len(ba), "sha256": hashlib.sha256(ba).hexdigest()},
                    {"size": len(bb), "sha256": hashlib.sha256(bb).hexdigest()},
                )
            )

    def _emitter(self, out: list[Difference]) -> Callable[[str, str, object, object], bool]:
        limit = self._limit

        def emit(path: str, kind: str, x: object, y: object) -> bool:
            f = "body:" + path
            out.append(Difference(f, kind, f[5:], short(x, 2000), short(y, 2000)))
            return len(out) < limit

        return emit

    def _diff_structured_text(
        self, a: Response, b: Response, ta: str, tb: str, out: list[Difference]
    ) -> None:
        ctype = (a.header("content-type") or b.header("content-type") or "").lower()
        emit = self._emitter(out)
        if "html" in ctype or (not ctype and _looks_html(ta) and _looks_html(tb)):
            da = parse_html(ta)
            db = parse_html(tb) if da is not None else None
            if da is not None and db is not None:
                # comments and whitespace between tags are not part of what is compared
                diff_html(da, db, emit, same_but_tokens)
                return
        if "csv" in ctype and diff_csv(ta, tb, emit, same_but_tokens):
            return
        self._diff_text(ta, tb, out)

    def _diff_text(self, ta: str, tb: str, out: list[Difference]) -> None:
        """Line by line, each line its own field (``body:line[12]``)."""
        diff_lines(ta, tb, self._emitter(out), same_but_tokens)

    def _unordered(self, norm: str) -> bool:
        if not self._unordered_exact and not self._unordered_glob:
            return False
        hit = self._unordered_cache.get(norm)
        if hit is None:
            hit = norm in self._unordered_exact or any(
                glob_match(norm, p) for p in self._unordered_glob
            )
            self._unordered_cache[norm] = hit
        return hit

    def _diff_json(
        self, a: Any, b: Any, path: str, norm: str, out: list[Difference], depth: int = 0
    ) -> None:
        if len(out) >= self._limit:
            return
        ta = type(a)
        tb = type(b)
        if ta is not tb:
            if ta in _NUM and tb in _NUM:  # 1 vs 1.0: the same JSON number
                if a != b:
                    out.append(Difference("body:" + norm, "changed", path, a, b))
                return
            out.append(Difference("body:" + norm, "type", path, _jtype(a), _jtype(b)))
            return
        if a == b:
            return
        if ta is str and self._rw is not None and b.replace(self._rw[0], self._rw[1]) == a:
            return
        if depth >= _MAX_DEPTH:  # pathological nesting: one difference, no deeper recursion
            out.append(Difference("body:" + norm, "changed", path, a, b))
            return
        if ta is dict:
            for k, av in a.items():
                bv = b.get(k, _MISSING)
                if bv is _MISSING:
                    kp = _key_path(k)
                    out.append(
                        Difference("body:" + norm + _norm_key(k), "missing", path + kp, av, None)
                    )
                elif av != bv or type(av) is not type(bv):
                    kp = _key_path(k)
                    self._diff_json(av, bv, path + kp, norm + _norm_key(k), out, depth + 1)
                    if len(out) >= self._limit:
                        return
            for k in b:
                if k not in a:
                    kp = _key_path(k)
                    out.append(
                        Difference("body:" + norm + _norm_key(k), "extra", path + kp, None, b[k])
                    )
            return
        if ta is list:
            self._diff_list(a, b, path, norm, out, depth)
            return
        out.append(Difference("body:" + norm, "changed", path, a, b))

    def _diff_list(
        self, a: list[Any], b: list[Any], path: str, norm: str, out: list[Difference], depth: int
    ) -> None:
        if self._unordered(norm):
            ca = sorted(_canon(x) for x in a)
            cb = sorted(_canon(x) for x in b)
            if ca == cb:
                return
            missing, extra = _multiset_diff(ca, cb)
            inorm = norm + "[*]"
            for m in missing[:10]:
                out.append(
                    Difference("body:" + inorm, "missing", path + "[?]", short(m.decode()), None)
                )
            for e in extra[:10]:
                out.append(
                    Difference("body:" + inorm, "extra", path + "[?]", None, short(e.decode()))
                )
            return
        if len(a) != len(b):
            out.append(Difference("body:" + norm, "length", path, len(a), len(b)))
        elif len(a) > 1 and sorted(map(_canon, a)) == sorted(map(_canon, b)):
            out.append(Difference("body:" + norm, "order", path, a, b))
            return
        inorm = norm + "[*]"
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y or type(x) is not type(y):
                self._diff_json(x, y, f"{path}[{i}]", inorm, out, depth + 1)
                if len(out) >= self._limit:
                    return


_NUM = (int, float)
_MAX_DEPTH = 64


def _jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _has_glob(p: str) -> bool:
    rest = p.replace("[*]", "")
    return "*" in rest or "?" in rest


def _body_pattern(p: str) -> str:
    """Order-insensitive paths are body paths; ``body:`` prefix and ``[3]`` indices optional."""
    p = p.strip()
    if p.startswith("body:"):
        p = p[5:]
    if not p.startswith("$"):
        p = "$." + p.lstrip(".")
    return re.sub(r"\[\d+\]", "[*]", p)


def _multiset_diff(a: list[bytes], b: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    from collections import Counter

    ca, cb = Counter(a), Counter(b)
    return list((ca - cb).elements()), list((cb - ca).elements())


def same_but_tokens(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ only in volatile tokens (ids, timestamps, base64 and
    signed values, with or without digits: see ``_tokens``)."""
    return only_tokens_differ(a, b)


def _looks_html(t: str) -> bool:
    head = t[:200].lstrip().lower()
    return head.startswith(("<!doctype html", "<html"))


def _header_map(headers: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    m: dict[str, list[str]] = {}
    for k, v in headers:
        lk = k.lower()
        if lk in FRAMING_HEADERS or lk == "set-cookie":  # cookies: by name, see _cookies
            continue
        m.setdefault(lk, []).extend(p.strip() for p in v.split(","))
    return {k: tuple(sorted(v)) for k, v in m.items()}


_COOKIE_FLAGS = ("path", "domain", "secure", "httponly", "samesite", "partitioned", "priority")


def _cookies(headers: Iterable[tuple[str, str]]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (value, normalized attributes). Attribute values that are meant to vary
    (Expires dates, Max-Age seconds) count by presence only."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for k, v in headers:
        if k.lower() != "set-cookie":
            continue
        first, _, rest = v.partition(";")
        name, _, value = first.partition("=")
        attrs: list[str] = []
        for part in rest.split(";"):
            an, eq, av = part.strip().partition("=")
            an = an.strip().lower()
            if not an:
                continue
            if an in ("expires", "max-age"):
                attrs.append(an)
            elif an in _COOKIE_FLAGS:
                val = av.strip()
                attrs.append(
                    an
                    + ("=" + (val.lower() if an in ("samesite", "priority") else val) if eq else "")
                )
            else:
                attrs.append(an + ("=" + av.strip() if eq else ""))
        out[name.strip()] = (value.strip(), tuple(sorted(attrs)))
    return out


def _attrs_text(attrs: tuple[str, ...]) -> str:
    return "; ".join(attrs) or "(none)"
