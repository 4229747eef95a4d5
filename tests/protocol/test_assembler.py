"""TrafficAssembler: segments of many connections in, exchanges out; roles, ends, expiry,
bounded memory, loss, and arbitrary segment orders."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.model import ConnectionId, Exchange, Flag
from replaygate.protocol.assembler import AssemblerConfig, AssemblerStats, TrafficAssembler
from replaygate.protocol.linklayer import decode_frame
from replaygate.protocol.segment import ACK, FIN, PSH, RST, SYN, TcpSegment
from replaygate.testing.servers import NginxServer

GET = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
T0 = 1_700_000_000_000_000_000


class Conv:
    """Builds the segments of one TCP connection, tracking sequence numbers."""

    def __init__(
        self, cport: int = 40000, sport: int = 80, isn_c: int = 1000, isn_s: int = 5000
    ) -> None:
        self.c = ("10.0.0.1", cport)
        self.s = ("10.0.0.2", sport)
        self.seq = {True: isn_c, False: isn_s}
        self.ts = T0

    def _seg(self, from_client: bool, flags: int, payload: bytes = b"", adv: int = 0) -> TcpSegment:
        self.ts += 1000
        src, dst = (self.c, self.s) if from_client else (self.s, self.c)
        seq = self.seq[from_client] % (1 << 32)
        ack = self.seq[not from_client] % (1 << 32)
        self.seq[from_client] += len(payload) + adv
        return TcpSegment(self.ts, src[0], src[1], dst[0], dst[1], seq, ack, flags, payload)

    def handshake(self) -> list[TcpSegment]:
        return [self._seg(True, SYN, adv=1), self._seg(False, SYN | ACK, adv=1)]

    def data(self, from_client: bool, payload: bytes, mss: int = 1460) -> list[TcpSegment]:
        return [
            self._seg(from_client, PSH | ACK, payload[i : i + mss])
            for i in range(0, len(payload), mss)
        ]

    def fin(self, from_client: bool) -> TcpSegment:
        return self._seg(from_client, FIN | ACK, adv=1)

    def rst(self, from_client: bool) -> TcpSegment:
        return self._seg(from_client, RST)

    def full(self, req: bytes = GET, resp: bytes = OK) -> list[TcpSegment]:
        return [
            *self.handshake(),
            *self.data(True, req),
            *self.data(False, resp),
            self.fin(True),
            self.fin(False),
        ]


def feed(
    segs: list[TcpSegment], config: AssemblerConfig | None = None
) -> tuple[list[Exchange], AssemblerStats]:
    asm = TrafficAssembler(config)
    out = asm.feed_batch(segs)
    out += asm.flush()
    return out, asm.stats


def test_one_connection() -> None:
    segs = Conv().full()
    asm = TrafficAssembler()
    out = asm.feed_batch(segs)  # FIN from both sides: returned without a flush
    assert len(out) == 1
    ex = out[0]
    assert ex.complete and ex.request.raw == GET and ex.response is not None
    assert ex.response.raw == OK
    assert ex.conn == ConnectionId("10.0.0.1", 40000, "10.0.0.2", 80)
    assert ex.request.ts_first_ns == segs[2].ts_ns and ex.response.ts_last_ns == segs[3].ts_ns
    st = asm.stats
    assert (st.flows_total, st.flows_closed, st.flows_active, st.exchanges_complete) == (1, 1, 0, 1)
    assert asm.flush() == []
    assert set(st.as_dict()) >= {"segments", "gaps", "non_http_flows", "orphan_responses"}


def test_ids_are_stable() -> None:
    a, _ = feed(Conv().full())
    b, _ = feed(Conv().full())
    assert [e.id for e in a] == [e.id for e in b]


def test_syn_ack_before_syn() -> None:
    segs = Conv().full()
    segs[0], segs[1] = segs[1], segs[0]
    out, _ = feed(segs)
    assert len(out) == 1 and out[0].complete and out[0].conn is not None
    assert out[0].conn.dport == 80


def test_midstream_without_syn_on_odd_ports() -> None:
    conv = Conv(cport=9000, sport=20000)  # the client has the lower port
    segs = [*conv.data(True, GET), *conv.data(False, OK)]
    out, st = feed(segs)
    assert len(out) == 1 and out[0].complete and st.flows_midstream == 1
    assert out[0].conn == ConnectionId("10.0.0.1", 9000, "10.0.0.2", 20000)


def test_midstream_response_first_uses_port_heuristics() -> None:
    conv = Conv(cport=51000, sport=8080)
    segs = [*conv.data(False, b"tail of body"), *conv.data(True, GET), *conv.data(False, OK)]
    out, _ = feed(segs)
    assert [e.request.target for e in out] == ["/a"] and out[0].response is not None


def test_server_ports_config() -> None:
    conv = Conv(cport=7000, sport=45000)
    segs = [*conv.data(False, b"garbage"), *conv.data(True, GET), *conv.data(False, OK)]
    out, _ = feed(segs, AssemblerConfig(server_ports=frozenset({45000})))
    assert len(out) == 1 and out[0].conn is not None and out[0].conn.dport == 45000


def test_data_in_syn() -> None:
    conv = Conv()
    syn = conv._seg(True, SYN, GET, adv=1)
    segs = [syn, conv._seg(False, SYN | ACK, adv=1), *conv.data(False, OK)]
    out, _ = feed(segs)
    assert len(out) == 1 and out[0].request.raw == GET and out[0].complete


def test_rst_closes_both_directions() -> None:
    conv = Conv()
    segs = [*conv.handshake(), *conv.data(True, GET + GET), *conv.data(False, OK), conv.rst(False)]
    asm = TrafficAssembler()
    out = asm.feed_batch(segs)
    assert len(out) == 2 and Flag.NO_RESPONSE in out[1].flags
    assert asm.stats.flows_reset == 1 and asm.stats.requests_without_response == 1


def test_retransmissions_and_reordering() -> None:
    conv = Conv()
    body = b"x" * 5000
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + body
    segs = [*conv.handshake(), *conv.data(True, GET)]
    rsegs = conv.data(False, resp)
    segs += [rsegs[0], rsegs[2], rsegs[1], rsegs[1], rsegs[3], rsegs[0]]
    out, st = feed(segs)
    assert len(out) == 1 and out[0].complete and out[0].response is not None
    assert out[0].response.raw == resp
    assert st.retransmitted_bytes == len(rsegs[1].payload) + len(rsegs[0].payload)


def test_lost_segment_marks_gap_and_keeps_going() -> None:
    conv = Conv()
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n" + b"y" * 4000
    segs = [*conv.handshake(), *conv.data(True, GET)]
    rsegs = conv.data(False, big)
    segs += [rsegs[0], rsegs[2]]  # rsegs[1] lost by the capture
    segs += conv.data(True, GET)  # its ACK covers the whole response: the hole is a gap
    segs += conv.data(False, OK)
    out, st = feed(segs)
    assert [Flag.RESPONSE_GAP in e.flags for e in out] == [True, False]
    assert out[1].complete and st.gaps == 1 and st.gap_bytes == len(rsegs[1].payload)


def test_seq_wraparound() -> None:
    conv = Conv(isn_c=(1 << 32) - 10, isn_s=(1 << 32) - 3)
    out, st = feed(conv.full(GET * 3, OK * 3))
    assert len(out) == 3 and all(e.complete for e in out) and st.gaps == 0


def test_idle_expiry() -> None:
    conv = Conv()
    asm = TrafficAssembler(AssemblerConfig(idle_timeout_s=10))
    assert asm.feed_batch([*conv.handshake(), *conv.data(True, GET)]) == []
    assert asm.expire(conv.ts + 5 * 10**9) == []
    out = asm.expire(conv.ts + 11 * 10**9)
    assert len(out) == 1 and Flag.NO_RESPONSE in out[0].flags
    assert asm.stats.flows_expired == 1 and asm.stats.flows_expired_incomplete == 1


def test_idle_flows_expire_during_feed() -> None:
    asm = TrafficAssembler(AssemblerConfig(idle_timeout_s=1))
    a, b = Conv(cport=1111), Conv(cport=2222)
    asm.feed_batch([*a.handshake(), *a.data(True, GET)])
    b.ts = a.ts + 5 * 10**9
    out = asm.feed_batch(b.handshake())
    assert len(out) == 1 and out[0].conn is not None and out[0].conn.sport == 1111


def test_max_flows_evicts_oldest() -> None:
    asm = TrafficAssembler(AssemblerConfig(max_flows=2))
    out: list[Exchange] = []
    convs = [Conv(cport=30000 + i) for i in range(3)]
    for i, c in enumerate(convs):
        c.ts += i * 10_000
        out += asm.feed_batch([*c.handshake(), *c.data(True, GET)])
    assert asm.stats.flows_evicted == 1 and asm.stats.flows_active == 2
    assert [e.conn.sport for e in out if e.conn] == [30000]
    out += asm.flush()
    assert len(out) == 3


def test_port_reuse_starts_a_new_connection() -> None:
    first = Conv(isn_c=100).full()
    second = Conv(isn_c=900_000).full()
    for s in second:
        s.ts_ns += 10**6
    out, st = feed(first[:-1] + second)  # the first one never sees the server's FIN
    assert len(out) == 2 and all(e.complete for e in out) and st.flows_total == 2


def _syn_again(seg: TcpSegment, later_ns: int) -> TcpSegment:
    """The same SYN retransmitted (same ISN; its TCP timestamp option, which the assembler
    does not read, and its capture time differ)."""
    return TcpSegment(
        seg.ts_ns + later_ns, seg.src, seg.sport, seg.dst, seg.dport, seg.seq, seg.ack,
        seg.flags, seg.payload,
    )  # fmt: skip


def test_retransmitted_syn_is_one_connection() -> None:
    segs = Conv().full()
    syn = segs[0]
    for where in (1, 2, 3, 4, len(segs) - 1):  # before the SYN-ACK ... after the data
        again = _syn_again(syn, 500)
        out, st = feed([*segs[:where], again, *segs[where:]])
        assert len(out) == 1 and out[0].complete, (where, [e.flags for e in out])
        assert st.flows_total == 1, where


def test_syn_retransmitted_after_close_is_late_not_a_new_connection() -> None:
    segs = Conv().full()
    again = _syn_again(segs[0], 10**6)
    late_data = _syn_again(segs[2], 10**6)  # the request, retransmitted, captured late
    late_data.flags = PSH | ACK
    out, st = feed([*segs, again, late_data])
    assert len(out) == 1 and st.flows_total == 1
    assert st.late_segments == 2


def test_tls_flow_is_counted_not_parsed() -> None:
    conv = Conv(sport=443)
    segs = [*conv.handshake(), *conv.data(True, b"\x16\x03\x01\x02\x00" + b"\x01" * 500)]
    segs += conv.data(False, b"\x16\x03\x03" + b"\x02" * 3000)
    out, st = feed(segs)
    assert out == [] and st.non_http_flows == 1 and st.non_http_bytes > 3000


def test_late_segment_after_close_is_ignored() -> None:
    conv = Conv()
    segs = conv.full()
    late = segs[2]
    out, st = feed([*segs, late])
    assert len(out) == 1 and st.late_segments == 1 and st.flows_total == 1


def test_bare_acks_do_not_create_flows() -> None:
    conv = Conv()
    out, st = feed([conv._seg(True, ACK), conv._seg(False, FIN | ACK)])
    assert out == [] and st.flows_total == 0


def test_vlan_separates_flows() -> None:
    a = Conv().full()
    b = Conv().full()
    for s in b:
        s.vlan = (7,)
    out, st = feed(a[:3] + b[:3] + a[3:] + b[3:])
    assert len(out) == 2 and st.flows_total == 2 and all(e.complete for e in out)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4), st.integers(1, 600), st.randoms(use_true_random=False))
def test_any_interleaving_of_connections(n: int, mss: int, rnd: random.Random) -> None:
    """Several connections, segments cut at ``mss`` and interleaved arbitrarily across
    connections (each connection's own segments in order) give the same exchanges."""
    per_conn: list[list[TcpSegment]] = []
    for i in range(n):
        conv = Conv(cport=41000 + i, isn_c=rnd.randrange(1 << 32), isn_s=rnd.randrange(1 << 32))
        segs = [*conv.handshake()]
        for k in range(3):
            segs += conv.data(True, GET.replace(b"/a", b"/%d" % k), mss)
            segs += conv.data(False, OK, mss)
        segs += [conv.fin(True), conv.fin(False)]
        per_conn.append(segs)
    merged: list[TcpSegment] = []
    queues = [list(s) for s in per_conn]
    while any(queues):
        q = rnd.choice([q for q in queues if q])
        merged.append(q.pop(0))
    out, st = feed(merged)
    assert len(out) == 3 * n and all(e.complete for e in out)
    by_conn: dict[int, list[str]] = {}
    for e in out:
        assert e.conn is not None
        by_conn.setdefault(e.conn.sport, []).append(e.request.target)
    assert all(t == ["/0", "/1", "/2"] for t in by_conn.values())
    assert st.flows_closed == n


@settings(max_examples=100, deadline=None)
@given(st.integers(20, 400), st.integers(0, 1 << 32))
def test_shuffled_and_duplicated_segments_within_messages(mss: int, seed: int) -> None:
    """Each message's segments arrive shuffled, some twice, some overlapping retransmissions
    of a longer range: the exchanges are the same as in order."""
    rnd = random.Random(seed)
    conv = Conv(isn_c=rnd.randrange(1 << 32), isn_s=rnd.randrange(1 << 32))
    body = (bytes(range(256)) * 6)[:1500]
    req = b"POST /u HTTP/1.1\r\nContent-Length: 1500\r\n\r\n" + body
    resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5dc\r\n" + body + b"\r\n0\r\n\r\n"
    segs = [*conv.handshake()]
    for _ in range(2):
        for from_client, msg in ((True, req), (False, resp)):
            part = conv.data(from_client, msg, mss)
            extra = [p for p in part if rnd.random() < 0.3]
            if len(part) > 1 and rnd.random() < 0.5:  # a retransmission covering two segments
                a = part[0]
                extra.append(
                    TcpSegment(
                        a.ts_ns,
                        a.src,
                        a.sport,
                        a.dst,
                        a.dport,
                        a.seq,
                        a.ack,
                        a.flags,
                        a.payload + part[1].payload,
                    )
                )
            part += extra
            rnd.shuffle(part)
            segs += part
    segs += [conv.fin(True), conv.fin(False)]
    out, st = feed(segs)
    assert [(e.request.raw, e.response.raw if e.response else None) for e in out] == [
        (req, resp),
        (req, resp),
    ]
    assert all(e.complete for e in out) and st.gaps == 0


def test_live_loopback_capture(needs_root: None, nginx: NginxServer) -> None:
    """Real kernel segments: nginx on lo, captured with an AF_PACKET socket, decoded by the
    link layer and assembled; every request sent comes back as a complete exchange."""
    frames: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def capture(cap: socket.socket) -> None:
        # after ``stop``, drain what the socket already holds (frames on lo are queued before
        # the sending call returns), then end: no sleeping for "the last packets"
        while True:
            try:
                frame, addr = cap.recvfrom(1 << 17)
            except TimeoutError:
                if stop.is_set():
                    return
                continue
            if addr[2] != socket.PACKET_OUTGOING:  # lo shows every packet out and in: keep one
                frames.append((time.time_ns(), frame))

    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003)) as cap:
        cap.bind(("lo", 0))
        cap.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root): no drops
        cap.settimeout(0.05)
        reader = threading.Thread(target=capture, args=(cap,))
        reader.start()
        try:
            for i in range(3):
                with socket.create_connection((nginx.host, nginx.port), timeout=10) as c:
                    reqs = b"GET /json?%d HTTP/1.1\r\nHost: t\r\n\r\n" % i * 5
                    reqs += b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n"
                    reqs += b"Connection: close\r\n\r\n" + b"p" * 70000
                    c.sendall(reqs)
                    sent += 6
                    while c.recv(65536):
                        pass
        finally:
            stop.set()
            reader.join()
    segs = [
        seg
        for ts, frame in frames
        if (seg := decode_frame(1, frame, ts, None, None)) is not None
        and nginx.port in (seg.sport, seg.dport)
    ]
    out, st = feed(segs)
    assert len(out) == sent and all(e.complete for e in out), [e.flags for e in out]
    assert [e.response.status for e in out if e.response] == [200] * sent
    assert sum(len(e.request.body()) for e in out) == 3 * 70000 and st.gaps == 0


