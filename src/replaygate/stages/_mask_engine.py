"""The masking engine: walks one HTTP message (start line, headers, body) and masks it.

:class:`Masker` is built once from a compiled rule set and a key and is then pure: the same
message always masks to the same bytes. It reports every finding through ``record`` (rule,
location, already-masked?) so the stage can count and ``scan`` can report, never with values.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, TypeVar, cast

from ..model import HTTPMessage, Request, Response, dechunk, decode_content
from ._detect_quick import MessageQuick
from ._mask_body import (
    body_kind,
    body_kind_by_type,
    chunk_trailers,
    encode_content,
    looks_like_text,
    map_multipart,
)
from ._mask_fp import CORE
from ._mask_head import _AUTH_HEADERS, _SKIP_HEADERS, _URL_HEADERS, HeadMasker
from ._mask_json import _DROP, _enclosing
from ._mask_values import Loc, Recorder, Rules, resolve_loc

__all__ = ["Loc", "Masker", "Recorder", "Rules", "resolve_loc"]
__all__ += ["_DROP", "_enclosing"]  # for the data masker and the tests

M = TypeVar("M", bound=HTTPMessage)
#: a JSON number that may be a card next to a comma (``[1,4111111111111111,0]``): the raw-text
#: pass takes the comma for a decimal separator, the walk checks the number alone
_CARD_BY_COMMA = re.compile(r",[2-6][0-9]{12,18}(?![0-9])|(?<![0-9])[2-6][0-9]{12,18},[0-9]")
#: JSON bodies in a row that held a trigger after which the next ones skip the trigger scan
#: (:meth:`Masker._json_fast`)
_SCAN_FIRST_UNTIL = 8
#: the compiled JSON masker (``make accel``; used through :attr:`JsonMasker.json_core`)
CORE_MASK_JSON = CORE.mask_json if CORE is not None else None
CORE_MASK_HEAD = CORE.mask_head if CORE is not None else None
# what a header name means to the fast path (:meth:`Masker._head_code`): bits
_SCAN, _CTYPE, _CENC, _TENC, _RULE = 1, 2, 4, 8, 16


class Masker(HeadMasker):
    """Masks messages according to :class:`Rules` with the pseudonyms of one key: the start
    line, headers, cookies, trailers and bodies (values: :class:`ValueMasker`, JSON:
    :class:`JsonMasker`, targets and header fields: :class:`HeadMasker`)."""

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
        #: JSON bodies in a row whose trigger scan found something (:meth:`_json_fast`)
        self._dirty_json = 0
        self._value_clean: dict[str, bool] = {}
        self._target_verdicts: dict[str, bool] = {}

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
        facts: tuple[list[str], str, bool] | None = None
        if self.head_core is not None and CORE_MASK_HEAD is not None and self._counting():
            # the compiled head masker: the common heads, as the code below masks them
            target = start[1] if isinstance(msg, Request) and len(start) >= 2 else None
            fast = CORE_MASK_HEAD(target, headers, self.head_core)
        if fast is not None and fast is not NotImplemented:
            new_target, fast_headers, facts = fast  # facts: _head_facts of the new fields
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
            encodings, ctype, chunked = facts or _head_facts(out.headers)
        else:  # the fields read back as they are: the new head is not parsed again
            encodings, ctype, chunked = facts or _head_facts(new_headers)
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
        # the trigger scan first, unless the last bodies all needed masking: then the
        # compiled masker alone (it finds a clean body clean too, only in more time; a body
        # it leaves unchanged turns the scan back on)
        if self._dirty_json < _SCAN_FIRST_UNTIL:
            if data.isascii():
                clean = not sc.quick.scan(data)
            else:
                clean = not sc.quick(data.decode("utf-8", "surrogateescape"))
            if clean:
                self._dirty_json = 0
                return None
            self._dirty_json += 1
        assert self.json_core is not None and CORE_MASK_JSON is not None
        fast = CORE_MASK_JSON(data, self.json_core)
        if fast is None:
            self._dirty_json = 0
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
