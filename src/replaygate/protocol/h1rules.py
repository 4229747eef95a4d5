"""What the recording proxy accepts from clients: RFC 9112 as an intermediary (sans-I/O).

The proxy forwards requests unchanged, so it must frame each one exactly as the upstream
will, or a request the recorder saw as one could be two for the upstream (request
smuggling), and the recording would differ from what was executed. Rule: **a request whose
framing could be read two ways is refused with 400 and the connection closed, before any
byte of it is forwarded** (RFC 9112 6.1 and 6.3 allow rejecting; we do not normalise,
because rewriting would make the recording differ from the client's bytes). Refused:

* ``Content-Length`` together with ``Transfer-Encoding`` (RFC 9112 6.1: MAY reject, MUST
  close after);
* a ``Transfer-Encoding`` that is not one final ``chunked`` (``identity``, ``xchunked``,
  ``chunked, identity``, ``chunked`` twice) or any in an HTTP/1.0 request (6.1, 6.3);
* ``Content-Length`` repeated or listed (``5, 5``), or not plain digits (6.3 item 5);
* obs-fold, whitespace between a field name and its colon, a bare CR, a field line
  without a colon or with a name that is not a token, NUL in a value (5.1, 5.2, 2.2);
* a request line that is not ``token SP target SP HTTP/1.x``;
* chunk-size lines that are not 1-16 hex digits with optional extensions; chunk data not
  followed by CRLF;
* anything over the limits below (414 for the request line, 431 for header and trailer
  lines and sections, 400 for chunk-size lines and data held behind an upgrade).

LF-only line ends are accepted (RFC 9112 2.2 allows it); a head ends at the *first* blank
line, whichever line end it uses, as LF-tolerant upstreams see it.

Each refusal is counted by reason (``rejected_<reason>``); :data:`REASONS` maps every reason
to its status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "REASONS",
    "Limits",
    "RequestHead",
    "check_chunk_line",
    "check_fields",
    "check_request_head",
    "error_response",
    "find_blank_line",
    "framing_fields",
    "whole_request",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """Buffer limits (nginx-like defaults: ``large_client_header_buffers 4 8k``).

    ``max_line`` bounds the request line, each header and trailer line and each chunk-size
    line; ``max_head`` bounds all header lines of one message, and all its trailer lines.
    """

    max_line: int = 8 << 10
    max_head: int = 64 << 10


# reason -> status sent to the client
REASONS: dict[str, int] = {
    "bad_request_line": 400,
    "request_line_too_long": 414,
    "header_line_too_long": 431,
    "headers_too_large": 431,
    "bare_cr": 400,
    "bad_header": 400,
    "obs_fold": 400,
    "space_before_colon": 400,
    "cl_and_te": 400,
    "bad_transfer_encoding": 400,
    "te_in_http10": 400,
    "duplicate_content_length": 400,
    "bad_content_length": 400,
    "bad_chunk_size": 400,
    "chunk_line_too_long": 400,
    "bad_chunk_end": 400,
    "trailer_line_too_long": 431,
    "trailers_too_large": 431,
    "upgrade_data_too_large": 400,
}

_PHRASES = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e\x80-\xff]+) HTTP/1\.(\d)")
_FIELD_NAME = re.compile(_TOKEN)
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Fast path (one C-level match per head): a well-formed request line, then field lines that
# are all `token ":" value` with CRLF or LF, then the blank line. Only a head that fails it
# is taken apart line by line to name the reason.
_HEAD_OK = re.compile(
    rb"(" + _TOKEN + rb") [\x21-\x7e\x80-\xff]+ HTTP/1\.(\d)\r?\n"
    rb"((?:" + _TOKEN + rb":[\t\x20-\x7e\x80-\xff]*\r?\n)*)\r?\n"
)
# the fields framing depends on, found by name at line starts in a head that matched _HEAD_OK
_FRAMING_NAMES = (b"content-length", b"transfer-encoding", b"upgrade")
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[\x09\x20-\x7e\x80-\xff]*)?\r?\n")
# codings that may precede the final chunked (RFC 9110 8.4.1 registry)
_CODINGS = {b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"}


@dataclass(slots=True)
class RequestHead:
    """What framing needs from an accepted request head."""

    method: str
    chunked: bool
    length: int | None
    upgrade: bool


def find_blank_line(buf: bytes | bytearray, start: int) -> int:
    """Index just past the first blank line (``\\n\\n`` or ``\\n\\r\\n``) at or after
    ``start``, or -1. Whichever form comes first wins (a CRLF blank line further on must
    not swallow an LF one before it)."""
    i = buf.find(b"\n\r\n", start)
    j = buf.find(b"\n\n", start, i + 2 if i >= 0 else len(buf))
    if j >= 0:
        return j + 2
    return i + 3 if i >= 0 else -1


def _lines(block: bytes) -> list[bytes] | str:
    """Split a head or trailer block (ending in a blank line) into lines without their
    line ends; a CR anywhere but before an LF is refused."""
    lines = block.split(b"\n")
    out = []
    for line in lines[:-1]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if b"\r" in line:
            return "bare_cr"
        out.append(line)
    if out and out[-1] == b"":
        out.pop()  # the blank line that ended the block
    return out


def check_fields(
    lines: list[bytes], limits: Limits, *, trailer: bool = False
) -> tuple[dict[bytes, list[bytes]], str | None]:
    """Field lines -> {lower-case name: [values]} or the reason they are refused."""
    fields: dict[bytes, list[bytes]] = {}
    too_long = "trailer_line_too_long" if trailer else "header_line_too_long"
    for line in lines:
        if len(line) > limits.max_line:
            return fields, too_long
        if line[:1] in (b" ", b"\t"):
            return fields, "obs_fold"
        name, colon, value = line.partition(b":")
        if not colon or not name:
            return fields, "bad_header"
        if _FIELD_NAME.fullmatch(name) is None:
            stripped = name.rstrip(b" \t")
            if stripped != name and _FIELD_NAME.fullmatch(stripped) is not None:
                return fields, "space_before_colon"
            return fields, "bad_header"
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value) is not None:
            return fields, "bad_header"
        fields.setdefault(name.lower(), []).append(value)
    return fields, None


def check_request_head(head: bytes, limits: Limits) -> RequestHead | str:
    """An accepted head's framing, or the reason (a key of :data:`REASONS`) to refuse it."""
    if len(head) > limits.max_head:
        return "headers_too_large"
    m = _HEAD_OK.fullmatch(head)
    if m is not None and (len(head) <= limits.max_line or _lines_fit(head, limits.max_line)):
        raw_method = m.group(1)
        method = _METHODS.get(raw_method) or raw_method.decode("latin-1")
        low = m.group(3).lower()
        if _has_framing_field(low):
            return _framing(method, m.group(2), framing_fields(m.group(3), low))
        return RequestHead(method, False, None, method == "CONNECT")
    return _check_slowly(head, limits)