def test_close_delimited_body_ends_with_fin_or_rst_not_with_the_capture() -> None:
    resp = b"HTTP/1.0 200 OK\r\n\r\nuntil the end"
    for end, truncated in (("fin", False), ("rst", False), ("capture", True)):
        conv = Conv()
        segs = [*conv.handshake(), *conv.data(True, GET), *conv.data(False, resp)]
        if end == "fin":
            segs += [conv.fin(False), conv.fin(True)]
        elif end == "rst":
            segs.append(conv.rst(False))
        out, _ = feed(segs)
        assert len(out) == 1 and out[0].response is not None
        assert len(out[0].response.body()) == 13 and Flag.CLOSE_DELIMITED in out[0].flags
        assert (Flag.RESPONSE_TRUNCATED in out[0].flags) is truncated, end


def test_ipv6_connection_id() -> None:
    conv = Conv()
    conv.c = ("2001:db8::1", 40000)
    conv.s = ("2001:db8::2", 80)
    out, _ = feed(conv.full())
    assert len(out) == 1 and str(out[0].conn) == "[2001:db8::1]:40000->[2001:db8::2]:80"


def test_flow_without_any_http_is_given_up() -> None:
    conv = Conv(cport=40000, sport=9999)
    junk = bytes(range(1, 256)).replace(b"\n", b"") * 5000  # ~1.2 MiB, no line ends
    segs = [*conv.handshake(), *conv.data(True, junk, 60000)]
    out, st = feed(segs)
    assert out == [] and st.non_http_flows == 1 and st.skipped_bytes > 1 << 20


