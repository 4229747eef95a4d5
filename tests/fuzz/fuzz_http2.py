"""Fuzz targets for HTTP/2: the passive parser (framing, CONTINUATION, padding, HPACK state,
PUSH_PROMISE, RST_STREAM) fed a script of client/server pieces, and HPACK header blocks
alone. Seeds are real conversations built with the ``hpack`` encoder. Each may raise only
ReplaygateError (in practice: nothing; every failure is counted by reason)."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import hpack

from replaygate.compare.diff import ResponseDiffer
from replaygate.protocol import h2msg
from replaygate.protocol.http2 import PREFACE, HTTP2Parser

from ..protocol import h2frames as f

__all__ = ["SEEDS", "TARGETS"]


def http2_stream(data: bytes) -> None:
    """Script: records of [1 byte: bit 0 = server side, bit 1 = gap][2 bytes length][bytes].
    The client side starts with the preface unless the first byte's bit 2 is set."""
    p = HTTP2Parser(None, id_seed="fuzz")
    pos, ts = 0, 0
    if not data or not data[0] & 4:
        p.client_data(PREFACE, 0)
    while pos + 3 <= len(data):
        kind = data[pos]
        n = int.from_bytes(data[pos + 1 : pos + 3], "big")
        chunk = data[pos + 3 : pos + 3 + n]
        pos += 3 + n
        ts += 1
        server = bool(kind & 1)
        if kind & 2:
            out = (p.server_gap if server else p.client_gap)(len(chunk) or 1, ts)
        else:
            out = (p.server_data if server else p.client_data)(chunk, ts)
        for ex in out:
            ex.summary()
    for ex in p.close(ts + 1):
        ex.summary()


def hpack_block(data: bytes) -> None:
    """One header block as the first HEADERS of a connection, and again (dynamic table)."""
    p = HTTP2Parser(None)
    p.client_data(PREFACE + f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, data), 1)
    p.client_data(f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 3, data), 2)
    for ex in p.close(3):
        ex.summary()


_GRPC = [(":status", "200"), ("content-type", "application/grpc"), ("grpc-encoding", "gzip")]


def grpc_compare(data: bytes) -> None:
    """Two gRPC bodies (split on the first ``||``)
    through the differ: framing, gzip, protobuf decoding, tree diff."""
    a, _, b = data.partition(b"||")
    ra = h2msg.build_response(_GRPC, a, [("grpc-status", "0")])
    rb = h2msg.build_response(_GRPC, b, [("grpc-status", "13")])
    for d in ResponseDiffer().diff(ra, rb):
        d.as_dict()


def _script(client: bytes, server: bytes, step: int = 50) -> bytes:
    out = b""
    for i in range(0, max(len(client), len(server)), step):
        for side, buf in ((0, client), (1, server)):
            piece = buf[i : i + step]
            if piece:
                out += bytes([side]) + len(piece).to_bytes(2, "big") + piece
    return out


def _seeds() -> list[bytes]:
    grpc = [(":method", "POST"), (":scheme", "http"), (":path", "/s.S/M"), (":authority", "g"),
            ("content-type", "application/grpc"), ("te", "trailers")]  # fmt: skip
    c, s = f.simple(
        [(f.get("/a"), b""), (grpc, b"\0\0\0\0\x02\x08\x01")],
        [([(":status", "200"), ("content-length", "2")], b"ok"), ([(":status", "200")], b"")],
    )
    cs, ss = f.Side(), f.Side()
    c2 = cs.headers(1, f.get("/p"), end=True, split=4, pad=2)
    s2 = (
        ss.headers(1, [(":status", "200")])
        + ss.data(1, b"\0\0\0\0\0", end=False, pad=3)
        + ss.headers(1, [("grpc-status", "0")], end=True)
        + f.frame(f.RST, 0, 3, b"\0\0\0\x08")
    )
    return [_script(c, s)[1:], _script(c2, s2, 7)]


TARGETS: dict[str, Callable[[bytes], None]] = {
    "http2_stream": http2_stream,
    "hpack_block": hpack_block,
    "grpc_compare": grpc_compare,
}
SEEDS: dict[str, list[bytes]] = {
    "grpc_compare": [
        b"\0\0\0\0\x0c\x0a\x05Jason\x10\xe9\x07\x20\x01||\0\0\0\0\x07\x0a\x05Jasom",
        b"\x01\0\0\0\x19" + gzip.compress(b"\x0a\x03abc", mtime=0) + b"||",
    ],
    "http2_stream": [b"\0" + s for s in _seeds()],
    "hpack_block": [
        hpack.Encoder().encode([(b":method", b"GET"), (b":path", b"/"), (b"x-a", b"b" * 40)]),
        bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"),  # RFC 7541 C.4.1
    ],
}