def whole_request(data: bytes, limits: Limits) -> tuple[str, int] | None:
    """(method, head length) when ``data`` is exactly one whole request that
    :func:`check_request_head` accepts, with no body or a ``Content-Length`` body, no
    upgrade; None for anything else (the framer decides, and names any refusal). The
    recording proxy's fast path: one match of the well-formed pattern over ``data``, which
    ends at the first blank line as :func:`find_blank_line` does."""
    m = _HEAD_OK.match(data)
    if m is None:
        return None
    end = m.end()
    if end > limits.max_line:  # a long head: its lines are checked one by one
        return None
    raw = m.group(1)
    method = _METHODS.get(raw) or raw.decode("latin-1")
    if method == "CONNECT":
        return None
    block = m.group(3)
    low = block.lower()
    # _has_framing_field, inlined: this runs for every proxied request
    if (
        low.find(b"content-length:") >= 0
        or low.find(b"transfer-encoding:") >= 0
        or low.find(b"upgrade:") >= 0
    ):
        info = _framing(method, m.group(2), framing_fields(block, low))
        if (
            type(info) is not RequestHead
            or info.chunked
            or info.upgrade
            or end + (info.length or 0) != len(data)
        ):
            return None
    elif end != len(data):
        return None
    return method, end


def _has_framing_field(low: bytes) -> bool:
    # find(), not ``in``: bytes.__contains__ tries the needle as an int first and builds a
    # TypeError message each time (measured: ~2k instructions per test)
    return (
        low.find(b"content-length:") >= 0
        or low.find(b"transfer-encoding:") >= 0
        or low.find(b"upgrade:") >= 0
    )


