"""The sans-I/O rules of the HTTP/2 proxy: protocol sniffing and field translation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replaygate.protocol.http2 import PREFACE
from replaygate.sources._h2_fields import (
    HOP_BY_HOP,
    Sniffed,
    h1_request_head,
    h2_request_fields,
    h2_response_fields,
    is_grpc,
    sniff,
)

_UPGRADE = (
    b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", Sniffed.NEED_MORE),
        (PREFACE[:10], Sniffed.NEED_MORE),
        (PREFACE, Sniffed.H2),
        (PREFACE + b"\x00\x00", Sniffed.H2),
        (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", Sniffed.HTTP1),
        (b"GET / HTTP/1.1\r\nHost: a\r\n", Sniffed.NEED_MORE),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Sniffed.HTTP1),
        (_UPGRADE, Sniffed.UPGRADE),
        (_UPGRADE + b"GET /next HTTP/1.1\r\n", Sniffed.UPGRADE),
        (_UPGRADE.replace(b"Upgrade, HTTP2-Settings", b"Upgrade"), Sniffed.HTTP1),
        (_UPGRADE.replace(b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", b""), Sniffed.HTTP1),
        (_UPGRADE.replace(b"h2c", b"websocket"), Sniffed.HTTP1),
        (_UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0", 1), Sniffed.HTTP1),
        (
            _UPGRADE.replace(b"GET", b"POST").replace(
                b"\r\n\r\n", b"\r\nContent-Length: 9\r\n\r\n"
            ),
            Sniffed.UPGRADE,
        ),
        (_UPGRADE.replace(b"\r\n\r\n", b"\r\nContent-Length: 2000000\r\n\r\n"), Sniffed.HTTP1),
        (_UPGRADE.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n"), Sniffed.HTTP1),
        (b"GET / HTTP/1.1\nUpgrade: h2c\n\n", Sniffed.HTTP1),  # lone LF: the HTTP/1 path judges
        (b"GET /" + b"a" * 5000, Sniffed.HTTP1),  # longer than max_head: not waited for
    ],
)
def test_sniff(data: bytes, kind: str) -> None:
    assert sniff(data, 4096) == kind


@given(st.sampled_from([PREFACE, _UPGRADE, b"GET / HTTP/1.1\r\n\r\n"]), st.binary(max_size=300))
def test_sniff_decides_once(start: bytes, more: bytes) -> None:
    decided = sniff(start, 4096)
    assert decided != Sniffed.NEED_MORE
    assert sniff(start + more, 4096) == decided


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_value = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)
_regular = st.lists(
    st.tuples(_token, _value).filter(
        lambda kv: kv[0] not in HOP_BY_HOP | {"host", "cookie", "te", "http2-settings"}
    ),
    max_size=8,
)


@given(
    st.sampled_from(["GET", "POST", "DELETE"]),
    st.text(alphabet="/abc?=&%0123", min_size=1, max_size=20).map(lambda p: "/" + p),
    _token,
    _regular,
)
def test_h2_to_h1_and_back(
    method: str, path: str, host: str, regular: list[tuple[str, str]]
) -> None:
    fields = [(":method", method), (":scheme", "http"), (":authority", host), (":path", path),
              *regular]  # fmt: skip
    m, target, headers = h1_request_head(fields)
    assert (m, target, headers[0]) == (method, path, ("host", host))
    assert h2_request_fields(m, target, headers) == fields


def test_connection_specific_fields_never_cross() -> None:
    fields = [(":method", "GET"), (":path", "/"), (":authority", "a"), ("host", "ignored"),
              ("connection", "keep-alive, x-hop"), ("keep-alive", "5"), ("x-hop", "1"),
              ("te", "gzip, trailers"), ("transfer-encoding", "chunked"), ("upgrade", "h2c"),
              ("cookie", "a=1"), ("cookie", "b=2"), ("x-end", "2")]  # fmt: skip
    headers = h1_request_head(fields)[2]
    assert headers == [("host", "a"), ("te", "trailers"), ("x-end", "2"), ("cookie", "a=1; b=2")]
    up = h2_request_fields(
        "POST", "/u", [("Host", "h"), ("Connection", "Upgrade, HTTP2-Settings"),
                       ("Upgrade", "h2c"), ("HTTP2-Settings", "AA"), ("Content-Length", "3")]
    )  # fmt: skip
    assert up == [(":method", "POST"), (":scheme", "http"), (":authority", "h"), (":path", "/u"),
                  ("content-length", "3")]  # fmt: skip
    resp = h2_response_fields(200, [("Connection", "close"), ("Transfer-Encoding", "chunked"),
                                    ("Trailer", "x-sum"), ("Content-Type", "a/b")])  # fmt: skip
    assert resp == [(":status", "200"), ("trailer", "x-sum"), ("content-type", "a/b")]


def test_no_authority_gives_an_empty_host_for_the_caller_to_fill() -> None:
    assert h1_request_head([(":method", "GET"), (":path", "/")])[2] == [("host", "")]
    assert h1_request_head([(":method", "GET"), (":path", "/"), ("host", "b")])[2] == [
        ("host", "b")
    ]


def test_is_grpc() -> None:
    assert is_grpc([("content-type", "application/grpc")])
    assert is_grpc([("content-type", "application/grpc+proto")])
    assert not is_grpc([("content-type", "application/json")])
    assert not is_grpc([])
