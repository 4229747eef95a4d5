"""Fuzz targets for masking: arbitrary bytes as request/response (all body kinds and
encodings), as free text through the detectors, and as a ``[mask]`` TOML section.

Every target also checks the two promises masking makes on any input: masking the output
again changes nothing (idempotence), and the output masks to the same bytes with a fresh
stage (determinism).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable

from replaygate.config import section
from replaygate.errors import ConfigError
from replaygate.model import Exchange, Request, Response
from replaygate.stages._detectors import ALL_DETECTORS, TextScanner
from replaygate.stages.mask import MaskConfig, MaskStage

__all__ = ["SEEDS", "TARGETS"]

_CFG = MaskConfig(ip_addresses=True, json_paths=["$.a[*].b", "**.x"], form_fields=["f"])
_TYPES = (
    b"application/json",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=zz",
    b"text/plain",
    b"",
)
_ENCODINGS = (b"", b"gzip", b"deflate", b"br", b"zstd", b"gzip, br")


def _exchange(data: bytes) -> Exchange:
    sel = data[0] if data else 0
    ctype = _TYPES[sel % len(_TYPES)]
    enc = _ENCODINGS[(sel // 5) % len(_ENCODINGS)]
    body = data[1:]
    head = (
        b"POST /p?token="
        + body[:20].replace(b" ", b"+").replace(b"\r", b"").replace(b"\n", b"")
        + b" HTTP/1.1\r\nHost: h\r\nCookie: sid="
        + body[:8].replace(b"\r\n", b"")
        + b"\r\n"
    )
    if ctype:
        head += b"Content-Type: " + ctype + b"\r\n"
    resp_head = b"HTTP/1.1 200 OK\r\n"
    if enc:
        resp_head += b"Content-Encoding: " + enc + b"\r\n"
    if sel & 0x40:
        resp_head += b"Transfer-Encoding: chunked\r\n"
    req = Request(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    resp = Response(resp_head + b"Content-Type: " + ctype + b"\r\n\r\n" + body)
    return Exchange(id="f", request=req, response=resp, interim=[Response(data[:64])])


def fuzz_mask_exchange(data: bytes) -> None:
    ex = _exchange(data)
    once = MaskStage(_CFG, b"k").mask_exchange(ex)
    again = MaskStage(_CFG, b"k").mask_exchange(ex)
    assert once.request.raw == again.request.raw, "masking is not deterministic"
    twice = MaskStage(_CFG, b"k").mask_exchange(once)
    assert twice.request.raw == once.request.raw, "masking twice changed the request"
    assert once.response is not None and twice.response is not None
    assert twice.response.raw == once.response.raw, "masking twice changed the response"


def fuzz_mask_raw_message(data: bytes) -> None:
    """Arbitrary bytes as the whole request and response, head included."""
    ex = Exchange(id="f", request=Request(data), response=Response(data))
    once = MaskStage(_CFG, b"k").mask_exchange(ex)
    twice = MaskStage(_CFG, b"k").mask_exchange(once)
    assert twice.request.raw == once.request.raw


_SCANNER = TextScanner(ALL_DETECTORS, ["password", "*token"])


def fuzz_detectors(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    for f in _SCANNER.findings(text):
        assert 0 <= f.start < f.end <= len(text)


def fuzz_mask_core(data: bytes) -> None:
    """Arbitrary text through the compiled pseudonym core (``make accel``; the pure-Python
    functions alone when it is not built): the same answers and pseudonyms as Python. The
    first byte is the prefix length kept, the next four split the key from the value."""
    from replaygate.stages import _mask_fp
    from replaygate.stages._detectors import (
        _b64_runs_py,
        _card_ok,
        _card_ok_py,
        _emails,
        _emails_py,
        b64_runs,
    )

    keep = (data[0] % 24) - 2 if data else 0
    cut = data[1] % 80 if len(data) > 1 else 0
    key, text = data[2 : 2 + cut], data[2 + cut :].decode("utf-8", "surrogateescape")
    fast, pure = _mask_fp.Keyed(key), _mask_fp.Keyed(key, compiled=False)
    p = fast.fp(text, keep, numeric=bool(cut & 1), check=False)
    assert p == pure.fp(text, keep, numeric=bool(cut & 1), check=False), "fp differs"
    for v in (text, p):
        assert _mask_fp._is_pseudonym(v, keep) == _mask_fp._fp_is_pseudonym_py(v, keep)
    assert fast.digest(text, "x") == pure.digest(text, "x"), "digest differs"
    assert fast.email(text) == pure.email(text), "e-mail pseudonym differs"
    assert list(b64_runs(text)) == list(_b64_runs_py(text)), "base64 runs differ"
    assert _card_ok(text[:40]) == _card_ok_py(text[:40]), "card check differs"
    assert list(_emails(text)) == list(_emails_py(text)), "e-mail findings differ"


def fuzz_mask_config(data: bytes) -> None:
    try:
        doc = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError:
        return
    try:
        cfg = section(MaskConfig, doc, name="mask")
    except ConfigError:
        return
    MaskStage(cfg, b"k")


_DATA_FORMATS = ("sql", "csv", "jsonl", "json", "tsv")


def fuzz_mask_data(data: bytes) -> None:
    """Arbitrary text as a dump / CSV / JSON file (first byte picks the format): only
    FormatError may come out, and masking the output again changes nothing."""
    from replaygate.stages._mask_data import DataMasker, mask_text

    fmt = _DATA_FORMATS[(data[0] if data else 0) % len(_DATA_FORMATS)]
    text = data[1:].decode("utf-8", "surrogateescape")
    once = mask_text(DataMasker(MaskStage(_CFG, b"k").masker), text, fmt)
    if fmt in ("sql", "jsonl"):  # CSV/JSON are re-serialized: compare the second pass
        twice = mask_text(DataMasker(MaskStage(_CFG, b"k").masker), once, fmt)
        assert twice == once, "masking data twice changed it"


def fuzz_correlation(data: bytes) -> None:
    """Arbitrary bytes as original response, staging's response and a later request."""
    from replaygate.replay.correlation import CorrelationHook

    parts = [*data.split(b"\x00", 2), b"", b""]
    orig, new, later = parts[0], parts[1], parts[2]
    hook = CorrelationHook()
    ex = Exchange(id="c", request=Request(b"POST / HTTP/1.1\r\n\r\n"), session="s")
    ex.response = Response(b"HTTP/1.1 200 OK\r\n" + orig)
    ex.replayed = Response(b"HTTP/1.1 201 Created\r\n" + new)
    hook.after_response(ex)
    req = Request(later)
    out = hook.before_send(Exchange(id="d", request=req, session="s"), req)
    assert isinstance(out, Request)
    hook.summary()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "mask_exchange": fuzz_mask_exchange,
    "mask_raw_message": fuzz_mask_raw_message,
    "mask_detectors": fuzz_detectors,
    "mask_core": fuzz_mask_core,
    "mask_config": fuzz_mask_config,
    "correlation": fuzz_correlation,
    "mask_data": fuzz_mask_data,
}

