from __future__ import annotations

import pytest

from replaygate.formats._http1 import build_request, build_response, encode_body, safe_target
from replaygate.model import decode_content


def test_request_host_from_authority_and_framing() -> None:
    r = build_request(
        "POST",
        "/p",
        [(":authority", "a.test"), ("transfer-encoding", "chunked"), ("X", "1\r\nInjected: y")],
        b"abc",
        host="url.test",
    )
    assert (
        r.raw
        == b"POST /p HTTP/1.1\r\nHost: a.test\r\nX: 1  Injected: y\r\nContent-Length: 3\r\n\r\nabc"
    )


def test_request_content_length_fixed_in_place() -> None:
    r = build_request("GET", "/", [("content-length", "0"), ("Host", "h")], b"", host=None)
    assert r.headers == [("content-length", "0"), ("Host", "h")]
    r = build_request("PUT", "/", [("Content-Length", "99")], b"xy", host=None)
    assert r.header("content-length") == "2"


@pytest.mark.parametrize(
    ("status", "method"), [(204, "GET"), (304, "GET"), (200, "HEAD"), (101, "GET")]
)
def test_bodiless_responses(status: int, method: str) -> None:
    r = build_response(status, None, [("Content-Length", "10")], b"ignored", request_method=method)
    assert bytes(r.body_raw) == b"" and r.header("content-length") == "10"


def test_response_reason_and_length() -> None:
    r = build_response(404, "", [], b"x")
    assert r.raw == b"HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx"
    r = build_response(299, None, [], b"")
    assert r.raw.startswith(b"HTTP/1.1 299\r\n") and r.header("content-length") == "0"


@pytest.mark.parametrize("enc", ["gzip", "deflate", "br", "zstd", "identity"])
def test_encode_body_inverts_decode(enc: str) -> None:
    out = encode_body(b"hello" * 10, [enc])
    assert out is not None and decode_content(out, [enc]) == b"hello" * 10
    assert encode_body(b"x", ["bogus"]) is None


def test_safe_target() -> None:
    assert safe_target("/a?b=%20") == "/a?b=%20"
    assert safe_target("/é b") == "/%C3%A9%20b"


def test_clean_text_removes_lone_surrogates() -> None:
    from replaygate.formats._http1 import clean_text

    assert clean_text("ok") == "ok"
    assert clean_text("\udc80TTP/1.1").endswith("TTP/1.1")
    clean_text("\udc80\ud800x").encode("utf-8")  # no exception
