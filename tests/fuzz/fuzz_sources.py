"""Fuzz target for the recording proxy's framer: arbitrary client and upstream bytes, cut
at arbitrary points, through ``ConnectionRecorder`` (it must never raise)."""

from __future__ import annotations

from collections.abc import Callable

from replaygate.model import Exchange
from replaygate.sources._framing import ConnectionRecorder

__all__ = ["SEEDS", "TARGETS"]

_SEP = b"\x00|\x00"


def fuzz_proxy_framing(data: bytes) -> None:
    client, _, upstream = data.partition(_SEP)
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append, max_record=1 << 16)
    step = (data[0] % 7 + 1) if data else 1
    for i in range(0, max(len(client), len(upstream)), step):
        rec.feed_request(client[i : i + step], i)
        rec.feed_response(upstream[i : i + step], i)
    rec.close(len(data))
    for ex in out:
        assert isinstance(ex.request.raw, bytes)
        assert ex.complete or ex.flags, ex


TARGETS: dict[str, Callable[[bytes], None]] = {"proxy_framing": fuzz_proxy_framing}

SEEDS: dict[str, list[bytes]] = {
    "proxy_framing": [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        + _SEP
        + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        + _SEP
        + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
        b"HEAD / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"
        + _SEP
        + b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"
        + _SEP
        + b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x02hi",
        b"GET / HTTP/1.0\r\n\r\n" + _SEP + b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    ]
}
