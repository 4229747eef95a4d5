"""HTTP/2 bytes for tests: frames, header blocks (real HPACK, the ``hpack`` library) and
whole client/server conversations."""

from __future__ import annotations

from collections.abc import Sequence

import hpack

from replaygate.protocol.http2 import PREFACE

DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONT = range(10)
END_STREAM, END_HEADERS, PADDED, PRIO = 0x1, 0x4, 0x8, 0x20

Fields = Sequence[tuple[str, str]]


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload
    )


def settings(**values: int) -> bytes:
    ids = {"header_table_size": 1, "max_concurrent_streams": 3, "initial_window_size": 4}
    body = b"".join(ids[k].to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in values.items())
    return frame(SETTINGS, 0, 0, body)


class Side:
    """One endpoint's encoder: header blocks share its HPACK state, as on a real link."""

    def __init__(self) -> None:
        self.enc = hpack.Encoder()

    def headers(
        self, sid: int, fields: Fields, *, end: bool = False, split: int = 0, pad: int = 0
    ) -> bytes:
        block = self.enc.encode([(k.encode(), v.encode()) for k, v in fields])
        flags = END_STREAM if end else 0
        first, rest = (block[:split], block[split:]) if split else (block, b"")
        if pad:
            first = bytes([pad]) + first + b"\0" * pad
            flags |= PADDED
        if not rest:
            return frame(HEADERS, flags | END_HEADERS, sid, first)
        return frame(HEADERS, flags, sid, first) + frame(CONT, END_HEADERS, sid, rest)

    def data(self, sid: int, body: bytes, *, end: bool = True, pad: int = 0) -> bytes:
        if pad:
            return frame(DATA, (END_STREAM if end else 0) | PADDED, sid,
                         bytes([pad]) + body + b"\0" * pad)  # fmt: skip
        return frame(DATA, END_STREAM if end else 0, sid, body)


def get(path: str = "/", authority: str = "a.test") -> list[tuple[str, str]]:
    return [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", path)]


def simple(
    requests: Sequence[tuple[Fields, bytes]], responses: Sequence[tuple[Fields, bytes]]
) -> tuple[bytes, bytes]:
    """(client bytes, server bytes) of a connection with one stream per request."""
    c, s = Side(), Side()
    cb = PREFACE + settings()
    sb = settings(max_concurrent_streams=100)
    for i, ((rf, rb), (pf, pb)) in enumerate(zip(requests, responses, strict=True)):
        sid = 1 + 2 * i
        cb += c.headers(sid, rf, end=not rb) + (c.data(sid, rb) if rb else b"")
        sb += s.headers(sid, pf, end=not pb) + (s.data(sid, pb) if pb else b"")
    return cb, sb
