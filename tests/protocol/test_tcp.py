"""StreamReassembler: ordering, retransmissions, overlaps, gaps, FIN, SYN data, wraparound."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.protocol.tcp import DATA, EOF, GAP, Event, StreamReassembler

WRAP = 1 << 32


def stream(events: list[Event]) -> bytes:
    """Delivered bytes with gaps shown as '?' so tests can see where they are."""
    out = b""
    for kind, value in events:
        if kind == DATA:
            assert isinstance(value, bytes)
            out += value
        elif kind == GAP:
            assert isinstance(value, int)
            out += b"?" * value
    return out


def test_in_order() -> None:
    rs = StreamReassembler()
    rs.syn(999)
    assert stream(rs.segment(1000, b"abc") + rs.segment(1003, b"def")) == b"abcdef"
    assert rs.stats.delivered_bytes == 6 and rs.stats.retransmitted_bytes == 0


def test_syn_less_start_and_out_of_order() -> None:
    rs = StreamReassembler()
    ev = rs.segment(50, b"ab")
    ev += rs.segment(56, b"gh")
    ev += rs.segment(54, b"ef")
    assert stream(ev) == b"ab"
    ev = rs.segment(52, b"cd")
    assert stream(ev) == b"cdefgh" and rs.held_bytes == 0
    assert rs.stats.out_of_order_segments == 2


def test_retransmission_first_copy_wins() -> None:
    rs = StreamReassembler()
    rs.syn(0)
    ev = rs.segment(1, b"hello") + rs.segment(1, b"HELLO") + rs.segment(3, b"LLOworld")
    assert stream(ev) == b"helloworld"  # "HELLO" dropped, "LLO" trimmed: first copy wins
    assert rs.stats.retransmitted_bytes == 5 + 3


def test_held_duplicates_keep_longest() -> None:
    rs = StreamReassembler()
    rs.syn(0)
    ev = rs.segment(4, b"de") + rs.segment(4, b"defg") + rs.segment(4, b"d")
    ev += rs.segment(1, b"abc")
    assert stream(ev) == b"abcdefg"


def test_wraparound() -> None:
    rs = StreamReassembler()
    isn = WRAP - 3
    rs.syn(isn)
    ev = rs.segment(WRAP - 2, b"ab")
    ev += rs.segment(2, b"ef")  # after the wrap, out of order
    ev += rs.segment(0, b"cd")
    assert stream(ev) == b"abcdef"
    assert rs.offset(4) == 6 and rs.offset(WRAP - 2) == 0


def test_buffer_bound_declares_gap() -> None:
    rs = StreamReassembler(max_buffered=10)
    rs.syn(0)
    ev = rs.segment(1, b"ab") + rs.segment(10, b"123456") + rs.segment(16, b"789012")
    assert stream(ev) == b"ab" + b"?" * 7 + b"123456789012"
    assert rs.stats.gaps == 1 and rs.stats.gap_bytes == 7


def test_ack_beyond_hole_declares_gap() -> None:
    rs = StreamReassembler()
    rs.syn(0)
    ev = rs.segment(1, b"ab") + rs.segment(6, b"fg")
    assert stream(ev) == b"ab"
    assert rs.ack(4) == []  # the peer has not passed the hole's end yet: wait
    assert stream(rs.ack(8)) == b"???fg"
    assert rs.ack(100) == []  # nothing held: nothing to declare


def test_flush_and_fin() -> None:
    rs = StreamReassembler()
    rs.syn(0)
    ev = rs.segment(1, b"ab") + rs.segment(5, b"ef", fin=True)
    assert not rs.finished
    ev += rs.flush()
    assert stream(ev) == b"ab??ef" and ev[-1] == (EOF, 0) and rs.finished


def test_fin_after_out_of_order_data() -> None:
    rs = StreamReassembler()
    rs.syn(0)
    ev = rs.segment(4, b"", fin=True) + rs.segment(1, b"abc")
    assert ev == [(DATA, b"abc"), (EOF, 0)]


def test_data_in_syn() -> None:
    rs = StreamReassembler()
    ev = rs.segment(100, b"GET", syn=True) + rs.segment(104, b" /")
    assert stream(ev) == b"GET /"


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=1, max_size=2000),
    st.lists(st.integers(1, 300), min_size=1, max_size=30),
    st.integers(0, WRAP - 1),
    st.randoms(use_true_random=False),
)
def test_shuffled_duplicated_overlapping_segments(
    data: bytes, sizes: list[int], isn: int, rnd: random.Random
) -> None:
    segs: list[tuple[int, bytes]] = []
    pos = 0
    i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        i += 1
        segs.append((pos, data[pos : pos + n]))
        pos += n
    extra = []
    for start, chunk in segs:
        if rnd.random() < 0.3:
            extra.append((start, chunk))  # duplicate
        if rnd.random() < 0.3 and start + len(chunk) < len(data):
            cut = rnd.randrange(0, len(chunk))
            extra.append((start + cut, data[start + cut : start + len(chunk) + 5]))  # overlap
    segs += extra
    rnd.shuffle(segs)
    rs = StreamReassembler()
    rs.syn(isn)
    ev: list[Event] = []
    for start, chunk in segs:
        ev += rs.segment((isn + 1 + start) % WRAP, chunk)
    ev += rs.flush()
    # With the SYN known, every byte is delivered exactly once whatever the arrival order.
    assert stream(ev) == data
    assert rs.stats.gaps == 0 and rs.held_bytes == 0


def test_bogus_far_ack_is_ignored() -> None:
    rs = StreamReassembler()
    rs.syn(0)
    rs.segment(1, b"ab")
    rs.segment(10, b"xy")
    assert rs.ack((1 + (1 << 31) - 5) % WRAP) == []  # half the sequence space away: not believed
    assert rs.held_bytes == 2


def test_fin_with_data_and_retransmitted_fin() -> None:
    rs = StreamReassembler()
    rs.syn(0)
    ev = rs.segment(1, b"bye", fin=True)
    assert ev == [(DATA, b"bye"), (EOF, 0)]
    assert rs.segment(1, b"bye", fin=True) == [] and rs.stats.retransmitted_bytes == 3


def test_repeated_overflow_keeps_memory_bounded() -> None:
    rs = StreamReassembler(max_buffered=100)
    rs.syn(0)
    ev: list[Event] = []
    for k in range(50):  # every other 50-byte block is lost
        ev += rs.segment(1 + 100 * k + 50, b"z" * 50)
        assert rs.held_bytes <= 100
    ev += rs.flush()
    assert stream(ev) == (b"?" * 50 + b"z" * 50) * 50
    assert rs.stats.gaps == 50
