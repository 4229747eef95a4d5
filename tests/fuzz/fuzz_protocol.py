"""Fuzz targets for the sans-I/O protocol code: HTTP/1 stream parser, TCP reassembly and the
traffic assembler. Each target decodes the fuzz input into a script of calls, so that every
path (data, gaps, ends of stream, retransmissions, wraparound) is reachable from bytes."""

from __future__ import annotations

import struct
from collections.abc import Callable

from replaygate.model import Exchange
from replaygate.protocol.assembler import AssemblerConfig, TrafficAssembler
from replaygate.protocol.http1 import HTTP1StreamParser, ParserConfig
from replaygate.protocol.segment import ACK, FIN, RST, SYN, TcpSegment
from replaygate.protocol.tcp import DATA, EOF, GAP, StreamReassembler

__all__ = ["SEEDS", "TARGETS"]

_SMALL = ParserConfig(
    max_head_bytes=2048, max_line_bytes=512, max_paused_bytes=1024, max_held_response_bytes=1024
)


def _check(out: list[Exchange], client: bytes) -> None:
    seqs = [e.seq for e in out]
    if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
        raise AssertionError(f"exchanges out of order: {seqs}")
    for e in out:
        if e.request.raw and e.request.raw not in client:
            raise AssertionError("request bytes that the client never sent")
        e.summary()


def fuzz_http1(data: bytes) -> None:
    """Script: [op][len][bytes...] repeated; op%6 = client, server, gaps, eofs."""
    p = HTTP1StreamParser(config=_SMALL)
    out: list[Exchange] = []
    client = b""
    pos = 0
    ts = 0
    while pos + 2 <= len(data):
        op, n = data[pos] % 6, data[pos + 1]
        pos += 2
        ts += 1
        if op == 0:
            chunk = data[pos : pos + n]
            pos += n
            client += chunk
            out += p.client_data(chunk, ts)
        elif op == 1:
            chunk = data[pos : pos + n]
            pos += n
            out += p.server_data(chunk, ts)
        elif op == 2:
            out += p.client_gap(n + 1, ts)
        elif op == 3:
            out += p.server_gap(n + 1, ts)
        elif op == 4:
            out += p.client_eof(ts)
        else:
            out += p.server_eof(ts)
    out += p.close(ts + 1)
    _check(out, client)


def fuzz_http1_raw(data: bytes) -> None:
    """The input split in two at its first NUL: client bytes, server bytes."""
    client, _, server = data.partition(b"\x00")
    p = HTTP1StreamParser(config=_SMALL)
    out = p.client_data(client, 1) + p.server_data(server, 2) + p.close(3)
    _check(out, client)


_SEG = struct.Struct("!HBB")


def fuzz_tcp(data: bytes) -> None:
    """Segments [seq delta u16][flags][len] + payload, seq near 2**32 so it wraps."""
    rs = StreamReassembler(max_buffered=4096)
    base = 0xFFFFFF00
    pos = 0
    delivered = 0
    while pos + _SEG.size <= len(data):
        delta, flags, n = _SEG.unpack_from(data, pos)
        pos += _SEG.size
        payload = data[pos : pos + n]
        pos += n
        if flags & 0x80:
            events = rs.ack((base + delta * 8) % (1 << 32))
        else:
            seq = (base + delta) % (1 << 32)
            events = rs.segment(seq, payload, syn=bool(flags & SYN), fin=bool(flags & FIN))
        for kind, value in events:
            if kind == DATA:
                assert isinstance(value, bytes)
                delivered += len(value)
            elif kind == GAP:
                assert isinstance(value, int)
                if value <= 0:
                    raise AssertionError("empty gap")
                delivered += value
            elif kind != EOF:
                raise AssertionError("unknown event")
    for kind, value in rs.flush():
        if kind != EOF:
            assert isinstance(value, (bytes, int))
            delivered += len(value) if isinstance(value, bytes) else value
    if rs.held_bytes:
        raise AssertionError("bytes still held after flush")