def test_rst_while_segments_are_held() -> None:
    conv = Conv()
    segs = [*conv.handshake(), *conv.data(True, GET)]
    r = conv.data(False, b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"x" * 3000)
    segs += [r[0], r[2], conv.rst(True)]  # r[1] never seen, then the client resets
    out, st = feed(segs)
    # the gap fell inside the sized body: skipped by its length, the message still ends
    assert len(out) == 1 and out[0].flags == {Flag.RESPONSE_GAP} and out[0].response is not None
    assert len(out[0].response.body()) == 3000 - len(r[1].payload)
    assert st.flows_reset == 1 and st.gaps == 1


def test_parser_config_is_passed_through() -> None:
    from replaygate.protocol.http1 import ParserConfig

    big = b"GET /h HTTP/1.1\r\nX-Big: " + b"b" * 500 + b"\r\n\r\n"
    out, st = feed(Conv().full(big), AssemblerConfig(parser=ParserConfig(max_head_bytes=200)))
    assert len(out) == 1 and Flag.PARSE_ERROR in out[0].flags and st.parse_errors == 1


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 1 << 32), st.integers(30, 300))
def test_bare_ack_fast_path_changes_nothing(seed: int, mss: int) -> None:
    """Bare ACKs anywhere (before a side's first byte, acknowledging holes, after FIN, from
    the wrong side), with lost, reordered and repeated segments: the shortcut for bare ACKs
    gives the same exchanges and counters as the general path."""
    segs = _messy_segments(seed, mss)

    def run(fast: bool) -> tuple[object, ...]:
        asm = TrafficAssembler()
        asm.ack_fast_path = fast
        out = asm.feed_batch(segs) + asm.flush()
        return [
            (e.id, e.request.raw, e.response.raw if e.response else None, sorted(e.flags))
            for e in out
        ], asm.stats.as_dict()

    assert run(True) == run(False)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 1 << 32), st.integers(30, 300), st.booleans())
