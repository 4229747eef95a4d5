"""GoReplay's middleware wire format, sans I/O: one hex line per message.

``"<type> <id> <timestamp_ns> <latency_ns>\\n" + raw HTTP bytes``, hex-encoded, one line each.
Kept apart from the process handling in :mod:`~replaygate.stages.middleware` so that it is
tested (and fuzzed) as bytes in, values out.
"""

from __future__ import annotations

import binascii

from ..model import HTTPMessage, Request

__all__ = ["decode_message", "encode_message", "honest_framing", "latency_ns"]


def encode_message(typ: int, msg_id: str, ts_ns: int, latency_ns: int, raw: bytes) -> bytes:
    """One protocol line (hex + newline) for a message; used by tests and the benchmark."""
    head = f"{typ} {msg_id} {ts_ns} {latency_ns}\n".encode()
    return binascii.hexlify(head + raw) + b"\n"


def decode_message(line: bytes) -> tuple[int, str, int, int | None, bytes]:
    """Parse one protocol line -> (type, id, ts_ns, latency_ns, raw); ValueError if invalid.

    The payload is decoded straight from the line (no intermediate copies: lines of 100 MB
    happen)."""
    start, end = 0, len(line)
    while end > start and line[end - 1] in b" \t\r\n":
        end -= 1
    while start < end and line[start] in b" \t":
        start += 1
    mv = memoryview(line)
    pos = _hex_newline(line, start, end)
    if pos < 0:
        binascii.unhexlify(mv[start:end])  # binascii.Error (a ValueError) when not hex
        raise ValueError("no header line")
    head = binascii.unhexlify(mv[start:pos])
    parts = head.decode("latin-1").strip("\r").split(" ")
    if len(parts) < 3 or parts[0] not in ("1", "2", "3") or not parts[1]:
        raise ValueError(f"bad header {head[:60]!r}")
    ts = int(parts[2])
    lat = int(parts[3]) if len(parts) > 3 and parts[3].lstrip("-").isdigit() else None
    return int(parts[0]), parts[1], ts, lat, binascii.unhexlify(mv[pos + 2 : end])


def _hex_newline(line: bytes, start: int, end: int) -> int:
    """Offset of the hex-encoded "\\n" ending the header line (on a byte boundary), or -1."""
    i = start
    while True:
        lo, up = line.find(b"0a", i, end), line.find(b"0A", i, end)
        j = lo if up < 0 or (0 <= lo < up) else up
        if j < 0:
            return -1
        if (j - start) % 2 == 0:
            return j
        i = j + 1


def latency_ns(req: HTTPMessage, resp: HTTPMessage) -> int:
    if not req.ts_first_ns or not resp.ts_last_ns:
        return -1
    lat = resp.ts_last_ns - req.ts_first_ns
    return lat if lat >= 0 else -1


def honest_framing(msg: HTTPMessage) -> HTTPMessage:
    """Fix Content-Length when a middleware changed a body without updating it (a request
    body without any framing header gets one; a response may be close-delimited)."""
    if msg.is_chunked:
        return msg
    cl = msg.header("content-length")
    body = msg.body_raw
    if cl is None:
        if isinstance(msg, Request) and len(body):
            return msg.with_body(bytes(body))
        return msg
    try:
        declared = int(cl.strip())
    except ValueError:
        return msg
    if declared == len(body):
        return msg
    return msg.with_body(bytes(body))
