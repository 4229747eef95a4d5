from __future__ import annotations

import gzip

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.compare import CompareConfig, ResponseDiffer
from replaygate.testing import make_response

J = [("Content-Type", "application/json")]


def keys(
    a: bytes, b: bytes, cfg: CompareConfig | None = None, ha=J, hb=J, sa=200, sb=200
) -> set[tuple[str, str]]:
    d = ResponseDiffer(cfg)
    return {
        x.key for x in d.diff(make_response(sa, a, headers=ha), make_response(sb, b, headers=hb))
    }


def test_identical_and_status() -> None:
    assert keys(b"{}", b"{}") == set()
    assert keys(b"{}", b"{}", sb=500) == {("status", "changed")}
    d = ResponseDiffer().diff(make_response(200), None)
    assert [(x.field, x.original, x.replayed) for x in d] == [("status", 200, None)]


def test_json_structural() -> None:
    a = orjson.dumps({"a": 1, "b": {"c": "x", "d": [1, 2, 3]}, "e": True, "n": 1, "gone": 0})
    b = orjson.dumps({"a": "1", "b": {"c": "y", "d": [1, 2]}, "e": 1, "n": 1.0, "new": None})
    assert keys(a, b) == {
        ("body:$.a", "type"),
        ("body:$.b.c", "changed"),
        ("body:$.b.d", "length"),
        ("body:$.e", "type"),
        ("body:$.gone", "missing"),
        ("body:$.new", "extra"),
    }


def test_array_indices_fold_and_order() -> None:
    a = orjson.dumps({"items": [{"p": 1}, {"p": 2}, {"p": 3}]})
    b = orjson.dumps({"items": [{"p": 1}, {"p": 5}, {"p": 6}]})
    diffs = ResponseDiffer().diff(
        make_response(200, a, headers=J), make_response(200, b, headers=J)
    )
    assert {d.field for d in diffs} == {"body:$.items[*].p"}
    assert [d.path for d in diffs] == ["$.items[1].p", "$.items[2].p"]
    assert keys(b"[1,2,3]", b"[3,2,1]") == {("body:$", "order")}
    cfg = CompareConfig(order_insensitive=["$.tags", "body:$.groups[*].ids"])
    assert keys(b'{"tags":[1,2,3]}', b'{"tags":[3,1,2]}', cfg) == set()
    assert keys(b'{"tags":[1,2,3]}', b'{"tags":[3,1,4]}', cfg) == {
        ("body:$.tags[*]", "missing"),
        ("body:$.tags[*]", "extra"),
    }
    assert keys(b'{"groups":[{"ids":[1,2]}]}', b'{"groups":[{"ids":[2,1]}]}', cfg) == set()


def test_special_keys_are_quoted() -> None:
    diffs = ResponseDiffer().diff(
        make_response(200, b'{"a b": 1}', headers=J), make_response(200, b'{"a b": 2}', headers=J)
    )
    assert diffs[0].field == 'body:$["a b"]'


def test_headers_case_insensitive_lists_cookies_framing() -> None:
    ha = [
        ("Content-Type", "text/plain"),
        ("Vary", "Accept, Origin"),
        ("Set-Cookie", "sid=1; Path=/"),
        ("Transfer-Encoding", "identity"),
    ]
    hb = [
        ("content-type", "text/plain"),
        ("vary", "Origin"),
        ("vary", "Accept"),
        ("set-cookie", "sid=2; Path=/"),
        ("X-New", "1"),
    ]
    # cookie values are compared (as the volatile header:set-cookie), names one by one
    assert keys(b"x", b"x", ha=ha, hb=hb) == {
        ("header:x-new", "extra"),
        ("header:set-cookie", "changed"),
    }
    hb2 = [("Content-Type", "text/plain"), ("Set-Cookie", "other=2")]
    assert keys(b"x", b"x", ha=ha, hb=hb2) == {
        ("header:vary", "missing"),
        ("header:set-cookie:sid", "missing"),
        ("header:set-cookie:other", "extra"),
    }
    assert keys(b"x", b"x", CompareConfig(compare_headers=False), ha=ha, hb=hb) == set()


def test_bodies_after_content_decoding() -> None:
    body = b'{"a": 1}'
    gz = [*J, ("Content-Encoding", "gzip")]
    assert keys(gzip.compress(body), body, ha=gz, hb=J) == {("header:content-encoding", "missing")}


