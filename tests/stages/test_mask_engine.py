"""The masking engine's fast path (:meth:`Masker.unchanged`): whatever it passes over, the
whole path would have left unchanged without recording anything.

Messages are built from pieces chosen to sit on the edges of the fast path's tests: field
words in names split by separators, detector literals in the start line or in a skipped
header, base64 runs that do or do not decode to text, escapes, characters whose lower case
is ASCII, compressed and chunked bodies, folded header lines.
"""

from __future__ import annotations

import base64
import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.model import HTTPMessage, Request, Response
from replaygate.stages._mask_engine import Loc, Masker
from replaygate.stages.mask import MaskConfig

_CONFIGS = (
    MaskConfig(),
    MaskConfig(ip_addresses=True),
    MaskConfig(query_params=["page"], cookies=["lang"], keep_headers=["x-api-key"]),
    MaskConfig(fields=["*type", "pass_word"], detectors=["email", "card"]),
    MaskConfig(json_paths=["$.a"]),  # no fast path: the same answers
    MaskConfig(patterns=[r"zeta\d+"]),  # custom patterns: no fast path either
)

_B64_TEXT = base64.b64encode(b"password=hunter2 and more").decode()
_B64_RANDOM = "q83vEjRWeJq83vEjRWeJq83v"
#: pieces the fast path passes over (some look like something: a field word no pattern
#: uses there, a base64 run of random bytes, digits too few for a card)
_CLEAN = [
    "alpha",
    "beta gamma",
    "api",
    "v1",
    "items",
    "shoes",
    "access",
    "12345",
    "2026-12-06",
    _B64_RANDOM,
    "a/b/c/d/e/f/g/h/i/j/k",
    "application/json",
    "\u00e9t\u00e9",
    "",
]
#: pieces that must send a message the whole way (or that it may pass over: the test
#: compares, it does not assume)
_EDGE = [
    "pass-word",
    "Pass_Word",
    "pin",
    "s-id",
    "TO\u212aEN",
    "P\u0130N",
    "token",
    "user@corp.io",
    "4111 1111 1111 1111",
    "4111+1111+1111+1111",
    "12345678",
    "+4915112345678",
    "10.1.2.3",
    "::1",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
    "Bearer abcdefgh12345678",
    "AKIAABCDEFGHIJKLMNOP",
    _B64_TEXT,
    "%41",
    "pass%77ord=hunter2",
    "\\u0041",
    "pin=1234",
    "<password>x</password>",
    'name="token" value="abc"',
    "zeta12",
]
_HEADER_NAMES = [
    "Accept",
    "User-Agent",
    "X-Request-Id",
    "Date",
    "Content-Length",
    "Access-Control-Allow-Origin",
    "Content-Disposition",
]
_EDGE_NAMES = [
    "X-Api-Key",
    "Pass-Word",
    "X-S-Id",
    "Referer",
    "Cookie",
    "Set-Cookie",
    "Content-Type",
]
_CTYPES = [
    "application/json",
    "text/plain",
    "text/html; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "",
]


