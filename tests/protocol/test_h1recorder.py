"""The proxy's framer: tables of bytes, and properties over arbitrary chunking."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaygate.model import Exchange, Flag, Request, Response
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


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from([200, 201, 404, 500, 204, 304, 100, 101, 302]))
    body = draw(st.binary(max_size=200))
    mode = draw(st.sampled_from(["length", "length", "chunked", "odd"]))
    head = f"HTTP/1.{draw(st.sampled_from('01'))} {status} X\r\nServer: s\r\n"
    if 100 <= status < 200 or status in (204, 304):  # no body, whatever the fields say
        length = draw(st.sampled_from(["", "Content-Length: 0\r\n", "Content-Length: 7\r\n"]))
        return (head + length + "\r\n").encode()
    if mode == "chunked":
        chunk = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunk + b"0\r\n\r\n"
    if mode == "odd":  # what the fast path leaves to the general one
        name = draw(st.sampled_from(["Content-Length ", "content-length", "Content-Length"]))
        extra = draw(st.sampled_from(["", "Content-Length: 0\r\n", "Transfer-Encoding: x\r\n"]))
        return (head + f"{name}: {len(body)}\r\n{extra}\r\n").encode() + body
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _seen(ex: Exchange) -> tuple[object, ...]:
    def msg(m: object) -> object:
        if m is None:
            return None
        return (m.raw, m.head_len, m.ts_first_ns, m.ts_last_ns)  # type: ignore[attr-defined]

    return (
        msg(ex.request),
        msg(ex.response),
        [msg(i) for i in ex.interim],
        sorted(ex.flags),
        ex.seq,
        ex.conn,
    )


def _talk(events: list[tuple[bool, bytes]], fast: bool, whole: bool = False) -> tuple[object, ...]:
    out: list[Exchange] = []

    def emit_whole(req: bytes, first: int, last: int, resp: bytes, ts: int, seq: int) -> None:
        """What the proxy encodes from these, as the Exchange it stands for."""
        r = Request(req, ts_first_ns=first, ts_last_ns=last)
        ex = Exchange("x", r, Response(resp, ts_first_ns=ts, ts_last_ns=ts), seq=seq)
        out.append(ex)

    rec = ConnectionRecorder(
        None,
        out.append,
        max_record=400,
        strict=True,
        emit_whole=emit_whole if whole else None,
    )
    rec.fast = fast
    sent = []
    for ts, (client, data) in enumerate(events):
        if client:
            sent.append(rec.feed_request(data, ts))
        else:
            rec.feed_response(data, ts)
            sent.append(rec.take_forward())
        sent.append((rec.idle, rec.rejected, rec.buffered, rec.requests, rec.final_responses))
    rec.close(len(events))
    return [_seen(ex) for ex in out], sent, rec.without_response, rec.resp.gave_up


@st.composite
def conversations(draw: st.DrawFn) -> list[tuple[bool, bytes]]:
    """Requests and their answers, each read whole, split, or pipelined behind the next
    request; now and then arbitrary bytes from either side."""
    events: list[tuple[bool, bytes]] = []
    held: list[bytes] = []
    for _ in range(draw(st.integers(1, 8))):
        req, resp = draw(requests()), draw(responses())
        how = draw(st.sampled_from(["whole", "whole", "split", "pipelined", "garbage"]))
        cut = draw(st.integers(1, 400))
        if how == "split":
            events += [(True, req[:cut]), (True, req[cut:])]
        else:
            events.append((True, req))
        if how == "pipelined":
            held.append(resp)
            continue
        for r in [*held, resp]:
            events += [(False, r[:cut]), (False, r[cut:])] if how == "split" else [(False, r)]
        held = []
        if how == "garbage":
            events.append((draw(st.booleans()), draw(st.binary(min_size=1, max_size=30))))
    events += [(False, r) for r in held]
    return [(c, d) for c, d in events if d]


@SETTINGS
@given(conversations())
def test_fast_path_records_what_the_general_path_records(events: list[tuple[bool, bytes]]) -> None:
    """Whole messages per read (the fast path), some cut, pipelined, odd, or arbitrary
    bytes: the same exchanges, forwarded bytes and counters with and without the fast path."""
    assert _talk(events, fast=True) == _talk(events, fast=False)


@SETTINGS
@given(conversations())
def test_plain_exchanges_given_whole_stand_for_the_same_exchanges(
    events: list[tuple[bool, bytes]],
) -> None:
    """``emit_whole`` (the proxy encodes those without an Exchange) receives exactly what
    the Exchange of the other paths would carry, in the same order among the others."""
    assert _talk(events, fast=True, whole=True) == _talk(events, fast=False)


def test_fast_path_pairs_a_simple_conversation() -> None:
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append, strict=True)

    def general(data: bytes, ts: int) -> None:
        raise AssertionError("the fast path framed none of these")

    rec.req.feed = rec.resp.feed = general  # type: ignore[method-assign]
    req = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    for i in range(3):
        assert rec.feed_request(req, 10 * i) == req
        rec.feed_response(resp, 10 * i + 5)
    assert [(e.request.raw, e.response.raw, e.seq) for e in out if e.response] == [
        (req, resp, i) for i in range(3)
    ]
    assert out[0].request.head_len == len(req) - 2 and out[0].response.head_len == len(resp) - 2
    assert out[1].latency_ns == 5 and rec.idle and not any(e.flags for e in out)