def test_text_binary_and_kind() -> None:
    h = [("Content-Type", "text/html")]
    d = ResponseDiffer().diff(
        make_response(200, b"<p>\na\n</p>", headers=h),
        make_response(200, b"<p>\nb\n</p>", headers=h),
    )
    assert [(x.field, x.kind, x.original, x.replayed) for x in d] == [
        ("body:/html/body/p/text()", "changed", "a", "b")
    ]
    hb = [("Content-Type", "image/png")]
    d = ResponseDiffer().diff(
        make_response(200, b"\x89PNG\x00\xff", headers=hb),
        make_response(200, b"\x89PNG\x00\xfe!", headers=hb),
    )
    assert d[0].field == "body:binary" and d[0].kind == "size" and d[0].original["size"] == 6
    assert ("body:kind", "type") in keys(
        b'{"a":1}', b"<html>oops</html>", hb=[("Content-Type", "text/html")]
    )


def test_limit() -> None:
    a = orjson.dumps({str(i): i for i in range(500)})
    b = orjson.dumps({str(i): i + 1 for i in range(500)})
    d = ResponseDiffer(CompareConfig(max_diffs_per_exchange=10)).diff(
        make_response(200, a, headers=J), make_response(200, b, headers=J)
    )
    assert len(d) == 10


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=3), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values, json_values)
def test_json_diff_empty_iff_equal(a: object, b: object) -> None:
    da, db = orjson.dumps(a), orjson.dumps(b)
    diffs = ResponseDiffer().diff(
        make_response(200, da, headers=J), make_response(200, db, headers=J)
    )
    if da == db:
        assert diffs == []
    if orjson.loads(da) != orjson.loads(db):
        assert diffs


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=200),
    st.binary(max_size=200),
    st.sampled_from(["application/json", "text/html", "", "application/octet-stream"]),
    st.sampled_from(["", "gzip", "br", "deflate"]),
)
def test_arbitrary_bodies_never_raise(a: bytes, b: bytes, ctype: str, enc: str) -> None:
    h = ([("Content-Type", ctype)] if ctype else []) + ([("Content-Encoding", enc)] if enc else [])
    ResponseDiffer().diff(make_response(200, a, headers=h), make_response(201, b, headers=h))


def test_text_volatile_tokens_apart_from_lines() -> None:
    h = [("Content-Type", "text/html")]

    def page(token: str, ts: str, word: str) -> bytes:
        return f'<p>{word}</p>\n<input name="csrf" value="{token}">\n<i>{ts}</i>\n'.encode()

    a = make_response(
        200, page("a8F3kQ9zL2mN4pR7sT1vW6yB", "2026-12-01T08:00:01Z", "hi"), headers=h
    )
    b = make_response(
        200, page("Z9y8X7w6V5u4T3s2R1q0P9oN", "2026-12-01T08:00:09Z", "hi"), headers=h
    )
    c = make_response(
        200, page("Z9y8X7w6V5u4T3s2R1q0P9oN", "2026-12-01T08:00:09Z", "bye"), headers=h
    )
    d = ResponseDiffer()
    tokens = [("body:/html/body/input/@value", "tokens"), ("body:/html/body/i/text()", "tokens")]
    assert [x.key for x in d.diff(a, b)] == tokens
    assert [x.key for x in d.diff(a, c)] == [("body:/html/body/p/text()", "changed"), *tokens]
    plain = [("Content-Type", "text/plain")]
    pa = make_response(200, a.body(), headers=plain)
    pc = make_response(200, c.body(), headers=plain)
    assert [x.key for x in d.diff(pa, pc)] == [
        ("body:line[1]", "changed"),
        ("body:line[2]", "tokens"),
        ("body:line[3]", "tokens"),
    ]


def test_deep_nesting_is_bounded() -> None:
    def nested(v: bytes) -> bytes:
        return b'{"r": ' + b"[" * 500 + v + b"]" * 500 + b"}"

    d = ResponseDiffer().diff(
        make_response(200, nested(b"1"), headers=J), make_response(200, nested(b"2"), headers=J)
    )
    assert len(d) == 1 and d[0].kind == "changed"


def test_id_keyed_maps_fold_to_one_field() -> None:
    a = orjson.dumps(
        {"users": {"123": {"n": 1}, "9f8e2c1a-1b2c-4d5e-8f90-1234567890ab": {"n": 1}}, "name": 1}
    )
    b = orjson.dumps(
        {"users": {"123": {"n": 2}, "9f8e2c1a-1b2c-4d5e-8f90-1234567890ab": {"n": 2}}, "name": 1}
    )
    d = ResponseDiffer().diff(make_response(200, a, headers=J), make_response(200, b, headers=J))
    assert {x.field for x in d} == {"body:$.users.{int}.n", "body:$.users.{uuid}.n"}
    assert {x.path for x in d} == {
        '$.users["123"].n',
        '$.users["9f8e2c1a-1b2c-4d5e-8f90-1234567890ab"].n',
    }