def framing_fields(block: bytes, low: bytes) -> dict[bytes, list[bytes]]:
    """``Content-Length``, ``Transfer-Encoding`` and ``Upgrade`` values (stripped of spaces
    and tabs) of the field lines ``block`` of a head that matched the well-formed pattern
    (each line ``token ":" value`` with CRLF or LF); ``low`` is ``block.lower()``. Lines
    are found by ``find`` at line starts: no per-line Python work, no regex search."""
    low = b"\n" + low
    fields: dict[bytes, list[bytes]] = {}
    for name in _FRAMING_NAMES:
        key = b"\n" + name + b":"
        i = low.find(key)
        while i >= 0:
            start = i + len(key)  # in ``low``; ``block`` is one byte shorter at the front
            eol = low.find(b"\n", start)
            value = block[start - 1 : eol - 1].rstrip(b"\r").strip(b" \t")
            fields.setdefault(name, []).append(value)
            i = low.find(key, eol)
    return fields


def _lines_fit(head: bytes, max_line: int) -> bool:
    return all(len(line) <= max_line + 1 for line in head.split(b"\n"))


def _check_slowly(head: bytes, limits: Limits) -> RequestHead | str:
    """Line by line, to say which rule a head breaks (or accept it after all)."""
    lines = _lines(head)
    if isinstance(lines, str):
        return lines
    if not lines:
        return "bad_request_line"
    start = lines[0]
    if len(start) > limits.max_line:
        return "request_line_too_long"
    m = _REQUEST_LINE.fullmatch(start)
    if m is None:
        return "bad_request_line"
    fields, reason = check_fields(lines[1:], limits)
    if reason is not None:
        return reason
    return _framing(m.group(1).decode("latin-1"), m.group(3), fields)


def _framing(method: str, minor: bytes, fields: dict[bytes, list[bytes]]) -> RequestHead | str:
    te_values = fields.get(b"transfer-encoding")
    cl_values = fields.get(b"content-length")
    chunked = False
    length: int | None = None
    if te_values is not None:
        if cl_values is not None:
            return "cl_and_te"
        if minor == b"0":
            return "te_in_http10"
        codings = [c.strip(b" \t").lower() for v in te_values for c in v.split(b",")]
        if codings[-1:] != [b"chunked"] or any(c not in _CODINGS for c in codings[:-1]):
            return "bad_transfer_encoding"
        chunked = True
    elif cl_values is not None:
        if len(cl_values) > 1 or b"," in cl_values[0]:
            return "duplicate_content_length"
        v = cl_values[0]
        if not v.isdigit() or len(v) > 18:  # bytes.isdigit: ASCII digits only
            return "bad_content_length"
        length = int(v)
    upgrade = method == "CONNECT" or b"upgrade" in fields
    return RequestHead(method, chunked, length, upgrade)


def check_chunk_line(line: bytes) -> int | str:
    """The size of a chunk-size line (with its line end), or the reason to refuse it."""
    m = _CHUNK_LINE.fullmatch(line)
    if m is None:
        return "bad_chunk_size"
    return int(m.group(1), 16)


def check_trailer(block: bytes, limits: Limits) -> str | None:
    """The reason to refuse a trailer section (ending in a blank line), or None."""
    if len(block) > limits.max_head:
        return "trailers_too_large"
    lines = _lines(block)
    if isinstance(lines, str):
        return lines
    return check_fields(lines, limits, trailer=True)[1]


def error_response(reason: str) -> bytes:
    """The short answer a refused client gets before the connection is closed."""
    status = REASONS[reason]
    body = f"replaygate proxy: request refused: {reason}\n".encode()
    return (
        f"HTTP/1.1 {status} {_PHRASES[status]}\r\nContent-Type: text/plain\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
