"""Request framing rules of the proxy (RFC 9112 6.3 as an intermediary): tables of bytes.

Each ambiguous or oversized request is refused with the status and the counted reason in
the table, before a byte of it is forwarded; what came before it on the connection is
forwarded and recorded exactly.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaygate.model import Exchange, Flag
from replaygate.protocol import h1rules
from replaygate.protocol.h1framer import MAX_HEAD
from replaygate.protocol.h1recorder import ConnectionRecorder
from replaygate.protocol.h1rules import REASONS, Limits, check_request_head, framing_fields

OK = b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
P = b"POST /p HTTP/1.1\r\nHost: a\r\n"
C = P + b"Transfer-Encoding: chunked\r\n\r\n"

# (request bytes, status, reason)
REJECTED: list[tuple[bytes, int, str]] = [
    # Content-Length and Transfer-Encoding together (the classic CL.TE / TE.CL smuggling)
    (P + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "cl_and_te"),
    (P + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400, "cl_and_te"),
    (P + b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", 400, "cl_and_te"),
    # anything but one final "chunked"
    (P + b"Transfer-Encoding: identity\r\n\r\n", 400, "bad_transfer_encoding"),
    (P + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400, "bad_transfer_encoding"),
    (P + b"Transfer-Encoding: chunked, identity\r\n\r\n", 400, "bad_transfer_encoding"),
    (
        P + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
        400,
        "bad_transfer_encoding",
    ),
    (P + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400, "bad_transfer_encoding"),
    (P + b"Transfer-Encoding: \r\n\r\n", 400, "bad_transfer_encoding"),
    (P + b"Transfer-Encoding: chunked\x0b\r\n\r\n", 400, "bad_header"),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "te_in_http10"),
    # Content-Length: repeated, listed, or not a plain decimal number
    (P + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, "duplicate_content_length"),
    (P + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "duplicate_content_length"),
    (P + b"Content-Length: 5, 5\r\n\r\nhello", 400, "duplicate_content_length"),
    (P + b"Content-Length: +5\r\n\r\nhello", 400, "bad_content_length"),
    (P + b"Content-Length: -1\r\n\r\n", 400, "bad_content_length"),
    (P + b"Content-Length: 0x5\r\n\r\nhello", 400, "bad_content_length"),
    (P + b"Content-Length: 5 5\r\n\r\nhello", 400, "bad_content_length"),
    (P + b"Content-Length: \r\n\r\n", 400, "bad_content_length"),
    (P + b"Content-Length: 99999999999999999999\r\n\r\n", 400, "bad_content_length"),
    # field syntax that parsers disagree on
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, "obs_fold"),
    (b"GET / HTTP/1.1\r\n\tX: a\r\n\r\n", 400, "obs_fold"),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "space_before_colon"),
    (P + b"Content-Length\t: 5\r\n\r\nhello", 400, "space_before_colon"),
    (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "bare_cr"),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400, "bad_header"),
    (b"GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400, "bad_header"),
    (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400, "bad_header"),
    (b"GET / HTTP/1.1\r\nX(y): 1\r\n\r\n", 400, "bad_header"),
    # request lines
    (b"G@T / HTTP/1.1\r\n\r\n", 400, "bad_request_line"),
    (b"GET /a b HTTP/1.1\r\n\r\n", 400, "bad_request_line"),
    (b"GET /HTTP/1.1\r\n\r\n", 400, "bad_request_line"),
    (b"GET / HTTP/2.0\r\n\r\n", 400, "bad_request_line"),
    (b"GET  / HTTP/1.1\r\n\r\n", 400, "bad_request_line"),
    (b"GET /\r\n\r\n", 400, "bad_request_line"),
    # chunked bodies
    (C + b"zz\r\n", 400, "bad_chunk_size"),
    (C + b"0x5\r\nhello\r\n0\r\n\r\n", 400, "bad_chunk_size"),
    (C + b"-5\r\n", 400, "bad_chunk_size"),
    (C + b" 5\r\nhello\r\n0\r\n\r\n", 400, "bad_chunk_size"),
    (C + b"11111111111111111\r\n", 400, "bad_chunk_size"),
    (C + b"5\r\nhelloXX0\r\n\r\n", 400, "bad_chunk_end"),
    (C + b"0\r\nX: a\r\n b\r\n\r\n", 400, "obs_fold"),
    (C + b"0\r\nX : a\r\n\r\n", 400, "space_before_colon"),
]

LIMITS = Limits(max_line=256, max_head=1024)

OVERSIZED: list[tuple[bytes, int, str]] = [
    (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 414, "request_line_too_long"),
    (b"GET /" + b"a" * 300, 414, "request_line_too_long"),  # no newline yet: refused early
    (b"GET / HTTP/1.1\r\nX: " + b"v" * 300 + b"\r\n\r\n", 431, "header_line_too_long"),
    (b"GET / HTTP/1.1\r\nX: " + b"v" * 300, 431, "header_line_too_long"),
    (b"GET / HTTP/1.1\r\n" + b"X: 0123456789\r\n" * 80, 431, "headers_too_large"),
    (C + b"5;" + b"e" * 300, 400, "chunk_line_too_long"),
    (C + b"0\r\n" + b"T: 0123456789\r\n" * 80, 431, "trailers_too_large"),
    (C + b"0\r\nT: " + b"v" * 300, 431, "trailer_line_too_long"),
    (
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n" + b"x" * 2000,
        400,
        "upgrade_data_too_large",
    ),
]


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _through(
    stream: bytes, cuts: list[int], limits: Limits = Limits()
) -> tuple[ConnectionRecorder, bytes, list[Exchange]]:
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append, strict=True, limits=limits)
    fwd = b""
    for c in _chunks(stream, cuts):
        fwd += rec.feed_request(c, 1)
        if rec.rejected is not None:
            break
    return rec, fwd, out


@pytest.mark.parametrize(("raw", "status", "reason"), REJECTED + OVERSIZED)
@pytest.mark.parametrize("cuts", [[], [1, 7, 20, 33, 60, 61, 90]], ids=["whole", "cut"])
def test_refused_before_forwarding(raw: bytes, status: int, reason: str, cuts: list[int]) -> None:
    limits = LIMITS if (raw, status, reason) in OVERSIZED else Limits()
    rec, fwd, _ = _through(OK + raw, [c + len(OK) for c in cuts], limits)
    assert rec.rejected == (status, reason)
    assert REASONS[reason] == status
    assert rec.rejected_after == (2 if reason.startswith("upgrade") else 1)
    # what went upstream: the good request, then at most the accepted part of the bad one
    assert fwd.startswith(OK)
    if raw.startswith(C) or reason.startswith("upgrade"):  # refused after a valid head
        assert len(fwd) < len(OK) + len(raw) and fwd[len(OK) :] == raw[: len(fwd) - len(OK)]
        assert fwd[len(OK) :].startswith(raw[: raw.find(b"\r\n\r\n")])
    else:
        assert fwd == OK  # nothing of a refused head is forwarded


def test_recorded_is_what_was_forwarded() -> None:
    """A request refused mid-body is recorded as far as it went, flagged, never whole."""
    raw = C + b"5\r\nhello\r\nzz\r\n"
    rec, fwd, out = _through(OK + raw, [])
    rec.feed_response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2)
    rec.close(3)
    assert rec.rejected == (400, "bad_chunk_size")
    assert b"".join(e.request.raw for e in out) == fwd
    assert out[0].complete and Flag.REQUEST_TRUNCATED in out[1].flags


@pytest.mark.parametrize(
    "raw",
    [
        P + b"Content-Length: 5\r\n\r\nhello",
        P + b"content-length:5\r\n\r\nhello",
        P + b"Content-Length: 0\r\n\r\n",
        C + b"5\r\nhello\r\n0\r\n\r\n",
        C + b"5;a=b;c\r\nhello\r\n0;x\r\nT: 1\r\nU:\r\n\r\n",
        P + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        P + b"Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",  # LF line ends (RFC 9112 2.2 allows them)
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        b"GET http://a/x?y=\xc3\xa9 HTTP/1.0\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
        b"PROPFIND /d HTTP/1.1\r\nHost: a\r\nDepth: 1\r\n\r\n",
    ],
)
def test_valid_requests_pass_unchanged(raw: bytes) -> None:
    rec, fwd, out = _through(OK + raw + OK, [3, 50, 51, 90])
    assert rec.rejected is None
    if raw.startswith(b"CONNECT"):  # what follows waits for the upstream's answer
        assert fwd == OK + raw
    else:
        assert fwd == OK + raw + OK
    rec.close(2)
    assert b"".join(e.request.raw for e in out) == fwd


def test_head_ends_at_the_first_blank_line_whatever_the_line_ends() -> None:
    """An LF-only blank line ends the head, as LF-tolerant upstreams see it: the bytes after
    it are the next request, framed and checked, not swallowed into a header."""
    stream = b"GET /a HTTP/1.1\r\nX: 1\n\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append, strict=True)
    fwd = rec.feed_request(stream, 1)
    assert fwd == stream and rec.requests == 2
    smuggled = b"GET /a HTTP/1.1\r\nX: 1\n\nPOST /b HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n"
    rec = ConnectionRecorder(None, out.append, strict=True)
    assert rec.feed_request(smuggled, 1) == b"GET /a HTTP/1.1\r\nX: 1\n\n"
    assert rec.rejected == (400, "duplicate_content_length")


def test_upgrade_data_is_held_until_the_answer() -> None:
    """Bytes after an Upgrade request go upstream only once the upstream agreed (then as a
    tunnel) or refused (then parsed, and refused if they are bad)."""
    ws = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"
    rec = ConnectionRecorder(None, lambda e: None, strict=True)
    assert rec.feed_request(ws + b"\x81\x02hi", 1) == ws
    rec.feed_response(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 2)
    assert rec.take_forward() == b"\x81\x02hi"
    assert rec.feed_request(b"more", 3) == b"more"
    rec = ConnectionRecorder(None, lambda e: None, strict=True)
    bad = b"GET /x HTTP/1.1\r\nHost : a\r\n\r\n"
    assert rec.feed_request(ws + OK + bad, 1) == ws
    rec.feed_response(b"HTTP/1.1 400 No\r\nContent-Length: 0\r\n\r\n", 2)
    assert rec.take_forward() == OK
    assert rec.rejected == (400, "space_before_colon")


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.binary(max_size=3000), st.lists(st.integers(0, 4000)))
def test_forwarded_is_a_prefix_and_recorded_is_forwarded(data: bytes, cuts: list[int]) -> None:
    """Whatever the bytes: forwarded bytes are a prefix of what the client sent, every
    buffer stays within the limits, and the recording is exactly what was forwarded."""
    limits = Limits(max_line=64, max_head=256)
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append, strict=True, limits=limits)
    fwd = b""
    for c in _chunks(data, cuts):
        fwd += rec.feed_request(c, 1)
        assert rec.buffered <= 2 * limits.max_head
    assert data.startswith(fwd)
    rec.close(2)
    recorded = b"".join(e.request.raw for e in out)
    assert len(recorded) <= len(fwd)
    if rec.rejected is not None:
        assert rec.rejected[1] in REASONS


@SETTINGS
@given(st.binary(max_size=3000), st.lists(st.integers(0, 4000)))
def test_response_buffers_are_bounded(data: bytes, cuts: list[int]) -> None:
    limits = Limits(max_line=64, max_head=256)
    rec = ConnectionRecorder(None, lambda e: None, limits=limits)
    rec.feed_request(b"GET / HTTP/1.1\r\n\r\n", 0)
    for c in _chunks(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + data, cuts):
        rec.feed_response(c, 1)
        assert rec.resp.buffered <= MAX_HEAD + 4000


def test_endless_response_trailer_is_given_up_not_buffered() -> None:
    """Upstream answers are not refused (they are the app's), but their buffers are bounded
    too (at least 256 KiB heads): past that the answer is recorded flagged and passed on."""
    out: list[Exchange] = []
    rec = ConnectionRecorder(None, out.append, limits=LIMITS)
    rec.feed_request(b"GET / HTTP/1.1\r\n\r\n", 0)
    rec.feed_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", 1)
    for _ in range(20_000):
        rec.feed_response(b"T: 0123456789abcdef\r\n", 2)
        assert rec.resp.buffered <= MAX_HEAD
    rec.close(3)
    assert Flag.PARSE_ERROR in out[0].flags and rec.resp.gave_up == 1


# the reference: what a field line says to framing, read by a regex over the whole block
_FRAMING_FIELD = re.compile(
    rb"(?im)^(content-length|transfer-encoding|upgrade)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$"
)
_NAMES = [
    "Content-Length",
    "content-LENGTH",
    "Transfer-Encoding",
    "upgrade",
    "Upgrade-X",
    "X-Content-Length",
    "Host",
    "TE",
    "content-lengthx",
]


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_NAMES),
            st.text(" \t0123456789abc,;=chunked", max_size=12),
            st.sampled_from(["\r\n", "\n"]),
        ),
        max_size=8,
    )
)
def test_framing_fields_read_what_the_regex_reads(lines: list[tuple[str, str, str]]) -> None:
    block = "".join(f"{n}:{v}{end}" for n, v, end in lines).encode()
    want: dict[bytes, list[bytes]] = {}
    for name, value in _FRAMING_FIELD.findall(block):
        want.setdefault(name.lower(), []).append(value)
    assert framing_fields(block, block.lower()) == want
    head = b"POST / HTTP/1.1\r\n" + block + b"\r\n"
    assert check_request_head(head, Limits()) == h1rules._framing("POST", b"1", want)
