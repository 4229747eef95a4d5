"""The HTTP/1 grammar helpers: the framing-field finder agrees with the regex that defines it,
on heads made of framing and other headers in any case, odd spacing and random bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.protocol import _http1_grammar as g

_NAMES = [
    "Content-Length", "content-length", "CONTENT-LENGTH", "Content-Length-X", "Transfer-Encoding",
    "transfer-encoding", "Connection", "connection", "Upgrade", "Upgrade-Insecure-Requests",
    "Expect", "expect-ct", "Host", "X-Connection", "Contents", "Expect ",
]  # fmt: skip
_line = st.one_of(
    st.tuples(
        st.sampled_from(_NAMES),
        st.sampled_from([":", ": ", " : ", "\t:\t", "", " "]),
        st.sampled_from(
            ["5", " 12 , 12", "chunked", "keep-alive, Upgrade", "h2c", "", "100-continue"]
        ),
        st.sampled_from(["\r\n", "\n", "\r", ""]),
    ).map(lambda t: "".join(t).encode()),
    st.binary(max_size=20),
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(_line, max_size=10),
    st.binary(max_size=5),
    st.integers(0, 12),
    st.integers(0, 12),
    st.booleans(),
)
def test_framing_fields_is_the_regex(
    lines: list[bytes], lead: bytes, a: int, b: int, after_line: bool
) -> None:
    buf = lead + b"".join(lines)
    start = min(a, len(buf))
    if after_line and b"\n" in buf:  # where the parser calls it: just after the start line
        start = buf.index(b"\n") + 1
    end = max(start, len(buf) - b)
    assert g.framing_fields(buf, start, end) == g.FRAMING_FIELD.findall(buf, start, end)


def test_framing_of_a_head() -> None:
    head = b"HTTP/1.1 200 OK\r\nServer: x\r\ncontent-length: 12\r\nConnection: keep-alive\r\n\r\n"
    f = g.framing_headers(head, head.index(b"\n") + 1, len(head))
    assert f.content_length == 12 and not f.chunked and not f.length_invalid
    assert g.framing_headers(head, head.index(b"\n") + 1, len(head)) is f  # computed once
    first = b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    assert g.framing_headers(first, 16, 39).content_length == 3
    te = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    f = g.framing_headers(te, te.index(b"\n") + 1, len(te))
    assert f.transfer_encoding and f.chunked


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=10), st.binary(max_size=5), st.integers(0, 12), st.integers(0, 12))
def test_framing_headers_cached_or_not(lines: list[bytes], lead: bytes, a: int, b: int) -> None:
    """The caches (by head, by framing fields) give what computing it afresh gives."""
    buf = lead + b"".join(lines)
    start = min(a, len(buf))
    end = max(start, len(buf) - b)
    fresh = g._framing_of(found) if (found := g.FRAMING_FIELD.findall(buf, start, end)) else None
    for _ in range(2):  # computed, then from the cache
        assert g.framing_headers(buf, start, end) == (fresh or g.NO_FRAMING)


def test_the_byte_before_the_fields_is_part_of_the_cache_key() -> None:
    fields = b"Content-Length: 5\r\n\r\n"
    assert g.framing_headers(b"GET / HTTP/1.1\n" + fields, 15, 15 + len(fields)).content_length == 5
    assert g.framing_headers(b"GET / HTTP/1.1X" + fields, 15, 15 + len(fields)) is g.NO_FRAMING
    assert g.framing_headers(fields, 0, len(fields)).content_length == 5
