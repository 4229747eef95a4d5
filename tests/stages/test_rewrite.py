"""Rewrites: URL regex (Go and Python replacement syntax), header regex, set/remove header,
set query parameter; framing stays honest and every change is flagged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import ConfigError
from replaygate.model import Exchange, Flag, Request
from replaygate.stages.rewrite import (
    RewriteConfig,
    RewriteStage,
    parse_replacement,
    set_query_param,
    split_unescaped,
)
from replaygate.testing import make_exchange


def _run(cfg: RewriteConfig, ex: Exchange) -> Exchange:
    (out,) = list(RewriteStage(cfg).process(ex))
    return out


@pytest.mark.parametrize(
    ("rules", "target", "expected"),
    [
        (["/v1/user/([^/]+)/ping:/v2/user/$1/ping"], "/v1/user/joe/ping", "/v2/user/joe/ping"),
        (["/v1/user/([^/]+)/ping:/v2/user/${1}/ping"], "/v1/user/joe/ping", "/v2/user/joe/ping"),
        ([r"/v1/user/([^/]+)/ping:/v2/user/\1/ping"], "/v1/user/joe/ping", "/v2/user/joe/ping"),
        ([r"/v1/(?P<rest>.*):/v3/${rest}"], "/v1/a/b?c=1", "/v3/a/b?c=1"),
        ([r"/v1/(?P<rest>.*):/v3/\g<rest>"], "/v1/a/b", "/v3/a/b"),
        (["^/old:/new"], "/old/x", "/new/x"),
        (["^/old:/new"], "/other", "/other"),
        (["a:b"], "/aaa", "/bbb"),  # every match of the rule is replaced
        (["^/x:/first", "^/x:/second"], "/x", "/first"),  # first matching rule wins
        (["^/nomatch:/z", "^/x:/second"], "/x", "/second"),
        ([r"^/p\:q:/pq"], "/p:q", "/pq"),  # escaped colon stays in the regex
        (["^/price:/cost$$"], "/price", "/cost$"),  # $$ is a literal dollar
        (["^/(a):/$9"], "/a", "/"),  # unknown group expands to "" (Go's rule)
    ],
)
def test_rewrite_url(rules: list[str], target: str, expected: str) -> None:
    ex = make_exchange("GET", target)
    out = _run(RewriteConfig(rewrite_url=rules), ex)
    assert out.request.target == expected
    assert (Flag.MODIFIED in out.flags) is (expected != target)


def test_rewrite_keeps_body_and_framing() -> None:
    ex = make_exchange("POST", "/v1/items", request_body=b'{"a": 1}')
    out = _run(RewriteConfig(rewrite_url=["^/v1/:/v2/"], set_header=["X-Env: staging"]), ex)
    req = out.request
    assert req.raw.startswith(b"POST /v2/items HTTP/1.1\r\n")
    assert req.body() == b'{"a": 1}'
    assert req.header("content-length") == "8"
    assert req.header("x-env") == "staging"
    assert out.meta["rewrite"] == "rewrite-url,set-header"
    assert len(req.raw) == req.head_len + 8


def test_chunked_body_untouched() -> None:
    raw = (
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    ex = Exchange(id="c", request=Request(raw))
    out = _run(RewriteConfig(set_header=["X-A: 1"]), ex)
    assert out.request.raw.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert out.request.body() == b"hello"


def test_rewrite_header() -> None:
    ex = make_exchange("GET", "/", request_headers=[("Host", "api.example.com")])
    cfg = RewriteConfig(rewrite_header=["Host: (.*)\\.example\\.com,$1.beta.example.com"])
    assert _run(cfg, ex).request.header("host") == "api.beta.example.com"
    cfg = RewriteConfig(rewrite_header=["host: ^(\\w{1\\,3})\\.,X$1."])  # escaped comma
    assert _run(cfg, make_exchange(request_headers=[("Host", "api.x")])).request.host == "Xapi.x"
    unchanged = make_exchange("GET", "/")
    out = _run(RewriteConfig(rewrite_header=["X-None: a,b"]), unchanged)
    assert Flag.MODIFIED not in out.flags


def test_set_and_remove_header_keep_order_and_case() -> None:
    ex = make_exchange(
        "GET",
        "/",
        request_headers=[("Cookie", "a=1"), ("X-Trace", "1"), ("cookie", "b=2"), ("Accept", "*/*")],
    )
    out = _run(RewriteConfig(set_header={"COOKIE": "staging=1"}, remove_header=["x-trace"]), ex)
    assert out.request.headers == [
        ("Host", "example.test"),
        ("Cookie", "staging=1"),
        ("Accept", "*/*"),
    ]


def test_set_header_that_is_already_set_is_not_a_change() -> None:
    ex = make_exchange("GET", "/", request_headers=[("X-Env", "staging")])
    out = _run(RewriteConfig(set_header=["X-Env: staging"]), ex)
    assert Flag.MODIFIED not in out.flags


@pytest.mark.parametrize(
    ("target", "name", "value", "expected"),
    [
        ("/a", "k", "v", "/a?k=v"),
        ("/a?", "k", "v", "/a?k=v"),
        ("/a?x=1", "k", "v", "/a?x=1&k=v"),
        ("/a?k=old&x=1&k=again", "k", "new", "/a?k=new&x=1"),
        ("/a?x=%20y&k=1", "k", "a b&c", "/a?x=%20y&k=a%20b%26c"),
        ("/a?api%5Fkey=1", "api_key", "2", "/a?api_key=2"),
    ],
)
def test_set_query_param(target: str, name: str, value: str, expected: str) -> None:
    assert set_query_param(target, name, value) == expected


def test_set_param_stage() -> None:
    out = _run(RewriteConfig(set_param=["api_key=staging"]), make_exchange("GET", "/p?a=1"))
    assert out.request.target == "/p?a=1&api_key=staging"
    assert out.request.query == "a=1&api_key=staging"


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"rewrite_url": ["no-colon"]}, "--rewrite-url: expected 'REGEX:REPLACEMENT'"),
        ({"rewrite_url": ["(:x"]}, "--rewrite-url: bad regex"),
        ({"rewrite_header": ["Host: nocomma"]}, "--rewrite-header: expected"),
        ({"rewrite_header": ["nocolon"]}, "--rewrite-header: expected"),
        ({"set_header": ["novalue"]}, "--set-header: expected 'Name: value'"),
        ({"set_header": ["Bad Name: v"]}, "--set-header: bad header name"),
        ({"set_param": ["noequals"]}, "--set-param: expected 'name=value'"),
        ({"set_header": ["Content-Length: 0"]}, "--set-header: Content-Length frames the body"),
        ({"remove_header": ["transfer-encoding"]}, "--remove-header: transfer-encoding frames"),
        ({"rewrite_header": ["Content-Length: 1,2"]}, "--rewrite-header: content-length frames"),
    ],
)
def test_bad_values(cfg: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RewriteStage(RewriteConfig(**cfg))  # type: ignore[arg-type]


def test_helpers() -> None:
    assert split_unescaped(r"a\:b:c", ":") == ("a:b", "c")
    assert split_unescaped("abc", ":") is None
    # Go's rule: $1y is the group named "1y"; ${1}y is group 1 then "y"
    assert parse_replacement("x$1y") == ["x", ("1y",)]
    assert parse_replacement("x${1}y${name}$$\\2\\g<3>") == [
        "x",
        (1,),
        "y",
        ("name",),
        "$",
        (2,),
        (3,),
    ]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_requests_never_raise(raw: bytes) -> None:
    stage = RewriteStage(
        RewriteConfig(
            rewrite_url=["^/(.*):/x/$1"],
            rewrite_header=["Host: (.*),$1"],
            set_header=["X-A: 1"],
            remove_header=["Cookie"],
            set_param=["a=b"],
        )
    )
    (out,) = list(stage.process(Exchange(id="x", request=Request(raw))))
    assert isinstance(out.request, Request)


def test_only_changed_lines_are_rebuilt() -> None:
    raw = (
        b"GET /v1/a?q=1 HTTP/1.1\r\nhost:x.test\r\nX-Odd:   spaced  \r\n"
        b"X-Fold: first\r\n  second\r\nCookie: a=1\r\n\r\nbody"
    )
    ex = Exchange(id="f", request=Request(raw))
    out = _run(RewriteConfig(rewrite_url=["^/v1/:/v2/"]), ex)
    assert out.request.raw == raw.replace(b"/v1/a", b"/v2/a")
    out = _run(
        RewriteConfig(set_header=["Cookie: staging=1"]), Exchange(id="g", request=Request(raw))
    )
    assert out.request.raw == raw.replace(b"Cookie: a=1", b"Cookie: staging=1")
    out = _run(
        RewriteConfig(rewrite_header=["X-Fold: second,2nd"]), Exchange(id="h", request=Request(raw))
    )
    assert out.request.raw == raw.replace(b"X-Fold: first\r\n  second", b"X-Fold: first 2nd")
    out = _run(RewriteConfig(remove_header=["x-odd"]), Exchange(id="i", request=Request(raw)))
    assert out.request.raw == raw.replace(b"X-Odd:   spaced  \r\n", b"")


def test_lf_only_heads_keep_lf() -> None:
    raw = b"GET /a HTTP/1.1\nHost: h\n\n"
    out = _run(RewriteConfig(set_header=["X-A: 1"]), Exchange(id="l", request=Request(raw)))
    assert out.request.raw == b"GET /a HTTP/1.1\nHost: h\nX-A: 1\n\n"


def test_non_latin1_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"--set-header: .* cannot carry"):
        RewriteStage(RewriteConfig(set_header=["X-Name: Zoë ☃"]))
    with pytest.raises(ConfigError, match="--rewrite-url"):
        RewriteStage(RewriteConfig(rewrite_url=["^/a:/☃"]))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text("abcXYZ-", min_size=1, max_size=8),
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
        ),
        max_size=6,
    ),
    st.sampled_from(["\r\n", "\n"]),
)
def test_set_header_keeps_every_other_header(headers: list[tuple[str, str]], eol: str) -> None:
    head = "GET /p HTTP/1.1" + eol + "".join(f"{k}:{v}{eol}" for k, v in headers) + eol
    req = Request(head.encode("latin-1") + b"xyz")
    (out,) = list(
        RewriteStage(RewriteConfig(set_header=["X-Env: staging"])).process(
            Exchange(id="p", request=req)
        )
    )
    r = out.request
    assert r.header("x-env") == "staging"
    assert [h for h in r.headers if h[0].lower() != "x-env"] == [
        h for h in req.headers if h[0].lower() != "x-env"
    ]
    assert bytes(r.body_raw) == b"xyz"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"\r\n", b"\n"]))
def test_url_rewrite_keeps_every_byte_after_the_request_line(rest: bytes, eol: bytes) -> None:
    raw = b"GET /v1/x?a=1 HTTP/1.1" + eol + rest
    (out,) = list(
        RewriteStage(RewriteConfig(rewrite_url=["^/v1/:/v2/"])).process(
            Exchange(id="u", request=Request(raw))
        )
    )
    assert out.request.raw == b"GET /v2/x?a=1 HTTP/1.1" + eol + rest
    assert out.request.target == "/v2/x?a=1"


def test_edit_request_for_plugins() -> None:
    from replaygate.stages.rewrite import edit_request

    raw = b"GET /a HTTP/1.1\r\nhost:h\r\nX-Old:  1\r\nAccept: */*\r\n\r\n"
    req = Request(raw)
    assert edit_request(req) is req
    assert edit_request(req, set_headers={"X-Old": "1"}) is req  # already so
    new = edit_request(req, target="/b?c=1", set_headers={"X-New": "2"}, remove_headers=["accept"])
    assert new.raw == b"GET /b?c=1 HTTP/1.1\r\nhost:h\r\nX-Old:  1\r\nX-New: 2\r\n\r\n"
    for bad in ({"Bad Name": "x"}, {"X": "a\r\nInjected: 1"}):
        with pytest.raises(ValueError):
            edit_request(req, set_headers=bad)
    with pytest.raises(ValueError):
        edit_request(req, target="/a b")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://proxy.test/v1/a?x=1", "http://proxy.test/v2/a?x=1&k=v"),
        ("http://proxy.test", "http://proxy.test/?k=v"),
        ("/v1/a", "/v2/a?k=v"),
    ],
)
def test_absolute_form_targets_are_rewritten_on_their_path(target: str, expected: str) -> None:
    ex = Exchange(id="a", request=Request(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode()))
    out = _run(RewriteConfig(rewrite_url=["^/v1/:/v2/"], set_param=["k=v"]), ex)
    assert out.request.target == expected


def test_header_rule_on_absolute_form_keeps_the_target() -> None:
    raw = b"GET http://proxy.test HTTP/1.1\r\nHost: h\r\n\r\n"
    out = _run(RewriteConfig(set_header=["X-A: 1"]), Exchange(id="b", request=Request(raw)))
    assert out.request.target == "http://proxy.test"
