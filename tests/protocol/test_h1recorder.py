"""The proxy's framer: tables of bytes, and properties over arbitrary chunking."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaygate.model import Exchange, Flag
from replaygate.protocol.h1framer import Framer
from replaygate.protocol.h1recorder import ConnectionRecorder

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE"]))
    path = "/" + draw(st.text("abcxyz0123/?=&", max_size=20))
    body = draw(st.binary(max_size=300))
    mode = draw(st.sampled_from(["none", "length", "chunked"]))
    head = f"{method} {path} HTTP/1.1\r\nHost: h\r\nX-A: {len(body)}\r\n"
    if mode == "length" or (mode == "none" and body):
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    if mode == "chunked":
        sizes = draw(st.lists(st.integers(1, 64), max_size=5))
        parts, pos = [], 0
        for n in sizes:
            piece = body[pos : pos + n]
            pos += n
            if piece:
                parts.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        trailer = draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"]))
        return (
            (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
            + b"".join(parts)
            + (b"0\r\n" + trailer + b"\r\n")
        )
    return (head + "\r\n").encode()


@SETTINGS
@given(st.lists(requests(), min_size=1, max_size=6), st.lists(st.integers(0, 10_000)))
def test_requests_framed_exactly_whatever_the_chunking(msgs: list[bytes], cuts: list[int]) -> None:
    got = []
    f = Framer(is_response=False, on_message=got.append)
    stream = b"".join(msgs)
    for i, chunk in enumerate(_chunks(stream, cuts)):
        f.feed(chunk, i)
    assert [m.raw for m in got] == msgs
    assert all(not m.flags for m in got)


@SETTINGS
@given(st.binary(max_size=2000), st.binary(max_size=2000), st.lists(st.integers(0, 5000)))
def test_arbitrary_bytes_never_raise(client: bytes, upstream: bytes, cuts: list[int]) -> None:
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append, max_record=512)
    for c in _chunks(client, cuts):
        rec.feed_request(c, 1)
    for c in _chunks(upstream, cuts):
        rec.feed_response(c, 2)
    rec.close(3)
    for ex in out:
        assert len(ex.request.raw) <= 512
        if not ex.complete:
            assert ex.flags


def _pair(client: list[bytes], upstream: list[bytes]) -> list[Exchange]:
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append)
    for c in client:
        rec.feed_request(c, 1)
    for u in upstream:
        rec.feed_response(u, 2)
    rec.close(3)
    return out


def test_head_304_204_and_interim_have_no_body() -> None:
    reqs = [
        b"HEAD /a HTTP/1.1\r\n\r\n",
        b"GET /b HTTP/1.1\r\n\r\n",
        b"PUT /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
        b"DELETE /d HTTP/1.1\r\n\r\n",
    ]
    resps = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]
    out = _pair([b"".join(reqs)], [b"".join(resps)])
    assert [e.request.raw for e in out] == reqs
    assert [e.response.raw for e in out if e.response] == [resps[0], resps[1], resps[3], resps[4]]
    assert [i.raw for i in out[2].interim] == [resps[2]]
    assert all(e.complete for e in out)


def test_close_delimited_response_and_http10() -> None:
    out = _pair([b"GET / HTTP/1.0\r\n\r\n"], [b"HTTP/1.0 200 OK\r\n\r\nall ", b"of it"])
    assert out[0].response is not None and out[0].response.raw.endswith(b"all of it")
    assert Flag.CLOSE_DELIMITED in out[0].flags and out[0].complete


def test_refused_upgrade_resumes_http_parsing() -> None:
    reqs = [b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", b"GET /next HTTP/1.1\r\n\r\n"]
    out = _pair(
        [b"".join(reqs)],
        [
            b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
        ],
    )
    assert [e.request.raw for e in out] == reqs
    assert Flag.UPGRADE not in out[0].flags


def test_connection_cut_mid_response_is_flagged() -> None:
    out = _pair(
        [b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"],
    )
    assert len(out) == 2
    assert Flag.RESPONSE_TRUNCATED in out[0].flags and not out[0].complete
    assert Flag.NO_RESPONSE in out[1].flags


def test_record_cap_truncates_but_keeps_framing() -> None:
    got = []
    f = Framer(is_response=False, max_record=100, on_message=got.append)
    body = b"x" * 1000
    f.feed(b"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + body + b"GET / HTTP/1.1\r\n\r\n", 0)
    assert len(got) == 2
    assert len(got[0].raw) == 100 and Flag.REQUEST_TRUNCATED in got[0].flags
    assert got[1].raw == b"GET / HTTP/1.1\r\n\r\n"


def test_response_without_request_is_an_orphan() -> None:
    out = _pair([], [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    assert len(out) == 1 and Flag.ORPHAN_RESPONSE in out[0].flags