@st.composite
def _message(draw: st.DrawFn) -> HTTPMessage:
    # one piece (the edge_at-th drawn) is an edge one, and more at random when dirt > 0
    edge_at = draw(st.integers(0, 40))
    dirt = draw(st.sampled_from([0, 0, 10]))  # in 100: how often a piece is an edge one
    drawn = 0

    def edge() -> bool:
        nonlocal drawn
        drawn += 1
        return drawn == edge_at or draw(st.integers(0, 99)) < dirt

    def word(body: bool = False) -> str:
        if edge():
            return draw(st.sampled_from(_EDGE))
        w = draw(st.sampled_from(_CLEAN))
        return "beta" if body and w in ("api", "access") else w  # field words: not in bodies

    def text(n: int = 4, body: bool = False) -> str:
        return " ".join(word(body) for _ in range(draw(st.integers(0, n))))

    request = draw(st.booleans())
    if request:
        path = "/" + "/".join(word().replace(" ", "") for _ in range(draw(st.integers(0, 4))))
        if draw(st.booleans()):
            pairs = [(word(), word()) for _ in range(draw(st.integers(0, 3)))]
            path += "?" + "&".join(f"{k}={v}".replace(" ", "+") for k, v in pairs)
        start = f"{draw(st.sampled_from(['GET', 'POST', 'PIN']))} {path} HTTP/1.1"
    else:
        start = f"HTTP/1.1 200 {text(2)}"
    headers = []
    for _ in range(draw(st.integers(0, 5))):
        names = _EDGE_NAMES if edge() else _HEADER_NAMES
        headers.append((draw(st.sampled_from(names)), text()))
    if draw(st.booleans()):
        pairs = [(word(True), word(True)) for _ in range(draw(st.integers(0, 6)))]
        body = ("{" + ", ".join(f'"{k}": "{v}"' for k, v in pairs) + "}").encode()
    else:
        body = text(12, body=True).encode()
    ctype = draw(st.sampled_from(_CTYPES))
    if ctype:
        headers.append(("Content-Type", ctype))
    enc = draw(st.sampled_from(["", "", "gzip", "deflate", "bogus"]))
    if enc and body:
        headers.append(("Content-Encoding", enc))
        if enc == "gzip":
            body = gzip.compress(body, mtime=0)
        elif enc == "deflate":
            body = zlib.compress(body)
    if draw(st.integers(0, 9)) == 9 and body:
        headers.append(("Transfer-Encoding", "chunked"))
        body = b"%x\r\n%s\r\n0\r\nX-Api-Key: s3cr3t-value-1234\r\n\r\n" % (len(body), body)

    def eol() -> str:  # an odd line end now and then
        return draw(st.sampled_from(["\r\n"] * 8 + ["\n", "\r\r\n", "x\rx\r\n"]))

    sep = draw(st.sampled_from([": "] * 8 + [":", " : "]))
    head = start + eol() + "".join(f"{k}{sep}{v}{eol()}" for k, v in headers)
    if draw(st.integers(0, 9)) == 9:
        head += " folded 4111" + eol()
    raw = (head + eol()).encode("utf-8") + body
    return Request(raw) if request else Response(raw)


def _masked(cfg: MaskConfig, msg: HTTPMessage, fast: bool) -> tuple[bytes, list[tuple[str, bool]]]:
    seen: list[tuple[str, bool]] = []

    def record(rule: str, loc: Loc, masked: bool) -> None:
        seen.append((rule, masked))

    m = Masker(cfg.rules(), b"k", record)
    if not fast:
        m._mq = None
    # a fresh copy: the lazily parsed head is not shared between the two runs
    copy = type(msg)(msg.raw, head_len=msg.head_len)
    return bytes(m.message(copy, "request" if isinstance(msg, Request) else "response").raw), seen


@settings(max_examples=300)
@given(_message(), st.sampled_from(range(len(_CONFIGS))))
def test_the_fast_path_gives_what_the_whole_path_gives(msg: HTTPMessage, which: int) -> None:
    cfg = _CONFIGS[which]
    assert _masked(cfg, msg, fast=True) == _masked(cfg, msg, fast=False)


