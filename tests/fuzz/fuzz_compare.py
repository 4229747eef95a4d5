"""Fuzz targets for compare and report: arbitrary responses through the differ, the
comparator, the judge and every report writer; comparator state and accepted-differences
files from arbitrary bytes (only FormatError/ConfigError may come out)."""

from __future__ import annotations

from collections.abc import Callable

from replaygate.compare import AcceptedDiffs, Comparator, GateConfig, judge
from replaygate.model import Exchange, Request, Response
from replaygate.report import render_html, render_json, render_junit, render_markdown

__all__ = ["SEEDS", "TARGETS"]

_SEP = b"\x00\x00"


def _parts(data: bytes, n: int) -> list[bytes]:
    parts = data.split(_SEP, n - 1)
    return parts + [b""] * (n - len(parts))


def fuzz_compare(data: bytes) -> None:
    req, orig, rep, base = _parts(data, 4)
    c = Comparator()
    for role, body in ((None, rep), ("baseline", base)):
        ex = Exchange(
            id="x",
            request=Request(req or b"GET / HTTP/1.1\r\n\r\n"),
            response=Response(orig),
            replayed=Response(body),
        )
        ex.replay_latency_ns = len(body) * 1000
        if role:
            ex.meta["role"] = role
        c.add(ex)
        c.add(ex)
    s = judge(Comparator.from_state(c.to_state()).result(), GateConfig()).summary()
    for render in (render_json, render_junit, render_markdown, render_html):
        render(s)


def fuzz_structured(data: bytes) -> None:
    """Two bodies as HTML, CSV and plain text, and two header blocks of cookies."""
    from replaygate.compare.diff import ResponseDiffer
    from replaygate.testing import make_response

    a, b = _parts(data, 2)
    d = ResponseDiffer()
    for ctype in ("text/html", "text/csv", "text/plain", ""):
        h = [("Content-Type", ctype)] if ctype else []
        d.diff(make_response(200, a, headers=h), make_response(200, b, headers=h))
    ca = [("Set-Cookie", x) for x in a.decode("latin-1").split("\n")[:8]]
    cb = [("Set-Cookie", x) for x in b.decode("latin-1").split("\n")[:8]]
    d.diff(make_response(200, b"", headers=ca), make_response(200, b"", headers=cb))


def fuzz_tokens(data: bytes) -> None:
    """Token recognition on arbitrary text: never raises; masking only shortens; every token
    found is in the text; a text differs from itself only in tokens."""
    from replaygate.compare._tokens import find_tokens, mask_tokens, only_tokens_differ

    a, b = (x.decode("utf-8", "replace") for x in _parts(data, 2))
    assert len(mask_tokens(a)) <= len(a)
    assert all(t in a for t in find_tokens(a))
    assert only_tokens_differ(a, a)
    only_tokens_differ(a, b)


def fuzz_routes(data: bytes) -> None:
    """Route lists (OpenAPI JSON/YAML, plain patterns): only ConfigError may come out."""
    from replaygate.compare import EndpointTemplater
    from replaygate.compare._routes import parse_routes
    from replaygate.testing import make_request

    for name in ("routes.txt", "api.yaml", "api.json"):
        rules = parse_routes(data, name)
        t = EndpointTemplater(routes=rules)
        t.endpoint(make_request("GET", "/users/1.json"))


def fuzz_state(data: bytes) -> None:
    c = Comparator.from_state(data)
    judge(c.result(), GateConfig()).summary()


def fuzz_accepted(data: bytes) -> None:
    acc = AcceptedDiffs.parse(data)
    for e in acc.entries:
        e.matches_field("GET /x", "body:$.a", "changed")
        e.matches_status("GET /x", "2xx>5xx")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "compare_responses": fuzz_compare,
    "compare_structured": fuzz_structured,
    "compare_routes": fuzz_routes,
    "compare_tokens": fuzz_tokens,
    "compare_state": fuzz_state,
    "compare_accepted": fuzz_accepted,
}

_J = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
SEEDS: dict[str, list[bytes]] = {
    "compare_tokens": [
        _SEP.join(
            [
                b'<input name="csrf" value="IjRlYjQ1NmQ0Ig.Z1Mbkw.kXbRmQvTzPaWfLsNcYeHgUjDvBr">',
                b'<input name="csrf" value="IjhmMjE0ZGE3Ig.Z1McAA.QpWoEiRuTyLaKsJdHfGzXcVbNmM">',
            ]
        ),
        b"at 2026-12-06T07:00:00Z id 3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    ],
    "compare_responses": [
        _SEP.join(
            [
                b"GET /u/1 HTTP/1.1\r\nHost: a\r\n\r\n",
                _J + b'{"a":[1,2]}',
                _J + b'{"a":[2]}',
                _J + b'{"a":[1,2]}',
            ]
        ),
        _SEP.join(
            [
                b"POST /x HTTP/1.1\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8b",
                b"HTTP/1.1 500 X\r\n\r\n",
            ]
        ),
    ],
    "compare_structured": [
        _SEP.join(
            [
                b"<!doctype html><html><body><p id=a>x<b>y</b></p><form><input value=1></form>",
                b"<html><body><p id=a>z</p><p>new</p><form><input value=2 name=q></form>",
            ]
        ),
        _SEP.join([b'id,name,"t,x"\n1,a,2\n2,b,3\n', b'name,id\n"a\n1,3\n']),
        _SEP.join([b"sid=1; Path=/; HttpOnly\nx=2", b"sid=2; path=/; SameSite=Lax\n=;;"]),
    ],
    "compare_routes": [
        b"GET /users/{id}\n# c\n/files/**\n",
        b'{"openapi": "3.0.0", "servers": [{"url": "/v1"}], "paths": {"/a/{b}.json": {"get": {}}}}',
        b"openapi: 3.1.0\npaths:\n  /u/{id}:\n    get: {}\n",
    ],
    "compare_state": [Comparator().to_state(), b'{"v": 1, "endpoints": {"x": {}}}'],
    "compare_accepted": [
        b'[[accepted]]\nendpoint = "GET /*"\nfield = "$.a"\nreason = "r"\nwho = "w"\nexpires = 2027-01-01\n',
        b'[[accepted]]\nendpoint = "*"\nstatus = "2xx>5xx"\nreason = "r"\nwho = "w"\nexpires = "2027-01-01"\n',
    ],
}
