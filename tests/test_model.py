from __future__ import annotations

import dataclasses
import gzip

import pytest

from replaygate.model import ConnectionId, Flag, Request, Response, dechunk
from replaygate.testing import make_exchange, make_request, make_response


def test_request_views_keep_raw() -> None:
    raw = b"POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 3\r\n\r\nabc"
    r = Request(raw)
    assert (r.method, r.target, r.version, r.path, r.query) == (
        "POST",
        "/a/b?x=1",
        "HTTP/1.1",
        "/a/b",
        "x=1",
    )
    assert r.headers == [("Host", "h"), ("X-A", "1"), ("x-a", "2"), ("Content-Length", "3")]
    assert r.header_values("x-a") == ["1", "2"]
    assert r.body() == b"abc"
    assert r.raw == raw


def test_absolute_form_target() -> None:
    r = Request(b"GET http://example.com:8080/p?q HTTP/1.1\r\n\r\n")
    assert r.path == "/p"
    assert r.host == "example.com:8080"


def test_chunked_and_gzip_body() -> None:
    body = gzip.compress(b'{"a": 1}')
    framed = (
        b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:5], body[5:])) + b"0\r\nT: x\r\n\r\n"
    )
    resp = Response(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n" + framed
    )
    assert resp.is_chunked
    assert resp.body() == body
    assert resp.decoded_body() == b'{"a": 1}'


@pytest.mark.parametrize(
    ("data", "body", "complete"),
    [
        (b"3\r\nabc\r\n0\r\n\r\n", b"abc", True),
        (b"3;ext=1\r\nabc\r\n0\r\n\r\n", b"abc", True),
        (b"3\r\nab", b"ab", False),
        (b"zz\r\n", b"", False),
        (b"", b"", False),
    ],
)
def test_dechunk_table(data: bytes, body: bytes, complete: bool) -> None:
    assert dechunk(data) == (body, complete)


def test_with_body_fixes_length() -> None:
    r = make_request("POST", "/x", body=b"hello")
    r2 = r.with_body(b"hi")
    assert r2.header("content-length") == "2"
    assert r2.body() == b"hi"


def test_http09_response() -> None:
    r = Response(b"<html>hi</html>", head_len=0)
    assert r.status == 0
    assert r.version == "HTTP/0.9"
    assert r.body() == b"<html>hi</html>"


def test_exchange_summary_contract() -> None:
    ex = make_exchange("GET", "/u/1", status=404, response_body=b"nope")
    s = ex.summary()
    assert set(s) == {
        "id",
        "ts_ns",
        "method",
        "target",
        "host",
        "version",
        "status",
        "request_body_len",
        "response_body_len",
        "latency_ns",
        "complete",
        "flags",
    }
    assert s["status"] == 404
    assert s["response_body_len"] == 4
    assert s["latency_ns"] == 1_000_000
    assert s["complete"] is True


def test_no_response_flag() -> None:
    ex = make_exchange(status=None)
    assert Flag.NO_RESPONSE in ex.flags
    assert not ex.complete
    assert ex.summary()["status"] is None


def test_connection_id_roundtrip() -> None:
    for c in (ConnectionId("1.2.3.4", 5, "6.7.8.9", 80), ConnectionId("::1", 5, "fe80::1", 443)):
        assert ConnectionId.parse(str(c)) == c


def test_make_response_reason() -> None:
    assert make_response(404).reason == "Not Found"


def test_copy_is_independent_and_shares_the_messages() -> None:
    from replaygate.testing import make_exchange

    ex = make_exchange("POST", "/a", request_body=b"x")
    ex.flags.add(Flag.MASKED)
    ex.meta["k"] = "v"
    cp = ex.copy()
    names = [f.name for f in dataclasses.fields(ex)]
    assert [getattr(cp, n) for n in names] == [getattr(ex, n) for n in names]
    assert cp.request is ex.request and cp.response is ex.response
    cp.flags.add(Flag.INJECTED)
    cp.meta["k"] = "w"
    cp.interim.append(ex.request)  # type: ignore[arg-type]
    assert ex.flags == {Flag.MASKED} and ex.meta == {"k": "v"} and ex.interim == []


def test_incomplete_flags_are_what_complete_checks() -> None:
    from replaygate.model import INCOMPLETE_FLAGS
    from replaygate.testing import make_exchange

    for flag in INCOMPLETE_FLAGS | {Flag.NO_RESPONSE}:
        ex = make_exchange()
        ex.flags.add(flag)
        assert not ex.complete, flag
    assert make_exchange().complete


@pytest.mark.parametrize("body", [None, b"", b'{"a":1}'])
@pytest.mark.parametrize(
    "raw",
    [
        b"POST /a?b=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi",
        b"HTTP/1.1 200 OK Fine\r\nSet-Cookie: a=1\r\nX-Empty:\r\n\r\n",
        b"GET HTTP/1.1\r\nX: a\rb\r\n\r\n",
    ],
)
def test_with_fields_is_with_head_then_with_body(raw: bytes, body: bytes | None) -> None:
    """One step, same bytes, and the parsed fields it keeps are the ones its bytes give."""
    cls = Response if raw.startswith(b"HTTP/") else Request
    msg = cls(raw)
    start = [*msg.start_line]
    if cls is Request and len(start) == 3:
        start[1] = start[1] + "&c=2"
    headers = [(k, v + "x" if v else v) for k, v in msg.headers]
    want = msg.with_head(" ".join(start), headers)
    if body is not None:
        want = want.with_body(body)
    got = msg.with_fields(start, headers, body)
    assert got.raw == want.raw and got.head_len == want.head_len
    fresh = cls(got.raw)
    assert got.start_line == fresh.start_line and got.headers == fresh.headers
