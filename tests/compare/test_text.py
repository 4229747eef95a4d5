"""Text bodies by line, CSV bodies by cell (columns keyed by the header), and cookies by name."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.compare import Comparator, GateConfig, judge
from replaygate.compare.diff import ResponseDiffer
from replaygate.model import Exchange
from replaygate.testing import make_exchange, make_response

CSV = [("Content-Type", "text/csv; charset=utf-8")]


def keys(a: bytes, b: bytes, h: list[tuple[str, str]] = CSV) -> list[tuple[str, str]]:
    d = ResponseDiffer().diff(make_response(200, a, headers=h), make_response(200, b, headers=h))
    return [x.key for x in d]


def test_csv_cells_keyed_by_header() -> None:
    a = b"id,name,total\r\n1,ann,3.50\r\n2,bob,4.00\r\n"
    # columns reordered: not a cell difference, but the header order is reported
    b = b"name,id,total\r\nann,1,3.50\r\nbob,2,4.00\r\n"
    assert keys(a, b) == [("body:csv.header", "order")]
    c = b"id,name,total,extra\r\n1,ann,3.55,x\r\n2,bob,4.00,y\r\n"
    assert keys(a, c) == [("body:csv[*].extra", "extra"), ("body:csv[*].total", "changed")]
    d = b"id,total\r\n1,3.50\r\n2,4.00\r\n3,1.00\r\n"
    assert keys(a, d) == [
        ("body:csv[*].name", "missing"),
        ("body:csv", "length"),
        ("body:csv[*]", "extra"),
    ]


def test_csv_volatile_column_is_noise_while_another_column_counts() -> None:
    def ex(orig: bytes, rep: bytes, role: str | None = None) -> Exchange:
        e = make_exchange(
            "GET",
            "/db/orders.csv",
            response_body=orig,
            response_headers=CSV,
            replayed_status=200,
            replayed_body=rep,
            replayed_headers=CSV,
        )
        if role:
            e.meta["role"] = role
        return e

    c = Comparator()
    for i in range(20):
        o = f"id,total,fetched\n1,3.50,{i}.1\n".encode()
        c.add(ex(o, f"id,total,fetched\n1,3.75,{i}.2\n".encode()))
        c.add(ex(o, f"id,total,fetched\n1,3.50,{i}.3\n".encode(), role="baseline"))
    e = judge(c.result(), GateConfig()).summary()["endpoints"][0]
    f = {(x["field"], x["kind"]): x["status"] for x in e["fields"]}
    assert f == {
        ("body:csv[*].fetched", "changed"): "noise",
        ("body:csv[*].total", "changed"): "regression",
    }


def test_text_by_line() -> None:
    h = [("Content-Type", "text/plain")]
    a = b"one\ntwo\nthree\n"
    assert keys(a, b"one\n2\nthree\n", h) == [("body:line[2]", "changed")]
    assert keys(a, b"one\nthree\n", h) == [("body:line[2]", "missing")]
    assert keys(a, b"one\ntwo\nnew\nthree\n", h) == [("body:line[3]", "extra")]
    assert keys(a, b"one\ntwo\nthree", h) == [("body:line[3]", "changed")]


def cookie_ex(orig: list[str], rep: list[str], role: str | None = None) -> Exchange:
    e = make_exchange(
        "POST",
        "/login",
        status=302,
        response_headers=[("Set-Cookie", c) for c in orig],
        replayed_status=302,
        replayed_headers=[("Set-Cookie", c) for c in rep],
    )
    if role:
        e.meta["role"] = role
    return e


def test_a_set_cookie_the_new_version_stopped_sending_fails() -> None:
    c = Comparator()
    for i in range(10):
        orig = [f"sessionid=o{i}; Path=/; HttpOnly", f"csrftoken=t{i}; Path=/"]
        c.add(cookie_ex(orig, [f"csrftoken=c{i}; Path=/"]))
        c.add(
            cookie_ex(
                orig, [f"sessionid=b{i}; Path=/; HttpOnly", f"csrftoken=b{i}; Path=/"], "baseline"
            )
        )
    s = judge(c.result(), GateConfig()).summary()
    e = s["endpoints"][0]
    f = {(x["field"], x["kind"]): x["status"] for x in e["fields"]}
    assert f[("header:set-cookie:sessionid", "missing")] == "regression"
    assert f[("header:set-cookie", "changed")] == "noise"  # values: volatile by default
    assert s["verdict"] == "fail"
    assert any("header:set-cookie:sessionid missing" in r for r in s["reasons"])


def test_cookie_attributes_compared_values_of_expiry_are_not() -> None:
    h = lambda v: [("Set-Cookie", v)]  # noqa: E731
    a = "sid=1; Path=/; HttpOnly; Max-Age=3600; Expires=Wed, 01 Dec 2027 07:00:00 GMT"
    same = "sid=2; path=/; Max-Age=3599; httponly; Expires=Wed, 01 Dec 2027 07:00:09 GMT"
    lost = "sid=2; Path=/; SameSite=None"

    def ks(x: str, y: str) -> list[tuple[str, str]]:
        d = ResponseDiffer().diff(
            make_response(200, headers=h(x)), make_response(200, headers=h(y))
        )
        return [z.key for z in d]

    assert ks(a, same) == [("header:set-cookie", "changed")]
    assert ks(a, lost) == [
        ("header:set-cookie:sid", "attributes"),
        ("header:set-cookie", "changed"),
    ]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet='ab,"\n\r1;=', max_size=120), st.text(alphabet='ab,"\n1', max_size=60))
def test_arbitrary_csv_never_raises(a: str, b: str) -> None:
    assert keys(a.encode(), a.encode()) == []
    keys(a.encode(), b.encode())


def test_repeated_lines_and_rows_align_without_cascades() -> None:
    h = [("Content-Type", "text/plain")]
    same = b"x\n" * 5000
    changed = same.replace(b"x", b"y", 3)
    assert keys(same, changed, h) == [(f"body:line[{i}]", "changed") for i in (1, 2, 3)]
    rows = b"id,v\n" + b"1,2\n" * 3000
    assert keys(rows, rows.replace(b"1,2\n", b"1,3\n", 1)) == [("body:csv[*].v", "changed")]
