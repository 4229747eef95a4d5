"""Fuzz targets for the recording proxy's framer: arbitrary client and upstream bytes, cut
at arbitrary points, through ``ConnectionRecorder`` (it must never raise). The strict target
is the proxy's client side with small limits: forwarded bytes must be a prefix of what the
client sent, buffers must stay within the limits, the recording must be what was forwarded,
and every refusal must name a known reason."""

from __future__ import annotations

from collections.abc import Callable

from replaygate.model import Exchange
from replaygate.protocol.h1framer import MAX_HEAD
from replaygate.protocol.h1recorder import ConnectionRecorder
from replaygate.protocol.h1rules import REASONS, Limits

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


_LIMITS = Limits(max_line=256, max_head=1024)


def fuzz_proxy_framing_strict(data: bytes) -> None:
    client, _, upstream = data.partition(_SEP)
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append, max_record=1 << 16, strict=True, limits=_LIMITS)
    step = (data[0] % 13 + 1) if data else 1
    fwd = []
    for i in range(0, max(len(client), len(upstream)), step):
        fwd.append(rec.feed_request(client[i : i + step], i))
        rec.feed_response(upstream[i : i + step], i)
        fwd.append(rec.take_forward())
        assert rec.req.buffered <= _LIMITS.max_head + step
        assert rec.resp.buffered <= MAX_HEAD + step
    forwarded = b"".join(fwd)
    assert client.startswith(forwarded)
    rec.close(len(data))
    requests = b"".join(ex.request.raw for ex in out)
    assert len(requests) <= len(forwarded)
    if rec.rejected is not None:
        assert REASONS[rec.rejected[1]] == rec.rejected[0]
    for ex in out:
        assert ex.complete or ex.flags, ex


TARGETS: dict[str, Callable[[bytes], None]] = {
    "proxy_framing": fuzz_proxy_framing,
    "proxy_framing_strict": fuzz_proxy_framing_strict,
}

_STRICT_SEEDS = [
    b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: 1\n\nPOST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"T: 0123456789\r\n" * 90,
    b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;" + b"e" * 300 + b"\r\n",
    b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x02hiGET / HTTP/1.1\r\nHost : a\r\n\r\n"
    + _SEP
    + b"HTTP/1.1 400 No\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
]

SEEDS: dict[str, list[bytes]] = {
    "proxy_framing_strict": _STRICT_SEEDS,
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
    ],
}
