"""HTTP/2 streams as exchanges: the text form, its inverse, and lossless file round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.formats import open_reader, open_writer
from replaygate.model import ConnectionId, Exchange
from replaygate.protocol import h2msg

GRPC_REQ = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/shop.Cart/Add"),
    (":authority", "cart.test:50051"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
]


@pytest.mark.parametrize(
    ("fields", "body", "trailer", "raw", "meta"),
    [
        (
            [(":method", "GET"), (":scheme", "https"), (":authority", "a.test"), (":path", "/x")],
            b"",
            None,
            b"GET /x HTTP/2\r\nhost: a.test\r\n\r\n",
            {"scheme": "https"},
        ),
        (
            GRPC_REQ,
            b"\x00\x00\x00\x00\x02\x08\x01",
            None,
            b"POST /shop.Cart/Add HTTP/2\r\nhost: cart.test:50051\r\n"
            b"content-type: application/grpc\r\nte: trailers\r\n\r\n\x00\x00\x00\x00\x02\x08\x01",
            {"scheme": "http"},
        ),
        (
            [(":method", "POST"), (":path", "/up"), ("x-a", "1")],
            b"abc",
            [("x-sum", "9")],
            b"POST /up HTTP/2\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nx-sum: 9\r\n\r\n",
            {},
        ),
        (
            [(":method", "CONNECT"), (":authority", "db.test:5432")],
            b"",
            None,
            b"CONNECT db.test:5432 HTTP/2\r\nhost: db.test:5432\r\n\r\n",
            {},
        ),
        (
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":path", "/chat"),
                (":authority", "a.test"),
            ],
            b"",
            None,
            b"CONNECT /chat HTTP/2\r\nhost: a.test\r\n\r\n",
            {"scheme": "https", "h2.protocol": "websocket"},
        ),
    ],
)
def test_request_table(
    fields: list[tuple[str, str]],
    body: bytes,
    trailer: list[tuple[str, str]] | None,
    raw: bytes,
    meta: dict[str, str],
) -> None:
    req, m = h2msg.build_request(fields, body, trailer)
    assert req.raw == raw and m == meta
    assert req.version == "HTTP/2" and h2msg.is_http2(req)
    assert req.body() == body
    assert h2msg.trailers(req) == trailer
    back, b2, t2 = h2msg.request_fields(req, m)
    assert sorted(back) == sorted(fields) and b2 == body and t2 == trailer


def test_grpc_response_with_trailers_and_trailers_only() -> None:
    resp = h2msg.build_response(
        [(":status", "200"), ("content-type", "application/grpc")],
        b"\x00\x00\x00\x00\x00",
        [("grpc-status", "0"), ("grpc-message", "")],
    )
    assert resp.raw == (
        b"HTTP/2 200\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\n\x00\x00\x00\x00\x00\r\n0\r\ngrpc-status: 0\r\ngrpc-message: \r\n\r\n"
    )
    assert resp.status == 200 and resp.version == "HTTP/2" and resp.reason == ""
    assert resp.body() == b"\x00\x00\x00\x00\x00"
    assert h2msg.fields(resp) == [("content-type", "application/grpc")]
    assert h2msg.trailers(resp) == [("grpc-status", "0"), ("grpc-message", "")]
    only = h2msg.build_response([(":status", "200"), ("grpc-status", "5")])
    assert only.raw == b"HTTP/2 200\r\ngrpc-status: 5\r\n\r\n" and h2msg.trailers(only) is None
    empty = h2msg.build_response([(":status", "204")], b"", [])
    assert h2msg.trailers(empty) == [] and empty.body() == b""


@pytest.mark.parametrize(
    "fields",
    [
        [(":path", "/")],  # no method
        [(":method", "GET")],  # no path
        [(":method", "GET"), (":path", "/"), ("x", "a\r\nb")],
        [(":method", "GET"), (":path", "/a b")],
        [(":method", "GET"), (":path", "/"), ("bad name", "1")],
        [(":method", "GET"), (":path", "/"), (":status", "200")],
        [(":method", "GET"), (":method", "GET"), (":path", "/")],
    ],
)
def test_fields_that_text_cannot_carry_are_refused(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(h2msg.FieldError):
        h2msg.build_request(fields)


def test_bad_status_refused() -> None:
    for f in ([], [(":status", "2000")], [(":status", "ok")], [(":path", "/")]):
        with pytest.raises(h2msg.FieldError):
            h2msg.build_response(f)


_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=12).filter(
    lambda n: n not in ("host", "transfer-encoding")
)
_value = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=20).map(
    str.strip
)
_fieldlist = st.lists(st.tuples(_name, _value), max_size=5)
_trailer = st.one_of(st.none(), _fieldlist)


def _h2_exchange(
    path: str,
    req_fields: list[tuple[str, str]],
    req_body: bytes,
    req_tr: list[tuple[str, str]] | None,
    status: int,
    resp_fields: list[tuple[str, str]],
    resp_body: bytes,
    resp_tr: list[tuple[str, str]] | None,
) -> Exchange:
    req, meta = h2msg.build_request(
        [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "s.test"),
            (":path", path),
            *req_fields,
        ],
        req_body,
        req_tr,
        ts_first_ns=1_700_000_000_000_000_000,
        ts_last_ns=1_700_000_000_000_000_500,
    )
    resp = h2msg.build_response(
        [(":status", str(status)), *resp_fields],
        resp_body,
        resp_tr,
        ts_first_ns=1_700_000_000_001_000_000,
        ts_last_ns=1_700_000_000_002_000_000,
    )
    meta["h2.stream"] = "3"
    return Exchange(
        id="ab" * 20,
        request=req,
        response=resp,
        conn=ConnectionId("127.0.0.1", 40000, "127.0.0.1", 8443),
        meta=meta,
    )


@settings(max_examples=60, deadline=None)
@given(
    path=st.text(alphabet="/abc?=&%.~", max_size=15).map(lambda t: "/" + t),
    req_fields=_fieldlist,
    req_body=st.binary(max_size=40),
    req_tr=_trailer,
    status=st.sampled_from([200, 204, 404, 503]),
    resp_fields=_fieldlist,
    resp_body=st.one_of(st.binary(max_size=40), st.text(max_size=20).map(str.encode)),
    resp_tr=_trailer,
)
def test_round_trips_lossless_in_every_format(
    tmp_path_factory: pytest.TempPathFactory,
    path: str,
    req_fields: list[tuple[str, str]],
    req_body: bytes,
    req_tr: list[tuple[str, str]] | None,
    status: int,
    resp_fields: list[tuple[str, str]],
    resp_body: bytes,
    resp_tr: list[tuple[str, str]] | None,
) -> None:
    # HAR keeps decoded bodies: a content-encoding with random bytes would not round-trip
    req_fields = [(k, v) for k, v in req_fields if k not in ("content-encoding",)]
    resp_fields = [(k, v) for k, v in resp_fields if k not in ("content-encoding",)]
    ex = _h2_exchange(path, req_fields, req_body, req_tr, status, resp_fields, resp_body, resp_tr)
    back_fields, body, tr = h2msg.request_fields(ex.request, ex.meta)
    assert h2msg.build_request(back_fields, body, tr)[0].raw == ex.request.raw
    d = tmp_path_factory.mktemp("h2")
    for name in ("a.gor", "a.jsonl", "a.har"):
        w = open_writer(d / name)
        w.write(ex)
        w.close()
        (got,) = list(open_reader(d / name))
        assert got.request.raw == ex.request.raw, name
        assert got.response is not None and got.response.raw == ex.response.raw, name  # type: ignore[union-attr]
        assert got.meta == ex.meta and got.conn == ex.conn, name
        assert got.summary() == ex.summary(), name
