"""HTML bodies by DOM path: one volatile line is noise at its own path, content changes
elsewhere in the page still count."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.compare import Comparator, GateConfig, judge
from replaygate.compare._html import parse_html
from replaygate.compare.diff import ResponseDiffer
from replaygate.model import Exchange
from replaygate.testing import make_exchange, make_response

H = [("Content-Type", "text/html; charset=utf-8")]


def page(rows: list[tuple[int, str]], ms: float, title: str = "orders") -> bytes:
    trs = "".join(f"<tr><td>{i}</td><td>{name}</td></tr>" for i, name in rows)
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
        f'<h1>{title}</h1><table id="rows"><tbody>{trs}</tbody></table>'
        f"<footer><p>Powered by Datasette</p><p>Queries took {ms:.3f}ms</p></footer>"
        "</body></html>"
    ).encode()


def ex(target: str, orig: bytes, rep: bytes, role: str | None = None) -> Exchange:
    e = make_exchange(
        "GET",
        target,
        response_body=orig,
        response_headers=H,
        replayed_status=200,
        replayed_body=rep,
        replayed_headers=H,
    )
    if role:
        e.meta["role"] = role
    return e


def keys(a: bytes, b: bytes) -> list[tuple[str, str]]:
    d = ResponseDiffer().diff(make_response(200, a, headers=H), make_response(200, b, headers=H))
    return [x.key for x in d]


ROWS = [(1, "ann"), (2, "bob"), (3, "cy")]


def test_one_volatile_line_is_noise_at_its_own_path_only() -> None:
    footer = "body:/html/body/footer/p[2]/text()"
    cell = "body:/html/body/table#rows/tbody/tr[2]/td[2]/text()"
    for broken in (False, True):
        c = Comparator()
        for i in range(30):
            orig = page(ROWS, 10 + i)
            cand_rows = [(1, "ann"), (2, "BOB" if broken else "bob"), (3, "cy")]
            c.add(ex(f"/db/orders?page={i}", orig, page(cand_rows, 20 + i * 1.5)))
            c.add(ex(f"/db/orders?page={i}", orig, page(ROWS, 30 + i * 0.7), role="baseline"))
        s = judge(c.result(), GateConfig()).summary()
        e = s["endpoints"][0]
        f = {(x["field"], x["kind"]): x["status"] for x in e["fields"]}
        assert f[(footer, "changed")] == "noise"
        if broken:
            assert f[(cell, "changed")] == "regression"
            assert s["verdict"] == "fail" and e["diff_rate"] == 1.0
            assert cell in e["reasons"][0]
        else:
            assert (cell, "changed") not in f
            assert s["verdict"] == "pass", s["reasons"]


def test_inserted_row_is_one_extra_element_not_a_cascade() -> None:
    a = page(ROWS, 1.0)
    b = page([(1, "ann"), (9, "new"), (2, "bob"), (3, "cy")], 1.0)
    assert keys(a, b) == [("body:/html/body/table#rows/tbody/tr[2]", "extra")]
    assert keys(b, a) == [("body:/html/body/table#rows/tbody/tr[2]", "missing")]


def test_attributes_and_elements() -> None:
    a = b'<html><body><form action="/login"><input name="csrf" value="x"><button>Go</button></form></body></html>'
    b = b'<html><body><form action="/signin"><input name="csrf"><button class="b">Go</button><p>!</p></form></body></html>'
    assert keys(a, b) == [
        ("body:/html/body/form/@action", "changed"),
        ("body:/html/body/form/input/@value", "missing"),
        ("body:/html/body/form/button/@class", "extra"),
        ("body:/html/body/form/p", "extra"),
    ]
    # markup that renders the same (comments, whitespace, attribute order) is not a difference
    c = b'<html><body><!-- v2 --><form   action="/login">\n<input value="x" name="csrf"><button>Go</button></form></body></html>'
    assert keys(a, c) == []


def test_token_only_changes_are_kind_tokens() -> None:
    a = b'<html><body><input name="csrftoken" value="4f9c2a1e-0b7d-4c3e-9a51-2d8e6f0a7b13"></body></html>'
    b = b'<html><body><input name="csrftoken" value="a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"></body></html>'
    assert keys(a, b) == [("body:/html/body/input/@value", "tokens")]


def test_ignore_rule_on_an_html_subtree() -> None:
    from replaygate.compare import CompareConfig

    c = Comparator(CompareConfig(ignore=["body:/html/body/footer"]))
    c.add(ex("/p", page(ROWS, 1.0), page(ROWS, 2.0)))
    s = judge(c.result(), GateConfig()).summary()
    assert s["verdict"] == "pass"
    assert s["endpoints"][0]["fields"][0]["reason"] == "ignore rule 'body:/html/body/footer'"


def test_huge_pages_fall_back_to_lines() -> None:
    big = b"<html><body>" + b"<p>x</p>\n" * 30_000 + b"</body></html>"
    assert parse_html(big.decode()) is None
    assert keys(big, big.replace(b"<p>x</p>", b"<p>y</p>", 1)) == [("body:line[1]", "changed")]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="<>/=\"' abcdiv-p&;#\n", max_size=300), st.text(max_size=50))
def test_arbitrary_markup_never_raises_and_equal_is_empty(a: str, b: str) -> None:
    assert keys(a.encode(), a.encode()) == []
    ResponseDiffer().diff(
        make_response(200, a.encode(), headers=H), make_response(200, (a + b).encode(), headers=H)
    )
