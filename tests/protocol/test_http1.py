"""HTTP1StreamParser: tables of bytes in, exchanges out (like h11's tests), split points,
and hypothesis (arbitrary bytes and segmentations never raise; chunking never matters)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaygate.model import ConnectionId, Exchange, Flag, stable_exchange_id
from replaygate.protocol.http1 import HTTP1StreamParser, ParserConfig
from replaygate.testing.servers import NginxServer

F = Flag
# A script is a list of steps: ("c"|"s", bytes) data, ("cg"|"sg", n) gap, ("ce"|"se", 0) eof.
Step = tuple[str, Any]


def run(steps: Sequence[Step], config: ParserConfig | None = None) -> list[Exchange]:
    p = HTTP1StreamParser(ConnectionId("10.0.0.1", 40000, "10.0.0.2", 80), config=config)
    out: list[Exchange] = []
    for ts, (kind, arg) in enumerate(steps, start=1):
        if kind == "c":
            out += p.client_data(arg, ts)
        elif kind == "s":
            out += p.server_data(arg, ts)
        elif kind == "cg":
            out += p.client_gap(arg, ts)
        elif kind == "sg":
            out += p.server_gap(arg, ts)
        elif kind == "ce":
            out += p.client_eof(ts)
        elif kind == "se":
            out += p.server_eof(ts)
    out += p.close(len(steps) + 1)
    assert [e.seq for e in out] == sorted(e.seq for e in out)
    return out


def summary(ex: Exchange) -> tuple[Any, ...]:
    r = ex.response
    return (
        ex.request.method,
        ex.request.target,
        r.status if r is not None else None,
        len(ex.request.body()),
        len(r.body()) if r is not None else None,
        frozenset(ex.flags),
        tuple(i.status for i in ex.interim),
    )


def S(
    method: str,
    target: str,
    status: int | None,
    req_len: int = 0,
    resp_len: int | None = 0,
    flags: Sequence[Flag] = (),
    interim: Sequence[int] = (),
) -> tuple[Any, ...]:
    if status is None and resp_len == 0:
        resp_len = None
    return (method, target, status, req_len, resp_len, frozenset(flags), tuple(interim))


GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
OK0 = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
CHUNKED_REQ = (
    b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"
)
CHUNKED_RESP = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    b"A\r\n0123456789\r\n0\r\nTrailer-A: x\r\nTrailer-B: y\r\n\r\n"
)
WS_REQ = (
    b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)

CASES: dict[str, tuple[list[Step], list[tuple[Any, ...]]]] = {
    "get content-length": ([("c", GET), ("s", OK)], [S("GET", "/", 200, 0, 2)]),
    "post content-length": (
        [("c", b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), ("s", OK0)],
        [S("POST", "/p", 200, 3, 0)],
    ),
    "chunked both ways with trailers": (
        [("c", CHUNKED_REQ), ("s", CHUNKED_RESP)],
        [S("POST", "/up", 200, 11, 10)],
    ),
    "close-delimited response": (
        [("c", GET), ("s", b"HTTP/1.1 200 OK\r\n\r\nuntil close"), ("se", 0)],
        [S("GET", "/", 200, 0, 11, [F.CLOSE_DELIMITED])],
    ),
    "close-delimited cut by close() without a FIN": (
        [("c", GET), ("s", b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nabc")],
        [S("GET", "/", 200, 0, 3, [F.CLOSE_DELIMITED, F.RESPONSE_TRUNCATED])],
    ),
    "te not chunked is close-delimited": (
        [("c", GET), ("s", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz"), ("se", 0)],
        [S("GET", "/", 200, 0, 3, [F.CLOSE_DELIMITED])],
    ),
    "head has no body": (
        [
            ("c", b"HEAD / HTTP/1.1\r\n\r\n" + GET),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + OK),
        ],
        [S("HEAD", "/", 200, 0, 0), S("GET", "/", 200, 0, 2)],
    ),
    "204 and 304 have no body": (
        [
            ("c", GET + GET + GET),
            ("s", b"HTTP/1.1 204 No Content\r\n\r\n"),
            ("s", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" + OK),
        ],
        [S("GET", "/", 204), S("GET", "/", 304), S("GET", "/", 200, 0, 2)],
    ),
    "100-continue then body": (
        [
            ("c", b"PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
            ("s", b"HTTP/1.1 100 Continue\r\n\r\n"),
            ("c", b"data"),
            ("s", OK),
        ],
        [S("PUT", "/f", 200, 4, 2, interim=[100])],
    ),
    "100 after the body": (
        [
            ("c", b"PUT /f HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\ndata"),
            ("s", b"HTTP/1.1 100 Continue\r\n\r\n" + OK),
        ],
        [S("PUT", "/f", 200, 4, 2, interim=[100])],
    ),
    "several interim 1xx": (
        [
            ("c", GET),
            ("s", b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
            ("s", b"HTTP/1.1 100 Continue\r\n\r\n" + OK),
        ],
        [S("GET", "/", 200, 0, 2, interim=[102, 103, 100])],
    ),
    "expect refused, body skipped": (
        [
            ("c", b"POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
            ("s", b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"),
            ("c", GET),
            ("s", OK),
        ],
        [S("POST", "/u", 417, 0, 0), S("GET", "/", 200, 0, 2)],
    ),
    "expect refused, client closes": (
        [
            ("c", b"POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
            ("s", b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"),
            ("ce", 0),
        ],
        [S("POST", "/u", 401, 0, 0)],
    ),
    "expect refused, body sent anyway": (
        [
            ("c", b"POST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
            ("s", b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"),
            ("c", b"hello"),
            ("ce", 0),
        ],
        [S("POST", "/u", 401, 5, 0)],
    ),
    "early response during upload": (
        [
            ("c", b"POST /big HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345"),
            ("s", b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            ("c", b"67890"),
        ],
        [S("POST", "/big", 413, 10, 0)],
    ),
    "pipelining": (
        [
            ("c", b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nPOST /3 HTTP/1.1\r\n"),
            ("c", b"Content-Length: 1\r\n\r\nx"),
            ("s", OK + OK0 + b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\ny"),
        ],
        [S("GET", "/1", 200, 0, 2), S("GET", "/2", 200), S("POST", "/3", 201, 1, 1)],
    ),
    "http/1.0 keep-alive": (
        [
            ("c", b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            ("s", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"),
            ("c", b"GET /b HTTP/1.0\r\n\r\n"),
            ("s", b"HTTP/1.0 200 OK\r\n\r\nrest"),
            ("se", 0),
        ],
        [S("GET", "/a", 200, 0, 2), S("GET", "/b", 200, 0, 4, [F.CLOSE_DELIMITED])],
    ),
    "http/0.9": (
        [("c", b"GET /old.html\r\n"), ("s", b"<html>raw</html>"), ("se", 0)],
        [S("GET", "/old.html", 0, 0, 16, [F.HTTP09])],
    ),
    "http/0.9 lf-only and another method": (
        [("c", b"POST /x\n"), ("s", b"hello"), ("se", 0)],
        [S("POST", "/x", 0, 0, 5, [F.HTTP09])],
    ),
    "websocket upgrade stops parsing": (
        [
            ("c", WS_REQ),
            ("s", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"),
            ("c", b"\x81\x85abcdGET / HTTP/1.1\r\n\r\n"),
            ("s", b"HTTP/1.1 200 OK\r\n\r\n"),
        ],
        [S("GET", "/chat", 101, 0, 0, [F.UPGRADE])],
    ),
    "upgrade refused keeps parsing": (
        [("c", WS_REQ + GET), ("s", b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n")],
        [S("GET", "/chat", 426), S("GET", "/", None, flags=[F.NO_RESPONSE])],
    ),
    "connect tunnel": (
        [
            ("c", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
            ("c", b"\x16\x03\x01\x00\x05hello"),
            ("s", b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x03"),
        ],
        [S("CONNECT", "example.com:443", 200, 0, 0, [F.CONNECT])],
    ),
    "connect refused keeps parsing": (
        [
            ("c", b"CONNECT example.com:443 HTTP/1.1\r\n\r\n"),
            ("s", b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 3\r\n\r\nno!"),
            ("c", GET),
            ("s", OK),
        ],
        [S("CONNECT", "example.com:443", 407, 0, 3), S("GET", "/", 200, 0, 2)],
    ),
    "midstream join skips to first message": (
        [
            ("c", b"dy of an earlier request\r\nmore\r\n" + GET),
            ("s", b"tail of an earlier response" + OK),
        ],
        [S("GET", "/", 200, 0, 2, [F.MIDSTREAM])],
    ),
    "garbage between messages": (
        [("c", GET), ("s", OK), ("c", b"\x00\x01binary junk\r\n" + GET), ("s", OK)],
        [S("GET", "/", 200, 0, 2), S("GET", "/", 200, 0, 2, [F.DESYNC])],
    ),
    "orphan response": (
        [("s", OK), ("c", GET), ("s", OK0)],
        [S("", "", 200, 0, 2, [F.ORPHAN_RESPONSE]), S("GET", "/", 200)],
    ),
    "join mid-upload: the held response is an orphan": (
        [("c", b"tail of a body we never saw the head of"), ("s", OK), ("c", GET), ("s", OK0)],
        [S("", "", 200, 0, 2, [F.ORPHAN_RESPONSE]), S("GET", "/", 200, flags=[F.MIDSTREAM])],
    ),
    "server gap while responses are held": (
        [("c", b"GET /slow HTTP/1.1\r\nX"), ("s", OK + OK0), ("sg", 50), ("s", OK)],
        [
            S("", "", 200, 0, 2, [F.ORPHAN_RESPONSE]),
            S("", "", 200, 0, 0, [F.ORPHAN_RESPONSE]),
            S("GET", "/slow", 200, 0, 2, [F.REQUEST_TRUNCATED]),  # may well be its answer
        ],
    ),
    "no response": (
        [("c", GET + GET), ("s", OK)],
        [S("GET", "/", 200, 0, 2), S("GET", "/", None, flags=[F.NO_RESPONSE])],
    ),
    "request truncated": (
        [("c", b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc"), ("ce", 0)],
        [S("POST", "/", None, 3, flags=[F.REQUEST_TRUNCATED, F.NO_RESPONSE])],
    ),
    "response truncated": (
        [("c", GET), ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"), ("se", 0)],
        [S("GET", "/", 200, 0, 3, [F.RESPONSE_TRUNCATED])],
    ),
    "request head truncated": (
        [("c", b"GET /slow HTTP/1.1\r\nHost: a\r\n"), ("ce", 0)],
        [S("GET", "/slow", None, 0, flags=[F.REQUEST_TRUNCATED, F.NO_RESPONSE])],
    ),
    "gap inside a sized request body": (
        [
            ("c", b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"),
            ("cg", 5),
            ("c", b"cde" + GET),
            ("s", OK + OK),
        ],
        [S("POST", "/", 200, 5, 2, [F.REQUEST_GAP]), S("GET", "/", 200, 0, 2)],
    ),
    "gap inside a sized response body": (
        [
            ("c", GET + GET),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
            ("sg", 6),
            ("s", b"ab" + OK),
        ],
        [S("GET", "/", 200, 0, 4, [F.RESPONSE_GAP]), S("GET", "/", 200, 0, 2)],
    ),
    "gap swallowing a response start": (
        [("c", GET + GET), ("sg", 30), ("s", b"tail\r\n" + OK)],
        [S("GET", "/", None, flags=[F.RESPONSE_GAP]), S("GET", "/", 200, 0, 2)],
    ),
    "gap swallowing a request start": (
        [("c", GET), ("cg", 40), ("c", b"ody\r\n" + GET), ("s", OK + OK0 + OK)],
        [
            S("GET", "/", 200, 0, 2),
            S("", "", 200, flags=[F.REQUEST_GAP]),
            S("GET", "/", 200, 0, 2),
        ],
    ),
    "gap inside chunked framing": (
        [
            ("c", GET + GET),
            ("s", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
            ("sg", 10),
            ("s", b"3\r\nxyz\r\n0\r\n\r\n" + OK),
        ],
        [S("GET", "/", 200, 0, 2, [F.RESPONSE_GAP]), S("GET", "/", 200, 0, 2)],
    ),
    # pipelined answers across a capture gap: each keeps its own framing (body lengths)
    "gap across the boundary of pipelined responses": (
        [
            ("c", GET + GET + GET),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
            ("sg", 8 + 12),  # the rest of the first body and the start of the second head
            ("s", OK[12:] + b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsurvive"),
        ],
        [
            S("GET", "/", 200, 0, 2, [F.RESPONSE_GAP]),
            S("GET", "/", None, flags=[F.RESPONSE_GAP]),
            S("GET", "/", 200, 0, 7),
        ],
    ),
    "pipelined HEAD answer after a gap has no body": (
        [
            ("c", GET + b"HEAD / HTTP/1.1\r\n\r\n" + GET),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
            ("sg", 8),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" + OK),
        ],
        [
            S("GET", "/", 200, 0, 2, [F.RESPONSE_GAP]),
            S("HEAD", "/", 200, 0, 0),
            S("GET", "/", 200, 0, 2),
        ],
    ),
    "pipelined 304 and 204 after a gap in a chunked body": (
        [
            ("c", GET + GET + GET + GET),
            ("s", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123"),
            ("sg", 6),
            (
                "s",
                b"\r\n0\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
                b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n" + OK,
            ),
        ],
        [
            S("GET", "/", 200, 0, 4, [F.RESPONSE_GAP]),
            S("GET", "/", 304, 0, 0),
            S("GET", "/", 204, 0, 0),
            S("GET", "/", 200, 0, 2),
        ],
    ),
    "lf-only line ends": (
        [
            ("c", b"GET /lf HTTP/1.1\nHost: a\n\n"),
            ("s", b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx"),
        ],
        [S("GET", "/lf", 200, 0, 1)],
    ),
    "invalid content-length": (
        [("c", b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"), ("s", OK0)],
        [S("POST", "/", 200, flags=[F.PARSE_ERROR])],
    ),
    "conflicting content-length": (
        [("c", b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), ("s", OK0)],
        [S("POST", "/", 200, flags=[F.PARSE_ERROR])],
    ),
    "repeated equal content-length": (
        [("c", b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab"), ("s", OK0)],
        [S("POST", "/", 200, 2)],
    ),
    "transfer-encoding wins over content-length": (
        [
            ("c", b"POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ("c", b"1\r\na\r\n0\r\n\r\n"),
            ("s", OK0),
        ],
        [S("POST", "/", 200, 1)],
    ),
    "blank lines between messages": (
        [("c", b"\r\n" + GET + b"\r\n\r\n" + GET), ("s", b"\r\n" + OK + b"\r\n" + OK)],
        [S("GET", "/", 200, 0, 2), S("GET", "/", 200, 0, 2)],
    ),
    "http/2 prior knowledge is not parsed": (
        [("c", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04"), ("s", b"\x00\x00\x06\x04")],
        [],
    ),
    "oversized head is a parse error": (
        [("c", b"GET / HTTP/1.1\r\nX: " + b"a" * 300 + b"\r\n\r\n" + GET), ("s", OK + OK)],
        [S("GET", "/", 200, 0, 2, [F.PARSE_ERROR]), S("GET", "/", 200, 0, 2, [F.DESYNC])],
    ),
    "http/0.9 request answered with a status line": (
        [("c", b"GET /x\r\n"), ("s", b"HTTP/1.0 200 OK\r\n\r\nabc"), ("se", 0)],
        [S("GET", "/x", 200, 0, 3, [F.HTTP09, F.CLOSE_DELIMITED])],
    ),
    "gap inside a close-delimited body": (
        [("c", GET), ("s", b"HTTP/1.0 200 OK\r\n\r\nab"), ("sg", 100), ("s", b"cd"), ("se", 0)],
        [S("GET", "/", 200, 0, 4, [F.CLOSE_DELIMITED, F.RESPONSE_GAP])],
    ),
    "gap after a request line keeps pairing": (
        [
            ("c", b"GET /cut HTTP/1.1\r\nHo"),
            ("cg", 20),
            ("c", b"st: a\r\n\r\n" + GET),
            ("s", OK + OK0),
        ],
        [S("GET", "/cut", 200, 0, 2, [F.REQUEST_GAP]), S("GET", "/", 200)],
    ),
    "gap while waiting for a connect answer": (
        [
            ("c", b"CONNECT h:443 HTTP/1.1\r\n\r\n\x16\x03"),
            ("cg", 500),
            ("s", b"HTTP/1.1 200 OK\r\n\r\n"),
        ],
        [S("CONNECT", "h:443", 200, 0, 0, [F.CONNECT])],
    ),
    "expect with a chunked body": (
        [
            (
                "c",
                b"POST /c HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
            ),
            ("s", b"HTTP/1.1 100 Continue\r\n\r\n"),
            ("c", b"3\r\nabc\r\n0\r\n\r\n"),
            ("s", OK),
        ],
        [S("POST", "/c", 200, 3, 2, interim=[100])],
    ),
    "chunk size that is not hex": (
        [
            ("c", GET + GET),
            ("s", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + OK),
        ],
        [S("GET", "/", 200, 0, 0, [F.PARSE_ERROR]), S("GET", "/", 200, 0, 2, [F.DESYNC])],
    ),
    # malformed request lines still make exchanges, flagged (Zeek logs them with a weird)
    "odd method name": (
        [("c", b"M@GIC /x HTTP/1.1\r\nHost: a\r\n\r\n" + GET), ("s", OK + OK)],
        [
            S("M@GIC", "/x", 200, 0, 2, [F.MALFORMED_REQUEST_LINE]),
            S("GET", "/", 200, 0, 2),
        ],
    ),
    "method longer than a token": (
        [("c", b"X" * 40 + b" /y HTTP/1.1\r\n\r\n"), ("s", OK)],
        [S("X" * 40, "/y", 200, 0, 2, [F.MALFORMED_REQUEST_LINE])],
    ),
    "no target": (
        [("c", b"GET HTTP/1.1\r\nHost: a\r\n\r\n" + GET), ("s", OK + OK)],
        [S("GET", "", 200, 0, 2, [F.MALFORMED_REQUEST_LINE]), S("GET", "/", 200, 0, 2)],
    ),
    "version glued to the target": (
        [
            ("c", b"POST /pathHTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + GET),
            ("s", OK + OK),
        ],
        [
            S("POST", "/pathHTTP/1.1", 200, 3, 2, [F.MALFORMED_REQUEST_LINE]),
            S("GET", "/", 200, 0, 2),
        ],
    ),
    "two spaces and a tab": (
        [("c", b"GET  /z\tHTTP/1.0\r\n\r\n"), ("s", OK)],
        [S("GET", "", 200, 0, 2, [F.MALFORMED_REQUEST_LINE])],
    ),
    "absolute-form target": (
        [("c", b"GET http://example.com/x?y=1 HTTP/1.1\r\n\r\n"), ("s", OK)],
        [S("GET", "http://example.com/x?y=1", 200, 0, 2)],
    ),
}

SMALL_HEADS = ParserConfig(max_head_bytes=256)


@pytest.mark.parametrize("name", sorted(CASES))
def test_table(name: str) -> None:
    steps, expected = CASES[name]
    config = SMALL_HEADS if name.startswith("oversized") else None
    assert [summary(e) for e in run(steps, config)] == expected


def test_raw_bytes_are_exact() -> None:
    out = run([("c", CHUNKED_REQ), ("s", b"HTTP/1.1 100 Continue\r\n\r\n" + CHUNKED_RESP)])
    (ex,) = out
    assert ex.request.raw == CHUNKED_REQ
    assert ex.request.head_len == CHUNKED_REQ.index(b"\r\n\r\n") + 4
    assert ex.request.body() == b"hello world"
    assert ex.response is not None and ex.response.raw == CHUNKED_RESP
    assert ex.response.body() == b"0123456789"
    assert ex.interim[0].raw == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_http09_reply_has_no_head() -> None:
    (ex,) = run([("c", b"GET /\r\n"), ("s", b"hello"), ("se", 0)])
    assert ex.response is not None and ex.response.head_len == 0
    assert ex.response.version == "HTTP/0.9" and ex.request.version == "HTTP/0.9"


def test_timestamps_ids_and_seq() -> None:
    conn = ConnectionId("10.0.0.1", 40000, "10.0.0.2", 80)

    def once() -> list[Exchange]:
        p = HTTP1StreamParser(conn, id_seed="s")
        out = p.client_data(GET[:5], 100)
        out += p.client_data(GET[5:] + GET, 200)
        out += p.server_data(OK[:10], 300)
        out += p.server_data(OK[10:] + OK, 400)
        return out + p.close(500)

    a, b = once(), once()
    assert [e.id for e in a] == [e.id for e in b] and a[0].id != a[1].id
    assert [e.seq for e in a] == [0, 1]
    assert (a[0].request.ts_first_ns, a[0].request.ts_last_ns) == (100, 200)
    assert (a[1].request.ts_first_ns, a[1].request.ts_last_ns) == (200, 200)
    assert a[0].response is not None and a[1].response is not None
    assert (a[0].response.ts_first_ns, a[0].response.ts_last_ns) == (300, 400)
    assert a[0].latency_ns == 300 and a[0].conn == conn
    assert a[1].id == stable_exchange_id("s", str(conn), 1, 200)


def test_exchanges_returned_as_soon_as_complete() -> None:
    p = HTTP1StreamParser()
    assert p.client_data(GET, 1) == []
    assert len(p.server_data(OK, 2)) == 1
    assert p.pending == 0 and not p.has_partial
    assert p.close(3) == [] and p.close(4) == []


def test_large_body_in_pieces() -> None:
    size = 100 << 20
    block = b"x" * (1 << 16)
    p = HTTP1StreamParser()
    p.client_data(b"PUT /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size, 1)
    for _ in range(size // len(block)):
        assert p.client_data(block, 2) == []
    out = p.server_data(OK0, 3)
    assert len(out) == 1 and len(out[0].request.body_raw) == size


def test_connect_without_answer_becomes_a_tunnel() -> None:
    cfg = ParserConfig(max_paused_bytes=1000)
    out = run([("c", b"CONNECT h:443 HTTP/1.1\r\n\r\n"), ("c", b"\x17\x03" * 1000)], cfg)
    assert [summary(e) for e in out] == [
        S("CONNECT", "h:443", None, flags=[F.CONNECT, F.NO_RESPONSE])
    ]


def test_held_responses_are_released_at_the_bound() -> None:
    cfg = ParserConfig(max_held_response_bytes=100)
    p = HTTP1StreamParser(config=cfg)
    p.client_data(b"GET /never-finished HTTP/1.1\r\nX: ", 1)
    assert p.server_data(OK, 2) == []  # held: it may be the answer to the partial request
    out = p.server_data(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"z" * 200, 3)
    assert [F.ORPHAN_RESPONSE in e.flags for e in out] == [True, True]


def test_stats_count_what_was_skipped() -> None:
    p = HTTP1StreamParser()
    p.client_data(b"garbage!\r\n" + GET, 1)
    p.server_data(OK, 2)
    p.close(3)
    assert p.stats.skipped_bytes == 10 and p.stats.requests == 1 and p.stats.responses == 1
    assert set(p.stats.as_dict()) >= {"skipped_bytes", "tunnel_bytes", "resyncs", "parse_errors"}


# -- split points: feeding in any pieces gives the same answer ---------------------------------
SPLIT_CASES = sorted(CASES)  # every table case, fed in two pieces at every point and byte by byte


def _split(steps: list[Step], cut: int | None) -> list[Step]:
    """Every data step cut at ``cut`` (None: byte by byte)."""
    out: list[Step] = []
    for kind, arg in steps:
        if kind in ("c", "s") and isinstance(arg, bytes):
            if cut is None:
                out += [(kind, arg[i : i + 1]) for i in range(len(arg))]
            else:
                out += [(kind, arg[:cut]), (kind, arg[cut:])]
        else:
            out.append((kind, arg))
    return out


def _raws(out: list[Exchange]) -> list[tuple[bytes, bytes | None, list[bytes]]]:
    return [
        (e.request.raw, e.response.raw if e.response else None, [i.raw for i in e.interim])
        for e in out
    ]


@pytest.mark.parametrize("name", SPLIT_CASES)
def test_every_split_point(name: str) -> None:
    steps, expected = CASES[name]
    config = SMALL_HEADS if name.startswith("oversized") else None
    whole = run(steps, config)
    longest = max([len(a) for k, a in steps if k in ("c", "s")] or [1])
    for cut in [None, *range(1, longest)]:
        out = run(_split(steps, cut), config)
        assert [summary(e) for e in out] == expected, cut
        assert _raws(out) == _raws(whole), cut


# -- hypothesis ------------------------------------------------------------------------------
_steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["c", "s"]), st.binary(max_size=300)),
        st.tuples(
            st.sampled_from(["c", "s"]),
            st.sampled_from([GET, OK, OK0, CHUNKED_REQ, CHUNKED_RESP, WS_REQ, b"\r\n", b"0\r\n"]),
        ),
        st.tuples(st.sampled_from(["cg", "sg"]), st.integers(1, 5000)),
        st.tuples(st.sampled_from(["ce", "se"]), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_steps)
def test_arbitrary_input_never_raises(steps: list[Step]) -> None:
    client = b"".join(a for k, a in steps if k == "c")
    out = run(steps, ParserConfig(max_head_bytes=512, max_line_bytes=256))
    for e in out:
        assert e.request.raw in client or not client
        assert e.request.head_len <= len(e.request.raw)


_REQS = [
    GET,
    CHUNKED_REQ,
    b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    b"HEAD /h HTTP/1.1\r\n\r\n",
]


def _reply(req: bytes) -> bytes:
    body = b"" if req.startswith(b"HEAD") else b"abcde"
    return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + body


def _pieces(kind: str, data: bytes, sizes: list[int], k: int) -> list[Step]:
    out: list[Step] = []
    pos = 0
    while pos < len(data):
        n = sizes[(k + len(out)) % len(sizes)]
        out.append((kind, data[pos : pos + n]))
        pos += n
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(_REQS), min_size=1, max_size=6),
    st.lists(st.integers(1, 60), min_size=1, max_size=40),
    st.booleans(),
)
def test_segmentation_does_not_matter(reqs: list[bytes], sizes: list[int], pipelined: bool) -> None:
    client = b"".join(reqs)
    server = b"".join(_reply(r) for r in reqs)
    whole = run([("c", client), ("s", server)])
    steps: list[Step] = []
    if pipelined:
        steps = _pieces("c", client, sizes, 0) + _pieces("s", server, sizes, 1)
    else:
        for k, r in enumerate(reqs):
            steps += _pieces("c", r, sizes, k) + _pieces("s", _reply(r), sizes, k + 1)
    out = run(steps)
    assert [summary(e) for e in out] == [summary(e) for e in whole]
    assert _raws(out) == _raws(whole)
    assert all(e.complete for e in out) and len(out) == len(reqs)


# -- generated conversations: what was framed is what is parsed ---------------------------------
@st.composite
def _conversation(draw: st.DrawFn) -> tuple[bytes, bytes, list[tuple[Any, ...]]]:
    """Random requests and responses (Content-Length or chunked with random chunk sizes and
    trailers, HEAD, 204/304, interim 1xx) and the summaries the parser must give back."""
    client = b""
    server = b""
    expected: list[tuple[Any, ...]] = []
    for i in range(draw(st.integers(1, 5))):
        method = draw(st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE"]))
        body = b"q" * draw(st.integers(0, 300)) if method in ("POST", "PUT") else b""
        head = f"{method} /r{i}?x=1 HTTP/1.1\r\nHost: h\r\n".encode()
        client += head + _framed(draw, body)
        interim = draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2))
        for code in interim:
            server += b"HTTP/1.1 %d Info\r\n\r\n" % code
        status = draw(st.sampled_from([200, 201, 204, 304, 404, 500]))
        rbody = b"" if status in (204, 304) else b"r" * draw(st.integers(0, 500))
        if method == "HEAD":
            server += b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(rbody))
            rbody = b""
        elif status in (204, 304):
            server += b"HTTP/1.1 %d X\r\n\r\n" % status
        else:
            server += b"HTTP/1.1 %d X\r\n" % status + _framed(draw, rbody)
        expected.append(S(method, f"/r{i}?x=1", status, len(body), len(rbody), (), interim))
    return client, server, expected


def _framed(draw: st.DrawFn, body: bytes) -> bytes:
    if not draw(st.booleans()):
        return b"Content-Length: %d\r\n\r\n" % len(body) + body
    out = b"Transfer-Encoding: chunked\r\n\r\n"
    pos = 0
    while pos < len(body):
        n = draw(st.integers(1, max(1, len(body) - pos)))
        out += b"%x\r\n" % n + body[pos : pos + n] + b"\r\n"
        pos += n
    trailers = b"X-T: 1\r\n" if draw(st.booleans()) else b""
    return out + b"0\r\n" + trailers + b"\r\n"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_conversation(), st.integers(1, 200))
def test_generated_conversations(
    conv: tuple[bytes, bytes, list[tuple[Any, ...]]], mss: int
) -> None:
    client, server, expected = conv
    steps: list[Step] = [("c", client[i : i + mss]) for i in range(0, len(client), mss)]
    steps += [("s", server[i : i + mss]) for i in range(0, len(server), mss)]
    out = run(steps)
    assert [summary(e) for e in out] == expected
    assert b"".join(e.request.raw for e in out) == client
    assert (
        b"".join(b"".join(i.raw for i in e.interim) + e.response.raw for e in out if e.response)
        == server
    )
    assert all(e.complete for e in out)


def test_real_nginx_pipelined_keepalive(nginx: NginxServer) -> None:
    """Requests pipelined to a real nginx on loopback; its replies as recv() returned them."""
    reqs = [
        b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n",
        b"HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /status/204 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /static/hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"GET /status/404 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ]
    chunks: list[bytes] = []
    with socket.create_connection((nginx.host, nginx.port), timeout=10) as sock:
        sock.sendall(b"".join(reqs))
        while data := sock.recv(7):
            chunks.append(data)
    p = HTTP1StreamParser()
    out = p.client_data(b"".join(reqs), 1)
    for i, c in enumerate(chunks):
        out += p.server_data(c, 2 + i)
    out += p.server_eof(10**6) + p.client_eof(10**6) + p.close(10**6)
    got = [(e.request.method, e.response.status if e.response else None) for e in out]
    assert got == [
        ("GET", 200), ("HEAD", 200), ("GET", 204), ("POST", 200), ("GET", 200), ("GET", 404),
    ]  # fmt: skip
    assert all(e.complete for e in out), [e.flags for e in out]
    bodies = [len(e.response.body()) for e in out if e.response]
    assert bodies == [len(b'{"id": 1, "name": "demo", "tags": ["a", "b"]}'), 0, 0, 2, 6, 9]
    assert b"".join(e.response.raw for e in out if e.response) == b"".join(chunks)


@st.composite
def _pipelined_answers(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Responses to pipelined GETs: sized or chunked bodies (distinct, so a body can be
    traced back to the response it came from)."""
    n = draw(st.integers(2, 6))
    bodies, raws = [], []
    for i in range(n):
        body = (b"%d:" % i) + draw(st.binary(min_size=0, max_size=120)).replace(b":", b"_")
        if draw(st.booleans()):
            raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        else:
            cut = draw(st.integers(0, len(body)))
            parts = [p for p in (body[:cut], body[cut:]) if p]
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
            raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        bodies.append(body)
        raws.append(raw)
    return bodies, raws


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pipelined_answers(), st.integers(0, 2000), st.integers(1, 400))
def test_pipelined_answers_across_a_gap_keep_their_bodies(
    answers: tuple[list[bytes], list[bytes]], at: int, size: int
) -> None:
    """Whatever a gap swallows of pipelined answers, every answer reported complete has
    exactly the body that was sent in one response, and the answers after the gap that
    start after it are all found, in order."""
    bodies, raws = answers
    stream = b"".join(raws)
    at = at % len(stream)
    size = min(size, len(stream) - at)
    steps: list[Step] = [("c", GET * len(raws)), ("s", stream[:at]), ("sg", size)]
    steps.append(("s", stream[at + size :]))
    out = run(steps)
    complete = [e for e in out if e.response is not None and e.complete]
    for e in complete:
        assert e.response is not None
        assert e.response.body() in bodies, e.response.raw
    # the answers that start after the gap's end come out whole, in order, last ones last
    starts = [sum(len(r) for r in raws[:i]) for i in range(len(raws))]
    after = [bodies[i] for i, s0 in enumerate(starts) if s0 >= at + size]
    got = [e.response.body() for e in out if e.response is not None and e.complete]
    assert got[len(got) - len(after) :] == after
