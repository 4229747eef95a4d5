"""Message bodies on the wire: chunked framing removed (:func:`dechunk`) and Content-Encoding
undone (:func:`decode_content`). Both are re-exported by :mod:`replaygate.model`."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

__all__ = ["dechunk", "decode_content"]

CRLF = b"\r\n"


def dechunk(data: bytes | memoryview) -> tuple[bytes, bool]:
    """Remove chunked framing. Returns ``(body, complete)``; tolerant of malformed input."""
    mv = memoryview(data)
    out: list[bytes | memoryview] = []
    pos = 0
    n = len(mv)
    raw = bytes(mv) if not isinstance(data, bytes) else data
    while pos < n:
        eol = raw.find(b"\n", pos)
        if eol < 0:
            return b"".join(out), False
        line = raw[pos:eol].strip()
        size_txt = line.split(b";", 1)[0].strip()
        try:
            size = int(size_txt, 16)
        except ValueError:
            return b"".join(out), False
        pos = eol + 1
        if size == 0:
            return b"".join(out), True
        if pos + size > n:
            out.append(mv[pos:n])
            return b"".join(out), False
        out.append(mv[pos : pos + size])
        pos += size
        # skip the CRLF after the chunk data
        if raw[pos : pos + 2] == CRLF:
            pos += 2
        elif raw[pos : pos + 1] == b"\n":
            pos += 1
    return b"".join(out), False


def decode_content(body: bytes, encodings: Iterable[str]) -> bytes:
    """Undo Content-Encoding (gzip, x-gzip, deflate, br, zstd), last applied first.

    Raises ValueError when the body does not decode; callers decide what that means.
    """
    for enc in reversed([e.strip().lower() for e in encodings if e.strip()]):
        if enc in ("gzip", "x-gzip"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = d.decompress(body) + d.flush()
        elif enc == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        elif enc == "br":
            import brotli

            body = brotli.decompress(body)
        elif enc == "zstd":
            import zstandard

            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        elif enc in ("identity", ""):
            continue
        else:
            raise ValueError(f"unknown content-encoding {enc!r}")
    return body
