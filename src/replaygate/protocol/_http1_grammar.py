"""Byte-level grammar of HTTP/1.x heads, as compiled regexes and small pure functions.

Everything here runs in C (``re``, ``bytes.find``): the parser never loops over bytes in
Python. The patterns are deliberately lenient where real traffic is (extra spaces, LF-only
line ends, reason phrases missing) and strict where leniency would cause desync (a start
line must be a whole, well-formed line before anything is framed by it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "NO_FRAMING",
    "Framing",
    "find_head_end",
    "framing_fields",
    "framing_headers",
    "is_request_prefix",
    "is_status_prefix",
    "parse_chunk_size",
]

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"

# A complete request line: method SP target SP HTTP/x.y, CRLF or LF.
REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb"{1,32}) +([^ \r\n]+) +HTTP/(\d)\.(\d)[ \t]*\r?\n")
# A request line that is not well-formed but still plainly one (real captures have them; Zeek
# logs them with a weird): any printable method, then the target, possibly missing or with
# the version glued to it, then HTTP/1.x at the end of the line. Tried only at a message
# start after REQUEST_LINE failed, never to resynchronise.
MALFORMED_REQUEST_LINE = re.compile(
    rb"([\x21-\x7e]{1,64}) +[^ \r\n]*?[ \t]*HTTP/1\.(\d)[ \t]*\r?\n"
)
# An unfinished line that may still become one (a method, then at most one target word).
MALFORMED_PREFIX = re.compile(
    rb"[\x21-\x7e]{1,64}(?: +[^ \r\n]*)?"
    rb"(?:[ \t]+(?:|H|HT|HTT|HTTP|HTTP/|HTTP/1|HTTP/1\.|HTTP/1\.\d[ \t]*\r?))?\Z"
)
# HTTP/0.9: "METHOD target" and nothing else on the line (0.9 knew only GET, but servers and
# Zeek accept any method); the target must look like one, so that junk is not taken for it.
REQUEST_LINE_09 = re.compile(rb"([A-Z]{3,16}) +(/[^ \r\n]*|https?://[^ \r\n]+)[ \t]*\r?\n")
# Enough of a line to still be a request line once it is complete.
_REQUEST_PREFIX = re.compile(_TOKEN + rb"{0,32}\Z|" + _TOKEN + rb"{1,32} ")
STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) +(\d{3})(?:[ \t][^\r\n]*)?\r?\n")
# Resynchronisation: a plausible message start after a newline, or (bodies often end without
# one) a well-known method / a status line anywhere. Stricter than the patterns above, so that
# body bytes are less likely to be taken for a message.
RESYNC_REQUEST = re.compile(rb"[A-Z][A-Z_-]{2,19} [^ \r\n]+ HTTP/1\.[01]\r?\n")
RESYNC_REQUEST_NL = re.compile(rb"\n([A-Z][A-Z_-]{2,19} [^ \r\n]+ HTTP/1\.[01]\r?\n)")
RESYNC_REQUEST_ANY = re.compile(
    rb"((?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|CONNECT|TRACE|PROPFIND|PROPPATCH|MKCOL|COPY"
    rb"|MOVE|LOCK|UNLOCK|REPORT|SEARCH) [^ \r\n]+ HTTP/1\.[01]\r?\n)"
)
RESYNC_STATUS = re.compile(rb"HTTP/1\.[01] [1-5][0-9][0-9](?:[ \t][^\r\n]*)?\r?\n")
RESYNC_STATUS_ANY = re.compile(rb"(HTTP/1\.[01] [1-5][0-9][0-9](?:[ \t][^\r\n]*)?\r?\n)")
BLANK_LINES = re.compile(rb"[\r\n]+")
# The headers that decide framing, at the start of a line, any case (the definition)...
FRAMING_FIELD = re.compile(
    rb"(?im)^(content-length|transfer-encoding|connection|upgrade|expect)[ \t]*:[ \t]*([^\r\n]*)"
)
# ... and the same searched from the newline before each line: the leading literal lets the
# regex engine skip to newlines instead of trying every position (about twice as fast).
_FRAMING_AFTER_NL = re.compile(
    rb"(?i)\n(content-length|transfer-encoding|connection|upgrade|expect)[ \t]*:[ \t]*([^\r\n]*)"
)
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


def find_head_end(buf: bytes, start: int) -> int:
    """Index just past the blank line ending a head that starts before ``start``; -1 if none.

    ``start`` must point at (or before) the newline ending the start line. The CRLF form is
    searched first and the LF-only form only up to it, so a big buffer of pipelined messages
    is not rescanned for every message.
    """
    i = buf.find(b"\n\r\n", start)
    if i >= 0:
        j = buf.find(b"\n\n", start, i + 2)
        return j + 2 if j >= 0 else i + 3
    j = buf.find(b"\n\n", start)
    return j + 2 if j >= 0 else -1


def is_request_prefix(buf: bytes, pos: int) -> bool:
    """Could the (incomplete) line at ``pos`` still become a request line?"""
    return _REQUEST_PREFIX.match(buf, pos) is not None


def is_status_prefix(buf: bytes, pos: int) -> bool:
    """Could the (incomplete) line at ``pos`` still become a status line?"""
    head = buf[pos : pos + 5]
    return b"HTTP/"[: len(head)] == head


@dataclass(frozen=True, slots=True)
class Framing:
    """What a head says about the body that follows it and the connection (shared: the
    same headers give the same instance)."""

    content_length: int | None = None
    length_invalid: bool = False
    chunked: bool = False
    transfer_encoding: bool = False
    upgrade: bool = False
    connection_upgrade: bool = False
    expect_continue: bool = False


NO_FRAMING = Framing()
# Real traffic repeats heads (a client's requests, an app's responses within the same second)
# and, more often still, the same few framing headers: the Framing of each distinct head (up
# to 1 KiB) and of each distinct list of framing headers is computed once. Bounded: each
# cache is cleared when full.
_head_cache: dict[bytes, Framing] = {}
_framing_cache: dict[tuple[tuple[bytes, bytes], ...], Framing] = {}
_CACHE_MAX = 4096
_HEAD_CACHE_BYTES = 1024


def framing_headers(buf: bytes, start: int, end: int) -> Framing:
    """Read the headers that decide framing from ``buf[start:end]`` (after the start line).

    Several Content-Length values (repeated headers or a list) must agree, else the length is
    invalid (RFC 9112 6.3); Transfer-Encoding wins over Content-Length.
    """
    if end - start > _HEAD_CACHE_BYTES:
        return _framing_of_fields(framing_fields(buf, start, end))
    # the byte before ``start`` decides whether its first line counts (see framing_fields)
    key = buf[start - 1 : end] if start > 0 else b"\n" + buf[:end]
    f = _head_cache.get(key)
    if f is None:
        f = _framing_of_fields(framing_fields(buf, start, end))
        if len(_head_cache) >= _CACHE_MAX:
            _head_cache.clear()
        _head_cache[key] = f
    return f


def _framing_of_fields(found: list[tuple[bytes, bytes]]) -> Framing:
    if not found:
        return NO_FRAMING
    key = tuple(found)
    f = _framing_cache.get(key)
    if f is None:
        if len(_framing_cache) >= _CACHE_MAX:
            _framing_cache.clear()
        f = _framing_cache[key] = _framing_of(found)
    return f


def framing_fields(buf: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    """``FRAMING_FIELD.findall(buf, start, end)``: (name, value) of each framing header, in
    order, names as written."""
    if start > 0:
        return _FRAMING_AFTER_NL.findall(buf, start - 1, end)
    return FRAMING_FIELD.findall(buf, start, end)


def _framing_of(found: list[tuple[bytes, bytes]]) -> Framing:
    content_length: int | None = None
    length_invalid = chunked = transfer_encoding = False
    upgrade = connection_upgrade = expect_continue = False
    lengths: set[bytes] = set()
    for name, value in found:
        name = name.lower()
        value = value.strip()
        if name == b"content-length":
            for part in value.split(b","):
                lengths.add(part.strip())
        elif name == b"transfer-encoding":
            transfer_encoding = True
            codings = [c.strip().lower() for c in value.split(b",") if c.strip()]
            chunked = bool(codings) and codings[-1] == b"chunked"
        elif name == b"connection":
            connection_upgrade = connection_upgrade or b"upgrade" in value.lower()
        elif name == b"upgrade":
            upgrade = upgrade or bool(value)
        elif b"100-continue" in value.lower():
            expect_continue = True
    if lengths:
        if len(lengths) == 1:
            (text,) = lengths
            if text.isdigit() and len(text) <= 18:
                content_length = int(text)
            else:
                length_invalid = True
        else:
            length_invalid = True
    return Framing(
        content_length=content_length,
        length_invalid=length_invalid,
        chunked=chunked,
        transfer_encoding=transfer_encoding,
        upgrade=upgrade,
        connection_upgrade=connection_upgrade,
        expect_continue=expect_continue,
    )


def parse_chunk_size(line: bytes) -> int | None:
    """The size on a chunk-size line (extensions ignored); None when it is not one."""
    size = line.split(b";", 1)[0].strip(b" \t\r\n")
    if _HEX.fullmatch(size) is None:
        return None
    return int(size, 16)