def test_the_fast_path_passes_clean_messages_over() -> None:
    m = Masker(MaskConfig().rules(), b"k")
    clean = [
        Request(
            b"POST /api/v1/items/15?page=2&q=shoes HTTP/1.1\r\nHost: example.test\r\n"
            b"Content-Type: application/json\r\nUser-Agent: bench/1.0\r\n\r\n"
            b'{"items": [{"id": 1, "title": "alpha beta"}], "page": 1}'
        ),
        Response(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Access-Control-Allow-Origin: *\r\n\r\n"
            + gzip.compress(b'{"ok": true, "title": "alpha beta"}')
        ),
    ]
    for msg in clean:
        assert m.unchanged(msg)
        assert m.message(msg, "x") is msg
    # a base64 run in a body: the whole path decides (it may decode to text)
    blob = Response(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
        b'{"blob": "' + _B64_RANDOM.encode() + b'"}'
    )
    assert not m.unchanged(blob)
    assert m.message(blob, "x") is blob
    dirty = [
        Request(b"GET /a?pass-word=x HTTP/1.1\r\n\r\n"),
        Request(b"GET /a HTTP/1.1\r\nPass-Word: x\r\n\r\n"),
        Request(b"GET /a HTTP/1.1\r\nReferer: /?pass-word=x\r\n\r\n"),
        Request(b"GET /a HTTP/1.1\r\nX-Note: password=hunter2\r\n\r\n"),
        Request(b"GET /a HTTP/1.1\r\nX-Note: " + _B64_TEXT.encode() + b"\r\n\r\n"),
        Response(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nTO\xe2\x84\xaaEN=abcdef123"),
        Response(
            b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a": "user\\u0040corp.io"}'
        ),
    ]
    for msg in dirty:
        assert not m.unchanged(msg), msg
        assert m.message(msg, "x") is not msg, msg


def _one_edge(slot: str, piece: str) -> HTTPMessage:
    """A clean message with ``piece`` in one place."""
    target, name, value, body, ctype = (
        "/api/v1/items?page=2",
        "Accept",
        "alpha",
        "beta",
        "text/plain",
    )
    if slot == "path":
        target = f"/api/{piece.replace(' ', '+')}/items"
    elif slot == "query name":
        target = f"/api/items?{piece.replace(' ', '+')}=1"
    elif slot == "query value":
        target = f"/api/items?q={piece.replace(' ', '+')}"
    elif slot == "header name":
        name = piece.replace(" ", "-").replace(":", "") or "X-Empty"
    elif slot == "header value":
        value = piece
    elif slot == "json key":
        body, ctype = '{"' + piece + '": "alpha"}', "application/json"
    elif slot == "json value":
        body, ctype = '{"alpha": "' + piece + '"}', "application/json"
    elif slot == "text body":
        body = f"alpha {piece} beta"
    elif slot == "form body":
        body, ctype = f"alpha={piece}&{piece}=1", "application/x-www-form-urlencoded"
    head = f"POST {target} HTTP/1.1\r\n{name}: {value}\r\nContent-Type: {ctype}\r\n"
    data = body.encode()
    if slot == "gzip body":
        data = gzip.compress(f"alpha {piece} beta".encode(), mtime=0)
        head += "Content-Encoding: gzip\r\n"
    return Request((head + "\r\n").encode() + data)


_SLOTS = [
    "path",
    "query name",
    "query value",
    "header name",
    "header value",
    "json key",
    "json value",
    "text body",
    "form body",
    "gzip body",
]


@pytest.mark.parametrize("slot", _SLOTS)
def test_one_piece_anywhere_is_found_as_the_whole_path_finds_it(slot: str) -> None:
    for cfg in _CONFIGS[:4]:
        for piece in _EDGE + _CLEAN + [n.lower() for n in _EDGE_NAMES]:
            msg = _one_edge(slot, piece)
            assert _masked(cfg, msg, fast=True) == _masked(cfg, msg, fast=False), (slot, piece)


@pytest.mark.parametrize("eol", ["\n", "\r\r\n", "x\rx\r\n", "\r\n ", "\r\n\t"])
def test_a_head_with_odd_lines_is_read_as_the_message_reads_it(eol: str) -> None:
    """A secret header before or after an odd line end (or in a head cut short) is found
    by the fast path as by the whole path."""
    secret = "X-Api-Key: s3cr3t-value-1234"
    heads = [
        f"GET /a HTTP/1.1\r\n{secret}{eol}Accept: alpha\r\n\r\n",
        f"GET /a HTTP/1.1\r\nAccept: alpha{eol}{secret}\r\n\r\n",
        f"GET /a HTTP/1.1\r\n{secret}{eol}\r\n",
        f"GET /a HTTP/1.1{eol}{secret}\r\n\r\n",
        f"GET /a HTTP/1.1\r\nAccept: alpha\r\n{secret}",  # cut short: no blank line
    ]
    for head in heads:
        msg = Request(head.encode())
        assert _masked(MaskConfig(), msg, fast=True) == _masked(MaskConfig(), msg, fast=False)


@settings(max_examples=300)
@given(_message())
def test_a_head_read_by_the_fast_path_is_the_message_s_own_parse(msg: HTTPMessage) -> None:
    Masker(MaskConfig().rules(), b"k").unchanged(msg)  # reads the head first
    again = type(msg)(msg.raw, head_len=msg.head_len)
    assert (msg.start_line, msg.headers) == (again.start_line, again.headers)


@pytest.mark.parametrize(
    "line", [" X-A : v ", "X-A:\x0bv\x0b", "\x1cX-A\xa0: \t v \t", ":v", "X-A:", "no colon"]
)
def test_a_plain_head_is_parsed_as_the_message_parses_it(line: str) -> None:
    raw = f"GET /a HTTP/1.1\r\nHost: h\r\n{line}\r\nAccept: a:b\r\n\r\nbody".encode("latin-1")
    msg, again = Request(raw), Request(raw)
    Masker(MaskConfig().rules(), b"k").unchanged(msg)
    assert (msg.start_line, msg.headers) == (again.start_line, again.headers)
