"""Fuzz target for the compiled JSON masker (``CORE.mask_json``, ``_mask_jsonc.h``): the same
body masked by a stage that takes the compiled path and by one that walks in Python
(``masker.json_core = None``) must give the same bytes and the same counts, and masking the
output again must change nothing in either. Without the compiled core both stages walk in
Python and the target only checks idempotence.

:func:`compare_masking` is shared with ``tests/stages/test_mask_jsonc.py``.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from typing import Any

from replaygate.model import Exchange, Request, Response
from replaygate.stages.mask import MaskConfig, MaskStage

__all__ = ["KEY", "SEEDS", "TARGETS", "compare_masking", "stage_pair"]

KEY = b"maskdiff-key"
_ENCODINGS = ("", "gzip")
#: where masking twice changes the output, in the Python walk (the compiled masker does the
#: same; both still have to agree on each pass):
#: - a secret integer of 20 digits that fits 64 bits (``{"pin": 16063718592767787001}``), or of
#:   19 digits and negative, masks beyond 64 bits; orjson reads that back as a float, which a
#:   second pass masks again;
#: - a card written 4-6-5 (``3782 822463 10005``) under a secret name masks to ``4000 000071
#:   26309``, which no detector takes for a card (that grouping only follows a 3), so a second
#:   pass masks it again as an opaque value
_NOT_IDEMPOTENT = re.compile(rb"-[0-9]{19}|[0-9]{20}|[0-9]{4}[ -][0-9]{6}[ -][0-9]{5}")
_TYPES = ("application/json", "application/vnd.api+json; charset=utf-8", "text/plain", "")


def stage_pair() -> tuple[MaskStage, MaskStage]:
    """(compiled, python): the first masks JSON bodies with the compiled masker when the core
    is built, the second always walks them in Python."""
    fast = MaskStage(MaskConfig(), KEY)
    slow = MaskStage(MaskConfig(), KEY)
    slow.masker.json_core = None
    slow.masker.named_core = None  # values masked by name: the Python way too
    slow.masker.head_core = None
    return fast, slow


def _message(head: bytes, body: bytes, ctype: str, encoding: str) -> bytes:
    if encoding == "gzip":
        body = gzip.compress(body, mtime=0)
    if ctype:
        head += b"Content-Type: " + ctype.encode() + b"\r\n"
    if encoding:
        head += b"Content-Encoding: " + encoding.encode() + b"\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _exchange(body: bytes, ctype: str, encoding: str, response_body: bytes | None) -> Exchange:
    req = _message(b"POST /api/v1/items HTTP/1.1\r\nHost: h\r\n", body, ctype, "")
    resp_body = body if response_body is None else response_body
    resp = _message(b"HTTP/1.1 200 OK\r\n", resp_body, ctype, encoding)
    return Exchange(id="j", request=Request(req), response=Response(resp))


def _outcome(stage: MaskStage, ex: Exchange) -> tuple[tuple[Any, ...], Exchange]:
    try:
        out = stage.mask_exchange(ex)
    except Exception as e:  # compared like a result: both paths must fail alike
        return ("raised", type(e).__name__, str(e)[:200]), ex
    assert out.response is not None
    result = (out.request.raw, out.response.raw, stage.stats.as_dict())
    return result, out


def compare_masking(
    body: bytes,
    *,
    ctype: str = "application/json",
    encoding: str = "",
    response_body: bytes | None = None,
    pair: tuple[MaskStage, MaskStage] | None = None,
    idempotent: bool | None = None,
) -> bytes:
    """Mask an exchange carrying ``body`` (request; response too, ``encoding`` applied, unless
    ``response_body`` is given) both ways; assert equal bytes and counts, then mask each
    output again with the same stage and assert nothing changes (unless ``idempotent`` is
    False; None: unless the body holds what :data:`_NOT_IDEMPOTENT` names). Returns the
    masked request body (for example tests that also check what it became)."""
    if idempotent is None:
        idempotent = _NOT_IDEMPOTENT.search(body) is None
    fast, slow = pair or stage_pair()
    ex = _exchange(body, ctype, encoding, response_body)
    got, fast_out = _outcome(fast, ex)
    want, slow_out = _outcome(slow, ex)
    assert got[:2] == want[:2], "compiled and Python JSON masking differ (bytes)"
    assert got[2:] == want[2:], "compiled and Python JSON masking differ (counts)"
    if got[0] == "raised":
        return b""
    again, _ = _outcome(fast, fast_out)
    again_py, _ = _outcome(slow, slow_out)
    if idempotent:
        assert again[:2] == got[:2], "masking twice changed the output (compiled)"
        assert again_py[:2] == want[:2], "masking twice changed the output (Python)"
    assert again[2:] == again_py[2:], "compiled and Python differ (counts, second pass)"
    raw: bytes = fast_out.request.raw
    return raw[fast_out.request.head_len :]


_KEYS = (
    b"password", b"access_token", b"pin", b"sid", b"pass-word", b"p assword", b"Password",
    b"email", b"id", b"note", b"compass", b"a@b.io", b"4111111111111111", b"",
)  # fmt: skip
_VALUES = (
    b'"john.doe@corp.io"', b'"A%40B.IO"', b'"4111 1111 1111 1111"', b'"5500-0000-0000-0004"',
    b'"DE89370400440532013000"', b'"+44 20 7946 0958"', b'"Bearer abcdef0123456789"',
    b'"Basic dXNlcjpodW50ZXIy"', b'"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2ln"',
    b'"eyJwYXNzd29yZCI6ICJodW50ZXIyIiwgImVtYWlsIjogImFAYi5pbyJ9"', b'"[redacted:abcdef]"',
    b'"u1500a35e63@example.com"', b'"4000000000000002"', b'"hunter2"', b'""', b'"d\xc3\xa9j\xc3\xa0"',
    b'"x a@b.io y"', b'"[1,4111111111111111]"', b'"password=hunter2"', b'"AKIAIOSFODNN7EXAMPLE"',
    b"4111111111111111", b"4000000000000002", b"16063718592767787001", b"-9223372036854775808",
    b"1e20", b"1e-7", b"-0.0", b"1.50", b"1E5", b"0", b"12345678", b"true", b"null",
)  # fmt: skip


def build_document(script: bytes) -> bytes:
    """A JSON document (valid but for odd scripts) built from bytes read as steps: open an
    object or array, close one, or add a value (under a key in an object) from the tables."""
    out = bytearray()
    stack: list[bytes] = []  # the closing brackets
    first = [True]
    for i, b in enumerate(script):
        op, arg = b & 3, b >> 2
        if not stack and arg % 8:
            op = 0  # mostly a container at the top
        if stack and not first[-1] and op != 2:
            out += b", "[: 1 + (i & 1)]
        if stack and stack[-1] == b"}" and op != 2:
            out += b'"' + _KEYS[arg % len(_KEYS)] + b'":' + b" " * (i & 1)
        if op == 0 and len(stack) < 40:
            stack.append(b"}" if arg & 1 else b"]")
            out += b"{" if arg & 1 else b"["
            first[-1:] = [False]
            first.append(True)
        elif op == 2 and stack:
            out += stack.pop()
            first.pop()
        else:
            out += _VALUES[arg % len(_VALUES)]
            first[-1] = False
        if not stack and out:
            break
    while stack:
        out += stack.pop()
    return bytes(out)


def fuzz_mask_json(data: bytes) -> None:
    """The first byte picks the content type and encoding, and whether the rest is the body
    or a script for :func:`build_document` (a valid document far more often)."""
    sel = data[0] if data else 0
    ctype = _TYPES[sel % len(_TYPES)]
    encoding = _ENCODINGS[(sel >> 2) & 1]
    body = build_document(data[1:]) if sel & 0x80 else data[1:]
    compare_masking(body, ctype=ctype, encoding=encoding)


TARGETS: dict[str, Callable[[bytes], None]] = {"mask_json": fuzz_mask_json}

SEEDS: dict[str, list[bytes]] = {
    "mask_json": [
        b"\x80" + bytes(range(256)),
        b"\x84\x05\x07\x0b\x0f\x13\x17\x1b\x1f\x23\x27\x2b\x2f\x33\x37\x3b\x3f\x43\x47\x4b",
        b'\x00{"password": "hunter2", "email": "john.doe@corp.io", "n": 4111111111111111}',
        b'\x04{"user":{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2ln",'
        b'"card":"4111 1111 1111 1111","iban":"DE89370400440532013000","tags":["a","b"]}}',
        b'\x00[{"pin": 1234, "session": null, "sid": [1, "x"], "csrf": {"a": 1.50}},'
        b' "call +44 20 7946 0958", 1e20, -0.0, 1E5, 123456789012345678901234567890]',
        b'\x01{"auth": "Bearer abcdef0123456789abcdef", "b": "Basic dXNlcjpodW50ZXIy",'
        b' "blob": "eyJwYXNzd29yZCI6ICJodW50ZXIyIiwgImVtYWlsIjogImFAYi5pbyJ9",'
        b' "mail": "a%40b.io", "h": "0123456789abcdef0123456789abcdef"}',
        b'\x00{\n  "Password": "p",\n  "pass-word": "q",\n  "compass": "north",'
        b'\n  "api_key": "sk_live_abcdefghijklmnop",\n  "x": "[redacted:abcdef]"\n}\n',
        b'\x02{"password": "a", "password": "b", "credit_card": "5500-0000-0000-0004"}',
        b'\x00{"d\xc3\xa9j\xc3\xa0": "na\xc3\xafve m\xc3\xbcller@b\xc3\xbcro.de", "e": ""}',
    ],
}