def test_in_order_data_fast_path_changes_nothing(seed: int, mss: int, h2c: bool) -> None:
    """In-order data handed straight to the HTTP/1 parser (``data_fast_path``) gives the same
    exchanges and counters as going through the reassembler's events, with lost, reordered
    and repeated segments, bare ACKs, FINs, and an h2c upgrade."""
    segs = _messy_segments(seed, mss, h2c=h2c)

    def run(fast: bool) -> tuple[object, ...]:
        asm = TrafficAssembler()
        asm.data_fast_path = fast
        out = asm.feed_batch(segs) + asm.flush()
        return [
            (e.id, e.seq, e.request.raw, e.response.raw if e.response else None,
             sorted(e.flags), e.request.ts_first_ns, e.response.ts_last_ns if e.response else 0)
            for e in out
        ], asm.stats.as_dict()  # fmt: skip

    assert run(True) == run(False)


_H2C_UP = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
_H2C_101 = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


def _messy_segments(seed: int, mss: int, *, h2c: bool = False) -> list[TcpSegment]:
    rnd = random.Random(seed)
    conv = Conv(isn_c=rnd.randrange(1 << 32), isn_s=rnd.randrange(1 << 32))
    segs = [*conv.handshake()] if rnd.random() < 0.7 else []
    for i in range(rnd.randint(1, 4)):
        for from_client, msg in ((True, GET.replace(b"/a", b"/%d" % i)), (False, OK)):
            part = conv.data(from_client, msg, mss)
            part += [p for p in part if rnd.random() < 0.2]
            if rnd.random() < 0.3:
                part.pop(rnd.randrange(len(part)))  # lost by the capture
            rnd.shuffle(part)
            for p in part:
                segs.append(p)
                if rnd.random() < 0.5:
                    segs.append(conv._seg(rnd.random() < 0.5, ACK))
    if h2c:
        segs += conv.data(True, _H2C_UP, mss) + conv.data(False, _H2C_101, mss)
        segs += conv.data(True, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", mss)
    if rnd.random() < 0.7:
        segs += [conv.fin(True), conv._seg(False, ACK), conv.fin(False), conv._seg(True, ACK)]
    if rnd.random() < 0.3:
        segs.insert(rnd.randrange(len(segs) + 1), conv._seg(True, ACK))
    return segs


@pytest.mark.parametrize("lost", [2, 3, 5])
def test_pipelined_answers_across_a_lost_segment_keep_their_lengths(lost: int) -> None:
    """A segment lost by the capture (the peer's ACK says it was delivered) inside pipelined
    answers: the answer it cut is flagged, every later answer keeps its exact body."""
    conv = Conv()
    bodies = [b"first-" + b"a" * 60, b"second-" + b"b" * 30, b"third-" + b"c" * 45]
    resp = b"".join(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b) for b in bodies
    )
    segs = [*conv.handshake(), *conv.data(True, GET * 3)]
    answer = conv.data(False, resp, mss=24)
    segs += [s for i, s in enumerate(answer) if i != lost]
    segs.append(conv._seg(True, ACK))  # the client acknowledged everything
    segs += [conv.fin(True), conv.fin(False)]
    out, st = feed(segs)
    assert st.gaps == 1
    got = [e.response.body() if e.complete and e.response else None for e in out]
    cut = 0 if lost < 5 else 1  # segments 2-3 are inside the first body, 5 in the second
    assert got == [None if i == cut else b for i, b in enumerate(bodies)]
    assert Flag.RESPONSE_GAP in out[cut].flags


def test_malformed_request_lines_are_counted() -> None:
    conv = Conv()
    segs = conv.full(req=b"GET /pathHTTP/1.1\r\nHost: h\r\n\r\n")
    out, st = feed(segs)
    assert len(out) == 1 and Flag.MALFORMED_REQUEST_LINE in out[0].flags and out[0].complete
    assert st.malformed_request_lines == 1 and st.as_dict()["malformed_request_lines"] == 1
