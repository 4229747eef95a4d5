"""The passive HTTP/2 parser: tables of bytes in, exchanges and counted reasons out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.model import ConnectionId, Flag, Request
from replaygate.protocol import h2msg
from replaygate.protocol.assembler import TrafficAssembler
from replaygate.protocol.http2 import PREFACE, HTTP2Parser, looks_like_settings
from replaygate.protocol.segment import TcpSegment

from . import h2frames as f

CONN = ConnectionId("127.0.0.1", 40000, "127.0.0.1", 8080)
OK = [(":status", "200"), ("content-type", "text/plain")]


def run(client: bytes, server: bytes, *, step: int = 0, **kw: object) -> tuple[list, HTTP2Parser]:  # type: ignore[type-arg]
    """Feed both directions (in ``step``-byte pieces, interleaved), then close."""
    p = HTTP2Parser(CONN, id_seed="t", **kw)  # type: ignore[arg-type]
    out = []
    n = step or max(len(client), len(server), 1)
    for i in range(0, max(len(client), len(server)), n):
        out += p.client_data(client[i : i + n], 1000 + i) if client[i : i + n] else []
        out += p.server_data(server[i : i + n], 2000 + i) if server[i : i + n] else []
    out += p.close(9999)
    return out, p


def test_one_get_byte_exact() -> None:
    c, s = f.simple([(f.get("/x?y=1"), b"")], [(OK, b"hello")])
    (ex,), p = run(c, s)
    assert ex.request.raw == b"GET /x?y=1 HTTP/2\r\nhost: a.test\r\n\r\n"
    assert ex.response is not None
    assert ex.response.raw == b"HTTP/2 200\r\ncontent-type: text/plain\r\n\r\nhello"
    assert ex.meta == {"scheme": "http", "h2.stream": "1"} and ex.conn == CONN
    assert ex.complete and ex.seq == 1 and p.failed is None and not p.has_partial


@pytest.mark.parametrize("step", [1, 7, 64])
def test_any_segmentation_gives_the_same_exchanges(step: int) -> None:
    c, s = f.simple(
        [(f.get("/a"), b""), ([(":method", "POST"), (":path", "/b")], b"x" * 300)],
        [(OK, b"A"), ([(":status", "201")], b"")],
    )
    whole, _ = run(c, s)
    pieces, _ = run(c, s, step=step)
    assert [(e.request.raw, e.response.raw) for e in whole] == [
        (e.request.raw, e.response.raw) for e in pieces
    ]
    assert len(whole) == 2


def test_continuation_padding_priority_and_trailers() -> None:
    cs, ss = f.Side(), f.Side()
    grpc = [(":method", "POST"), (":scheme", "http"), (":path", "/s.S/M"), (":authority", "g"),
            ("content-type", "application/grpc"), ("te", "trailers")]  # fmt: skip
    prio = f.frame(f.HEADERS, f.END_HEADERS | f.PRIO, 3, b"\0\0\0\0\x10" + cs.enc.encode(
        [(b":method", b"GET"), (b":path", b"/p")]))  # fmt: skip
    client = (
        PREFACE
        + f.settings()
        + cs.headers(1, grpc, split=5, pad=3)
        + f.frame(f.PRIORITY, 0, 1, b"\0\0\0\0\x01")
        + f.frame(f.WINDOW, 0, 0, b"\0\0\x10\0")
        + cs.data(1, b"\0\0\0\0\x02\x08\x01", end=True, pad=4)
        + prio
        + cs.data(3, b"", end=True)
        + f.frame(f.PING, 0, 0, b"\0" * 8)
    )
    server = (
        f.settings()
        + ss.headers(1, [(":status", "200"), ("content-type", "application/grpc")])
        + ss.data(1, b"\0\0\0\0\x00", end=False)
        + ss.headers(1, [("grpc-status", "0"), ("grpc-message", "OK")], end=True)
        + ss.headers(3, [(":status", "404")], end=True)
    )
    out, p = run(client, server, step=5)
    a, b = sorted(out, key=lambda e: e.meta["h2.stream"])
    assert a.request.body() == b"\0\0\0\0\x02\x08\x01"
    assert a.request.header("host") == "g" and a.request.target == "/s.S/M"
    assert a.response is not None and h2msg.trailers(a.response) == [
        ("grpc-status", "0"),
        ("grpc-message", "OK"),
    ]
    assert a.response.body() == b"\0\0\0\0\x00"
    assert b.request.raw == b"GET /p HTTP/2\r\n\r\n" and b.response.status == 404  # type: ignore[union-attr]
    assert p.failed is None


def test_interim_trailers_only_and_reset() -> None:
    cs, ss = f.Side(), f.Side()
    client = PREFACE + cs.headers(1, f.get("/up"), end=True) + cs.headers(3, f.get("/r"), end=True)
    server = (
        ss.headers(1, [(":status", "103"), ("link", "</s.css>")])
        + ss.headers(1, [(":status", "200"), ("grpc-status", "5")], end=True)
        + f.frame(f.RST, 0, 3, (8).to_bytes(4, "big"))
    )
    out, p = run(client, server)
    by = {e.meta["h2.stream"]: e for e in out}
    one = by["1"]
    assert [r.status for r in one.interim] == [103] and one.response.status == 200  # type: ignore[union-attr]
    assert one.response.header("grpc-status") == "5"  # type: ignore[union-attr]
    three = by["3"]
    assert three.meta["h2.reset"] == "CANCEL" and Flag.NO_RESPONSE in three.flags
    assert p.counts["http2_rst_stream"] == 1


def test_server_push_becomes_its_own_exchange() -> None:
    cs, ss = f.Side(), f.Side()
    client = PREFACE + cs.headers(1, f.get("/"), end=True)
    promise = ss.enc.encode([(b":method", b"GET"), (b":path", b"/app.js"), (b":scheme", b"http")])
    server = (
        f.frame(f.PUSH, f.END_HEADERS, 1, (2).to_bytes(4, "big") + promise)
        + ss.headers(1, OK)
        + ss.data(1, b"page")
        + ss.headers(2, OK)
        + ss.data(2, b"js")
    )
    out, _ = run(client, server)
    pushed = next(e for e in out if e.meta["h2.stream"] == "2")
    assert pushed.meta["h2.pushed_by"] == "1" and pushed.request.target == "/app.js"
    assert pushed.response.body() == b"js" and pushed.complete  # type: ignore[union-attr]


def test_header_table_size_setting_lets_a_bigger_dynamic_table_decode() -> None:
    cs = f.Side()
    cs.enc.header_table_size = 65536  # emits a dynamic table size update to 65536
    big = [*f.get("/t"), ("x-big", "v" * 8000)]
    client = PREFACE + cs.headers(1, big, end=True) + cs.headers(3, big, end=True)
    server = f.settings(header_table_size=65536) + f.Side().headers(1, OK, end=True)
    p2 = HTTP2Parser(CONN)
    p2.server_data(server, 1)  # the server's SETTINGS come first, as on the wire
    out = p2.client_data(client, 2) + p2.close(3)
    assert p2.failed is None and len(out) == 2
    assert out[1].request.header("x-big") == "v" * 8000
    # without that SETTINGS the size update is a decoding error: counted, never mangled
    p3 = HTTP2Parser(CONN)
    p3.client_data(client, 2)
    assert p3.failed == "hpack_error" and p3.counts["http2_hpack_error"] == 1


def test_midstream_join_is_counted_never_parsed() -> None:
    c, s = f.simple([(f.get("/a"), b"")], [(OK, b"x")])
    body = c[len(PREFACE) :]  # joined after the preface: HPACK state unknown
    out, p = run(body, s)
    assert out == [] and p.failed == "midstream" and p.counts["http2_midstream"] == 1
    assert p.stats.skipped_bytes > 0


def test_gap_returns_streams_in_flight_flagged() -> None:
    cs = f.Side()
    p = HTTP2Parser(CONN)
    p.client_data(PREFACE + cs.headers(1, f.get("/a"), end=True), 1)
    out = p.server_gap(100, 2)
    (ex,) = out
    assert Flag.RESPONSE_GAP in ex.flags and Flag.NO_RESPONSE in ex.flags
    assert p.failed == "gap" and p.server_data(b"anything", 3) == []


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (PREFACE + f.frame(f.HEADERS, f.END_HEADERS, 1, b"\xff\xff\xff\xff"), "hpack_error"),
        (PREFACE + f.frame(f.DATA, 0, 0, b"x"), "frame_error"),  # DATA on stream 0
        (PREFACE + f.frame(f.HEADERS, 0, 1, b"") + f.frame(f.DATA, 0, 1, b""), "frame_error"),
        (PREFACE + f.frame(f.CONT, f.END_HEADERS, 1, b""), "frame_error"),  # no HEADERS
        (PREFACE + f.frame(f.DATA, f.PADDED, 1, b"\x05ab"), "frame_error"),  # pad > payload
        (PREFACE + f.frame(f.RST, 0, 1, b"\0"), "frame_error"),
    ],
)
def test_broken_connections_are_counted_by_reason(client: bytes, reason: str) -> None:
    out, p = run(client, b"")
    assert p.failed == reason and p.counts["http2_" + reason] == 1
    assert all(Flag.PARSE_ERROR in e.flags for e in out)


def test_bad_field_is_counted() -> None:
    cs = f.Side()
    client = PREFACE + cs.headers(1, [(":method", "GET"), (":path", "/a b")], end=True)
    out, p = run(client, f.Side().headers(1, OK, end=True))
    assert out == [] and p.counts["http2_bad_field"] == 1


def test_h2c_upgrade_stream_one_is_the_http1_request() -> None:
    up = Request(b"GET /u HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
                 b"Connection: Upgrade, HTTP2-Settings\r\n\r\n", ts_first_ns=5)  # fmt: skip
    p = HTTP2Parser(CONN)
    p.upgraded(up)
    out = p.client_data(PREFACE + f.settings(), 6)
    out += p.server_data(f.settings() + f.Side().headers(1, OK) + f.Side().data(1, b"up!"), 7)
    (ex,) = out
    assert ex.request is up and ex.response.raw.endswith(b"\r\n\r\nup!")  # type: ignore[union-attr]
    assert ex.meta["h2.stream"] == "1" and ex.complete


def test_assembler_recognises_prior_knowledge_and_server_first_settings() -> None:
    c, s = f.simple([(f.get("/a"), b"")], [(OK, b"x")])
    for order in ("client_first", "server_first"):
        asm = TrafficAssembler()
        segs = [
            TcpSegment(1, "127.0.0.1", 40000, "127.0.0.1", 8080, 1, 0, 0x18, c),
            TcpSegment(2, "127.0.0.1", 8080, "127.0.0.1", 40000, 1, 0, 0x18, s),
        ]
        if order == "server_first":
            segs.reverse()
        out = asm.feed_batch(segs) + asm.flush()
        assert [e.request.target for e in out] == ["/a"], order
        assert asm.stats.http2_flows == 1 and asm.stats.non_http_flows == 0


def test_looks_like_settings() -> None:
    assert looks_like_settings(f.settings(max_concurrent_streams=100))
    assert not looks_like_settings(b"HTTP/1.1 200 OK\r\n")
    assert not looks_like_settings(f.frame(f.HEADERS, 4, 1, b"x"))


_fields = st.lists(
    st.tuples(
        st.text(alphabet="abcdefghij-", min_size=1, max_size=8).filter(
            lambda n: n not in ("host", "transfer-encoding")
        ),
        st.text(alphabet="abc XYZ019;=/", max_size=12).map(str.strip),
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(
    reqs=st.lists(st.tuples(_fields, st.binary(max_size=50)), min_size=1, max_size=4),
    resp_fields=_fields,
    resp_body=st.binary(max_size=50),
    step=st.integers(1, 40),
)
def test_property_every_stream_round_trips(
    reqs: list[tuple[list[tuple[str, str]], bytes]],
    resp_fields: list[tuple[str, str]],
    resp_body: bytes,
    step: int,
) -> None:
    requests = [
        ([(":method", "POST"), (":path", f"/{i}"), *fl], b) for i, (fl, b) in enumerate(reqs)
    ]
    responses = [([(":status", "200"), *resp_fields], resp_body)] * len(reqs)
    c, s = f.simple(requests, responses)
    out, p = run(c, s, step=step)
    assert p.failed is None and len(out) == len(reqs)
    for ex in sorted(out, key=lambda e: int(e.meta["h2.stream"])):
        i = int(ex.request.target[1:])
        fields, body, tr = h2msg.request_fields(ex.request, ex.meta)
        assert fields[2:] == reqs[i][0] and body == reqs[i][1] and tr is None
        assert ex.response is not None and ex.response.body() == resp_body
        assert h2msg.response_fields(ex.response)[0][1:] == resp_fields


@settings(max_examples=200, deadline=None)
@given(client=st.binary(max_size=200), server=st.binary(max_size=200))
def test_property_garbage_never_raises(client: bytes, server: bytes) -> None:
    for c in (client, PREFACE + client):
        out, _ = run(c, server, step=13)
        for ex in out:
            ex.summary()


UPGRADE_REQ = (
    b"GET /u HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


@pytest.mark.parametrize("glued", [True, False])
def test_assembler_follows_an_upgrade_to_h2c(glued: bool) -> None:
    ss, cs = f.Side(), f.Side()
    server_h2 = f.settings() + ss.headers(1, OK) + ss.data(1, b"upgraded")
    client_h2 = PREFACE + f.settings() + cs.headers(3, f.get("/next"), end=True)
    server_h2 += ss.headers(3, OK, end=True)

    def seg(ts: int, client: bool, seq: int, data: bytes) -> TcpSegment:
        if client:
            return TcpSegment(ts, "127.0.0.1", 40000, "127.0.0.1", 8080, seq, 0, 0x18, data)
        return TcpSegment(ts, "127.0.0.1", 8080, "127.0.0.1", 40000, seq, 0, 0x18, data)

    segs = [seg(1, True, 1, UPGRADE_REQ)]
    if glued:
        segs += [
            seg(2, False, 1, SWITCH + server_h2),
            seg(3, True, 1 + len(UPGRADE_REQ), client_h2),
        ]
    else:
        segs += [
            seg(2, False, 1, SWITCH),
            seg(3, True, 1 + len(UPGRADE_REQ), client_h2),
            seg(4, False, 1 + len(SWITCH), server_h2),
        ]
    asm = TrafficAssembler()
    out = asm.feed_batch(segs) + asm.flush()
    by = {e.meta.get("h2.stream"): e for e in out}
    assert set(by) == {"1", "3"}, out
    one = by["1"]
    assert one.request.raw == UPGRADE_REQ and [r.status for r in one.interim] == [101]
    assert one.response is not None and one.response.raw.endswith(b"\r\n\r\nupgraded")
    assert Flag.UPGRADE not in one.flags and one.complete
    assert by["3"].request.target == "/next" and by["3"].complete
    assert asm.stats.http2["http2_upgrades"] == 1 and asm.stats.tunnel_bytes == 0


def test_other_upgrades_stay_tunnels() -> None:
    ws_req = UPGRADE_REQ.replace(b"h2c", b"websocket")
    ws_resp = SWITCH.replace(b"h2c", b"websocket")
    asm = TrafficAssembler()
    out = (
        asm.feed_batch(
            [
                TcpSegment(1, "127.0.0.1", 40000, "127.0.0.1", 8080, 1, 0, 0x18, ws_req),
                TcpSegment(
                    2, "127.0.0.1", 8080, "127.0.0.1", 40000, 1, 0, 0x18, ws_resp + b"\x81\x02hi"
                ),
            ]
        )
        + asm.flush()
    )
    (ex,) = out
    assert Flag.UPGRADE in ex.flags and asm.stats.tunnel_bytes == 4 and not asm.stats.http2_flows


def test_bounds_streams_and_header_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import replaygate.protocol.http2 as h2mod

    monkeypatch.setattr(h2mod, "_MAX_OPEN_STREAMS", 3)
    cs = f.Side()
    client = PREFACE + b"".join(cs.headers(1 + 2 * i, f.get(f"/{i}")) for i in range(5))
    out, p = run(client, b"")
    assert p.counts["http2_too_many_streams"] == 2
    assert [e.request.target for e in out] == ["/0", "/1", "/2", "/3", "/4"]
    assert all(Flag.REQUEST_TRUNCATED in e.flags and Flag.NO_RESPONSE in e.flags for e in out)
    flood = PREFACE + f.frame(f.HEADERS, 0, 1, b"\x82") + f.frame(f.CONT, 0, 1, b"\0" * (1 << 20))
    _, p2 = run(flood, b"")
    assert p2.failed == "header_block_too_large"