SEEDS: dict[str, list[bytes]] = {
    "correlation": [
        b"Set-Cookie: sid=abcdef123\r\nContent-Type: application/json\r\n\r\n"
        b'{"csrf_token": "tok123456", "id": 5}\x00'
        b"Set-Cookie: sid=zzzzzz999\r\nLocation: /o/77\r\n\r\n"
        b'{"csrf_token": "new654321", "id": 6}\x00'
        b"GET /o/5?s=abcdef123 HTTP/1.1\r\nCookie: sid=abcdef123\r\n"
        b'Content-Length: 22\r\n\r\n{"csrf": "tok123456"}',
    ],
    "mask_exchange": [
        b'\x00{"password": "hunter2", "a": [{"b": "x@y.io"}], "n": "{\\"x\\": 1}"}',
        b"\x01password=hunter2&f=1&mail=a%40b.io",
        b'\x02--zz\r\nContent-Disposition: form-data; name="password"\r\n\r\npw\r\n--zz--\r\n',
        b"\x03call +44 20 7946 0958 card 4111 1111 1111 1111 eyJhbGciOiJI.eyJzdWIiOjF9.sig",
        b"\x04AKIAIOSFODNN7EXAMPLE ghp_" + b"a" * 36 + b" DE89370400440532013000",
        # regressions found by fuzzing: Unicode digits, overlapping field/e-mail matches
        b"\x00+10000000 \xd9\xa0",
        b"\x00password:+@A.",
        b"\x00password:+0",
        b"\x01=\x80-%400.aa",
    ],
    "mask_raw_message": [
        b"GET /u/a@b.io?token=abcdefgh HTTP/1.1\r\nAuthorization: Basic dTpw\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc; Path=/\r\n\r\nhi",
        b"\nAuthorization:\n ",
        b"\n:sid=+@a.",
        b"\n:Basic /To/@0.Aa",
        b"\n:Basic /To.0@A.Aa",
        b"GET /cb#id_token=abcdefgh12345&x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n"
        b"X-Api-Key: k3y-abcdefgh\r\nnot a field a@b.io\r\n\r\n",
        b"HTTP/1.1 302 Found\r\nLocation: https://x/#access_token=abcdefgh12\r\n"
        b"Set-Cookie: a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT, b=s3cr3t; Path=/\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Type: application/octet-stream\r\n\r\n"
        b"blob eyJwYXNzd29yZCI6ICJodW50ZXIyIiwgImVtYWlsIjogImFAYi5pbyJ9",
        b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=q\r\n\r\n"
        b'pre a@b.io\r\n--q\r\nname="password"\r\n\r\npw',
    ],
    "mask_data": [
        b"\x00CREATE TABLE u (id int, email text, password text);\n"
        b"INSERT INTO u VALUES (1, 'a@b.io', 'it''s'), (2, E'x\\'y', NULL);\n"
        b"COPY u (id, email) FROM stdin;\n3\tc@d.io\n\\.\n",
        b"\x00-- MySQL dump\nINSERT INTO `u` VALUES (1,'a\\'b@c.io','p\\\\w');\n",
        b'\x01id,email,password\n1,a@b.io,"x,y"\n',
        b'\x02{"email": "a@b.io", "password": "p"}\n\n[1]\n',
        b'\x03[{"email": "a@b.io"}, {"n": [1, {"password": "p"}]}]',
        b"\x00COPY\tA()FROM\tstdin;\x00\n\x00\n\\.\n",  # found by fuzzing
    ],
    "mask_detectors": [b"a@b.io 4111111111111111 10.0.0.1 ::1 fe80::1 +1 (555) 123-4567"],
    "mask_core": [
        b"\x04\x03keyghp_abcdefghijklmnopqrstuvwxyz0123456789",
        b"\x00\x00user@corp.io 4111 1111 1111 1111 dXNlcjpwYXNzd29yZA== \xc3\xa9\xed\xa0\x80",
    ],
    "mask_config": [
        b'action = "redact"\ndetectors = ["email"]\njson_paths = ["$.a"]\n',
        b'actions = { email = "drop" }\nheaders = ["X"]\n',
    ],
}
