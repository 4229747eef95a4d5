"""The HTTP/1 parser's fast paths (protocol/_http1_fast.py) against its general path: the same
steps through a parser with and without them give the same exchanges at the same steps
(bytes, ids, time stamps, flags, interim responses) and the same counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaygate.model import ConnectionId, Exchange
from replaygate.protocol.http1 import HTTP1StreamParser, ParserConfig

Step = tuple[str, Any, int]  # kind, argument, ts

_CONN = ConnectionId("10.0.0.1", 40000, "10.0.0.2", 80)

_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /a?b=1 HTTP/1.0\r\n\r\n",
    b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"PUT /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",  # body still to come
    b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\n\r\n",  # pipelined
    b"GET /x HTTP/1.1\nHost: h\n\n",
    b"\r\nGET /after-blank HTTP/1.1\r\n\r\n",
    b"GET /partial HTTP/1.1\r\nHost:",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"get /lower HTTP/1.1\r\n\r\n",
    b"GET /09\r\n",
    b"G@T /odd HTTP/1.1\r\n\r\n",
    b"junk bytes\r\n",
]

_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",  # HEAD answer, or body still to come
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcdeHTTP/1.1 204 X\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 200 Connection established\r\n\r\n",
    b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\nContent-Length: 1\n\nz",
    b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-",
    b"<html>body bytes</html>",
]

_step = st.one_of(
    st.tuples(st.just("c"), st.sampled_from(_REQUESTS), st.integers(0, 40)),
    st.tuples(st.just("s"), st.sampled_from(_RESPONSES), st.integers(0, 40)),
    st.tuples(st.sampled_from(["c", "s"]), st.binary(min_size=1, max_size=40), st.integers(0, 40)),
    st.tuples(st.sampled_from(["cg", "sg"]), st.integers(1, 300), st.integers(0, 40)),
    st.tuples(st.sampled_from(["ce", "se"]), st.just(0), st.integers(0, 40)),
)


def _key(ex: Exchange) -> tuple[Any, ...]:
    def msg(m: Any) -> Any:
        if m is None:
            return None
        return (m.raw, m.head_len, m.ts_first_ns, m.ts_last_ns)

    return (
        ex.id,
        ex.seq,
        ex.conn,
        msg(ex.request),
        msg(ex.response),
        tuple(msg(i) for i in ex.interim),
        frozenset(ex.flags),
    )


def _run(steps: Sequence[Step], fast: bool, config: ParserConfig) -> list[Any]:
    p = HTTP1StreamParser(_CONN, config=config, id_seed="t")
    p.fast_path = fast
    trace: list[Any] = []
    ts = 1000
    for kind, arg, dt in steps:
        ts += dt - 10  # time may step back: a response seen before its request
        if kind == "c":
            out = p.client_data(arg, ts)
        elif kind == "s":
            out = p.server_data(arg, ts)
        elif kind == "cg":
            out = p.client_gap(arg, ts)
        elif kind == "sg":
            out = p.server_gap(arg, ts)
        elif kind == "ce":
            out = p.client_eof(ts)
        else:
            out = p.server_eof(ts)
        trace.append(([_key(e) for e in out], p.pending, p.has_partial, p.stats.as_dict()))
    out = p.close(ts + 1)
    trace.append(([_key(e) for e in out], p.stats.as_dict(), p.take_tunnel_start()))
    return trace


# mostly request/response turns, as on a keep-alive connection, with odd steps between
_turn = st.one_of(
    st.tuples(
        st.tuples(st.just("c"), st.sampled_from(_REQUESTS), st.integers(5, 40)),
        st.tuples(st.just("s"), st.sampled_from(_RESPONSES), st.integers(5, 40)),
    ),
    st.tuples(_step),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_step, max_size=30), st.booleans())
def test_fast_paths_change_nothing(steps: list[Step], small: bool) -> None:
    config = ParserConfig(max_head_bytes=40, max_line_bytes=30) if small else ParserConfig()
    assert _run(steps, True, config) == _run(steps, False, config)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_turn, max_size=15))
def test_fast_paths_change_nothing_in_conversations(turns: list[tuple[Step, ...]]) -> None:
    steps = [s for t in turns for s in t]
    assert _run(steps, True, ParserConfig()) == _run(steps, False, ParserConfig())


def test_keep_alive_exchanges_take_the_fast_path() -> None:
    """The common case really is handled by the fast paths (so the properties above test
    something): each message is read in one step and nothing stays buffered. (The fast
    paths keep one time mark per side; the general path keeps the previous one too.)"""
    p = HTTP1StreamParser(_CONN)
    out = []
    for i in range(3):
        out += p.client_data(_REQUESTS[0], 10 * i + 1)
        out += p.server_data(_RESPONSES[0], 10 * i + 2)
        out += p.client_data(_REQUESTS[3], 10 * i + 3)
        out += p.server_data(_RESPONSES[2], 10 * i + 4)
        assert len(p._c.marks) == 1 and len(p._s.marks) == 1
    assert len(out) == 6 and all(e.complete for e in out)
    assert [e.response.status for e in out if e.response] == [200, 204] * 3
    assert not p.has_partial
