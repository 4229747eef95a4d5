"""The prepared HTTP/1-style request as HTTP/2 fields (``replay/_h2convert``): tables and
properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replaygate.protocol import h2msg
from replaygate.replay._h2convert import to_h2

A = b"stage.test:8080"


def test_get_becomes_pseudo_fields_then_fields_in_order() -> None:
    raw = b"GET /a?b=1 HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\nX-Two: 1\r\nx-two: 2\r\n\r\n"
    fields, body, trailers = to_h2(raw, b"http", A)
    assert fields == [
        (b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"shop"),
        (b":path", b"/a?b=1"), (b"accept", b"*/*"), (b"x-two", b"1"), (b"x-two", b"2"),
    ]  # fmt: skip
    assert body == b"" and trailers is None


def test_connection_specific_fields_are_left_out() -> None:
    raw = (
        b"POST /p HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, x\r\nKeep-Alive: 5\r\n"
        b"Proxy-Connection: x\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\nTE: gzip\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    fields, body, _ = to_h2(raw, b"https", A)
    assert [k for k, _ in fields if not k.startswith(b":")] == [b"content-length"]
    assert body == b"abc"
    fields, _, _ = to_h2(b"GET / HTTP/1.1\r\nTE: trailers\r\n\r\n", b"http", A)
    assert (b"te", b"trailers") in fields and (b":authority", A) in fields


def test_chunked_body_is_dechunked_and_trailers_become_h2_trailers() -> None:
    raw = (
        b"POST /shop.Cart/Get HTTP/1.1\r\nhost: h\r\ncontent-type: application/grpc\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\ngrpc-x: 1\r\n\r\n"
    )
    fields, body, trailers = to_h2(raw, b"http", A)
    assert body == b"abcde" and trailers == [(b"grpc-x", b"1")]
    assert b"transfer-encoding" not in dict(fields)
    _, body, trailers = to_h2(raw.replace(b"grpc-x: 1\r\n", b""), b"http", A)
    assert body == b"abcde" and trailers is None


def test_absolute_form_target_gives_authority_and_path() -> None:
    fields, _, _ = to_h2(b"GET http://prod.test:81?q=1 HTTP/1.1\r\n\r\n", b"http", A)
    assert dict(fields)[b":authority"] == b"prod.test:81"
    assert dict(fields)[b":path"] == b"/?q=1"
    fields, _, _ = to_h2(b"CONNECT prod.test:443 HTTP/1.1\r\n\r\n", b"http", A)
    assert fields == [(b":method", b"CONNECT"), (b":authority", b"prod.test:443")]


_token = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
_value = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20)


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.text("abc/=?&%", max_size=20).map(lambda p: "/" + p),
    headers=st.lists(st.tuples(_token, _value), max_size=6),
    body=st.binary(max_size=64),
    trailer=st.none() | st.lists(st.tuples(_token, _value), max_size=3),
)
def test_an_h2_recording_comes_back_as_its_fields(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    trailer: list[tuple[str, str]] | None,
) -> None:
    """What h2msg recorded from a stream is what is sent again (minus forbidden fields)."""
    headers = [(k, v) for k, v in headers if k not in ("host", "te", "transfer-encoding",
                                                       "connection", "keep-alive", "upgrade",
                                                       "proxy-connection", "http2-settings")]  # fmt: skip
    trailer = None if trailer is None else [(k, v) for k, v in trailer if k != "transfer-encoding"]
    h2fields = [(":method", method), (":scheme", "https"), (":authority", "a.test"),
                (":path", path), *headers]  # fmt: skip
    req, _meta = h2msg.build_request(h2fields, body, trailer)
    fields, got_body, got_trailers = to_h2(req.raw, b"https", A)
    assert [(k.decode(), v.decode()) for k, v in fields] == h2fields
    assert got_body == body
    want = [(k.encode(), v.encode()) for k, v in trailer] if trailer else None
    assert got_trailers == want