def fuzz_assembler(data: bytes) -> None:
    """Segments of up to four connections between two hosts, any flags, seqs and order."""
    asm = TrafficAssembler(AssemblerConfig(max_flows=3, max_buffered_bytes=2048, parser=_SMALL))
    pos = 0
    ts = 1_700_000_000_000_000_000
    out: list[Exchange] = []
    while pos + 6 <= len(data):
        sel, flags, delta, n = data[pos], data[pos + 1], data[pos + 2 : pos + 4], data[pos + 4]
        pos += 6
        payload = data[pos : pos + n]
        pos += n
        ts += (sel & 0xF0) * 10_000_000_000
        port = 40000 + (sel & 0x3)
        to_server = bool(sel & 0x4)
        seq = (0xFFFFFF00 + int.from_bytes(delta, "big")) % (1 << 32)
        f = flags & (SYN | FIN | RST | ACK)
        if to_server:
            seg = TcpSegment(ts, "10.0.0.1", port, "10.0.0.2", 80, seq, seq, f, payload)
        else:
            seg = TcpSegment(ts, "10.0.0.2", 80, "10.0.0.1", port, seq, seq, f, payload)
        out += asm.feed(seg)
    out += asm.flush()
    st = asm.stats
    if st.exchanges_complete + st.exchanges_incomplete != len(out):
        raise AssertionError("exchange counters disagree with what was returned")
    if st.flows_active != 0:
        raise AssertionError("flows left after flush")


_CONVERSATION = (
    b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"
    b"GET /b HTTP/1.1\r\n\r\n"
    b"\x00"
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
)


def _script(*steps: tuple[int, bytes]) -> bytes:
    return b"".join(bytes([op, len(b)]) + b for op, b in steps)


def _segs(*segs: tuple[int, int, bytes]) -> bytes:
    return b"".join(_SEG.pack(d, f, len(p)) + p for d, f, p in segs)


def _asm(*segs: tuple[int, int, int, bytes]) -> bytes:
    return b"".join(
        bytes([sel, f]) + d.to_bytes(2, "big") + bytes([len(p), 0]) + p for sel, f, d, p in segs
    )


TARGETS: dict[str, Callable[[bytes], None]] = {
    "http1_script": fuzz_http1,
    "http1_raw": fuzz_http1_raw,
    "tcp_reassembly": fuzz_tcp,
    "assembler": fuzz_assembler,
}

SEEDS: dict[str, list[bytes]] = {
    "http1_raw": [
        _CONVERSATION,
        b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00"
        b"\x00HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x00",
        b"GET /x\r\n\x00raw reply",
        b"CONNECT h:443 HTTP/1.1\r\n\r\n\x16\x03\x00HTTP/1.1 200 OK\r\n\r\n\x16\x03",
    ],
    "http1_script": [
        _script(
            (
                0,
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
            ),
            (2, b""),
            (0, b"cGET / HTTP/1.1\r\n\r\n"),
            (1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n"),
            (3, b""),
            (1, b"tail HTTP/1.0 200 OK\r\n\r\nclose-delimited"),
            (5, b""),
        ),
        _script(
            (0, b"PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            (1, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody"),
            (4, b""),
        ),
    ],
    "tcp_reassembly": [
        _segs((0, SYN, b""), (1, 0, b"hello"), (11, 0, b"world"), (6, 0, b"12345"), (0x80, 0, b"")),
        _segs((0, 0, b"abc"), (0, 0, b"abcdef"), (300, FIN, b"zz"), (2, 0, b"cdefgh")),
    ],
    "assembler": [
        _asm(
            (0x04, SYN, 0, b""),
            (0x00, SYN | ACK, 0, b""),
            (0x04, ACK, 1, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            (0x00, ACK, 1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
            (0x04, FIN | ACK, 28, b""),
            (0x00, FIN | ACK, 41, b""),
        ),
        _asm(
            (0x05, ACK, 7, b"GET /a HTTP/1.1\r\n\r\n"),
            (0x01, ACK, 9, b"HTTP/1.1 200 OK\r\n\r\nbody"),
            (0x15, RST, 26, b""),
        ),
    ],
}
