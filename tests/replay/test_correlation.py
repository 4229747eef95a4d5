"""Session/token correlation against a real app: login -> act -> logout with a session
cookie and a CSRF token that are random per app instance.

Traffic is recorded against instance A (real sockets, real responses), then replayed into
instance B with the real replay engine: without correlation every authenticated step fails
(403), with it they all pass.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import ConfigError
from replaygate.model import Exchange, Request, Response
from replaygate.replay.correlation import (
    CorrelationConfig,
    CorrelationHook,
    CorrelationRule,
    session_of,
)
from replaygate.testing import MemorySink, make_exchange, make_request


class _App(BaseHTTPRequestHandler):
    """login issues sid cookie + csrf token (JSON); /act needs both; /orders creates an id."""

    protocol_version = "HTTP/1.1"
    server: _AppServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(
        self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _session(self) -> dict[str, str] | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "sid":
                return self.server.sessions.get(v)
        return None

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/login":
            sid = secrets.token_urlsafe(16)
            csrf = secrets.token_hex(12)
            self.server.sessions[sid] = {"csrf": csrf}
            self._send(
                200,
                {"ok": True, "csrf_token": csrf},
                {"Set-Cookie": f"sid={sid}; Path=/; HttpOnly"},
            )
            return
        sess = self._session()
        if sess is None:
            self._send(403, {"error": "no session"})
            return
        if self.path == "/act":
            if self.headers.get("X-Csrf-Token") != sess["csrf"]:
                self._send(403, {"error": "bad csrf"})
                return
            self._send(200, {"ok": True, "echo": json.loads(body or b"{}")})
        elif self.path == "/orders":
            oid = str(secrets.randbelow(10**9) + 10**9)
            sess["order"] = oid
            self._send(201, {"id": oid}, {"Location": f"/orders/{oid}"})
        elif self.path == "/logout":
            self.server.sessions.pop(self._sid(), None)
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": "nope"})

    def do_GET(self) -> None:
        sess = self._session()
        if sess is None:
            self._send(403, {"error": "no session"})
        elif self.path == f"/orders/{sess.get('order')}":
            self._send(200, {"id": sess["order"]})
        else:
            self._send(404, {"error": "no such order"})

    def _sid(self) -> str:
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "sid":
                return v
        return ""


class _AppServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _App)
        self.sessions: dict[str, dict[str, str]] = {}


@pytest.fixture
def app_pair() -> Iterator[tuple[int, int]]:
    servers = [_AppServer(), _AppServer()]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield servers[0].server_address[1], servers[1].server_address[1]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        for t in threads:
            t.join(5)


def _roundtrip(port: int, req: Request) -> Response:
    """Send raw request bytes, read the raw response (Content-Length framed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req.raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head_len = buf.index(b"\r\n\r\n") + 4
        resp = Response(buf, head_len=head_len)
        need = int(resp.header("content-length") or 0)
        while len(buf) - head_len < need:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return Response(buf, head_len=head_len)


def _record(port: int) -> list[Exchange]:
    """Drive a real session against instance A, the way a browser would, and record it."""
    out: list[Exchange] = []

    def send(req: Request) -> Response:
        resp = _roundtrip(port, req)
        out.append(
            Exchange(id=f"x{len(out)}", request=req, response=resp, session="s1", seq=len(out))
        )
        return resp

    login = send(
        make_request(
            "POST",
            "/login",
            body=b'{"user":"ann","password":"pw"}',
            headers=[("Content-Type", "application/json")],
        )
    )
    sid = login.header("set-cookie", "")
    assert sid
    cookie = sid.split(";")[0]
    csrf = json.loads(login.body())["csrf_token"]
    auth = [("Cookie", cookie), ("X-Csrf-Token", csrf), ("Content-Type", "application/json")]
    act = send(
        make_request("POST", "/act", headers=auth, body=json.dumps({"csrf": csrf, "n": 1}).encode())
    )
    assert act.status == 200
    order = send(make_request("POST", "/orders", headers=auth, body=b"{}"))
    assert order.status == 201
    loc = order.header("location")
    assert loc
    got = send(make_request("GET", loc, headers=[("Cookie", cookie)]))
    assert got.status == 200
    bye = send(make_request("POST", "/logout", headers=auth, body=b"{}"))
    assert bye.status == 200
    return out


def _replay(port: int, exchanges: list[Exchange], hooks: list[CorrelationHook]) -> list[int]:
    from replaygate.replay import ReplayConfig, run_replay

    sink = MemorySink()
    run_replay(
        exchanges,
        ReplayConfig(targets=[f"http://127.0.0.1:{port}"], sessions=True, max_speed=True),
        sink=sink,
        hooks=hooks,
    )
    by_id = {e.id: e for e in sink.exchanges}
    statuses = []
    for ex in exchanges:
        r = by_id[ex.id]
        assert r.replayed is not None, r.replay_error
        statuses.append(r.replayed.status)
    return statuses


def test_replay_fails_without_correlation_and_passes_with_it(app_pair: tuple[int, int]) -> None:
    a, b = app_pair
    recorded = _record(a)
    assert [e.response.status for e in recorded if e.response] == [200, 200, 201, 200, 200]

    without = _replay(b, recorded, [])
    assert without[0] == 200 and all(s in (403, 404) for s in without[1:]), without

    hook = CorrelationHook()
    with_corr = _replay(b, recorded, [hook])
    assert with_corr == [200, 200, 201, 200, 200], with_corr
    stats = hook.stats()
    assert stats["set-cookie"] >= 4  # every later request carried the cookie
    assert stats["json:csrf_token"] >= 3  # header + JSON body echo
    assert stats["location"] >= 1  # GET /orders/<staging's id>
    assert stats["learned:set-cookie"] == 1


def test_disabled_hook_changes_nothing(app_pair: tuple[int, int]) -> None:
    a, b = app_pair
    recorded = _record(a)
    hook = CorrelationHook(CorrelationConfig(enabled=False))
    assert _replay(b, recorded, [hook])[1] == 403
    assert hook.stats() == {}


# -- unit level: learning and substitution on hand-built exchanges --------------------------


def _learned(
    orig_headers: list[tuple[str, str]],
    new_headers: list[tuple[str, str]],
    body_o: bytes = b"",
    body_n: bytes = b"",
    hook: CorrelationHook | None = None,
) -> CorrelationHook:
    hook = hook or CorrelationHook()
    ex = make_exchange(
        "POST",
        "/login",
        response_headers=orig_headers,
        response_body=body_o,
        replayed_status=200,
        replayed_headers=new_headers,
        replayed_body=body_n,
        session="s",
    )
    hook.after_response(ex)
    return hook


def _send(hook: CorrelationHook, req: Request, session: str = "s") -> Request:
    ex = Exchange(id="y", request=req, session=session)
    return hook.before_send(ex, req)


def test_cookie_substituted_in_cookie_header_query_and_json() -> None:
    hook = _learned(
        [("Set-Cookie", "sid=ORIGSESSION1; Path=/")], [("Set-Cookie", "sid=NEWSESSION22; Path=/")]
    )
    body = b'{"session":"ORIGSESSION1","other":"ORIGSESSION1X"}'
    req = make_request(
        "POST",
        "/a/ORIGSESSION1?s=ORIGSESSION1&t=xORIGSESSION1",
        headers=[("Cookie", "a=1; sid=ORIGSESSION1"), ("Content-Type", "application/json")],
        body=body,
    )
    out = _send(hook, req)
    text = out.raw.decode()
    assert "Cookie: a=1; sid=NEWSESSION22" in text
    assert "/a/NEWSESSION22?s=NEWSESSION22&t=xORIGSESSION1" in text  # bounded: no partial hit
    assert '"session":"NEWSESSION22"' in text and "ORIGSESSION1X" in text
    assert out.header("content-length") == str(len(out.body()))
    assert hook.stats()["set-cookie"] == 4


def test_percent_encoded_token_in_form_body() -> None:
    hook = _learned([], [], b'{"access_token":"a+b/c=d123"}', b'{"access_token":"zz+yy/xx=1"}')
    req = make_request(
        "POST",
        "/x",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=b"tok=a%2Bb%2Fc%3Dd123",
    )
    out = _send(hook, req)
    assert out.body() == b"tok=zz%2Byy%2Fxx%3D1"


def test_json_path_and_regex_rules() -> None:
    cfg = CorrelationConfig(
        rules=[
            {"kind": "json", "name": "$.data.items[*].ref"},
            {"kind": "regex", "name": r'nonce="([^"]+)"'},
            {"kind": "header", "name": "X-Request-Token"},
        ],
        default_rules=False,
    )
    hook = CorrelationHook(cfg)
    _learned(
        [("X-Request-Token", "hdr-orig-1234"), ("WWW-Authenticate", 'Digest nonce="n-orig-111"')],
        [("X-Request-Token", "hdr-new-5678"), ("WWW-Authenticate", 'Digest nonce="n-new-222"')],
        b'{"data":{"items":[{"ref":"ref-orig-aaa"}]}}',
        b'{"data":{"items":[{"ref":"ref-new-bbb"}]}}',
        hook=hook,
    )
    req = make_request("GET", "/r/ref-orig-aaa?h=hdr-orig-1234&n=n-orig-111")
    out = _send(hook, req)
    assert out.target == "/r/ref-new-bbb?h=hdr-new-5678&n=n-new-222"
    st = hook.stats()
    assert st["json:$.data.items[*].ref"] == 1 and st["header:X-Request-Token"] == 1


def test_location_ids_are_whole_segments_only() -> None:
    hook = _learned([("Location", "/orders/12")], [("Location", "/orders/99")])
    req = make_request(
        "GET",
        "/orders/12/items/123?id=12&x=120",
        headers=[("Content-Type", "application/json")],
        body=b'{"order": 12, "n": 123, "s": "12"}',
    )
    out = _send(hook, req)
    assert out.target == "/orders/99/items/123?id=99&x=120"
    assert out.body() == b'{"order": 99, "n": 123, "s": "99"}'


def test_scopes_by_session_and_target_fallback() -> None:
    hook = _learned([("Set-Cookie", "sid=ORIGSESSION1")], [("Set-Cookie", "sid=NEWSESSION22")])
    # another session on the same target still finds the (unique) value
    out = _send(
        hook, make_request("GET", "/", headers=[("Cookie", "sid=ORIGSESSION1")]), session="other"
    )
    assert out.header("cookie") == "sid=NEWSESSION22"
    # another target does not
    ex = Exchange(
        id="z",
        request=make_request("GET", "/", headers=[("Cookie", "sid=ORIGSESSION1")]),
        session="s",
        meta={"target": "http://elsewhere"},
    )
    assert hook.before_send(ex, ex.request) is ex.request


def test_short_and_equal_values_ignored_and_unchanged_request_is_same_object() -> None:
    hook = _learned(
        [("Set-Cookie", "a=1"), ("Set-Cookie", "b=samevalue")],
        [("Set-Cookie", "a=2"), ("Set-Cookie", "b=samevalue")],
    )
    req = make_request("GET", "/?a=1", headers=[("Cookie", "a=1; b=samevalue")])
    assert _send(hook, req) is req
    assert hook.stats() == {}


def test_html_hidden_csrf_input_learned() -> None:
    hook = _learned(
        [("Content-Type", "text/html")],
        [("Content-Type", "text/html")],
        b'<form><input type="hidden" name="csrfmiddlewaretoken" value="origcsrf123456"></form>',
        b'<form><input type="hidden" name="csrfmiddlewaretoken" value="newcsrf654321"></form>',
    )
    req = make_request(
        "POST",
        "/f",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=b"csrfmiddlewaretoken=origcsrf123456&x=1",
    )
    assert _send(hook, req).body() == b"csrfmiddlewaretoken=newcsrf654321&x=1"


def test_session_of() -> None:
    ex = make_exchange(session="abc")
    assert session_of(ex) == "abc"
    ex.session = None
    assert session_of(ex) == ""


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"rules\[0\]\.kind"):
        CorrelationConfig(rules=[{"kind": "nope"}])
    with pytest.raises(ConfigError, match="bad regex"):
        CorrelationConfig(rules=[{"kind": "regex", "name": "("}])
    with pytest.raises(ConfigError, match="unknown key"):
        CorrelationConfig(rules=[{"kind": "json", "path": "$.a"}])
    with pytest.raises(ConfigError, match="min_length"):
        CorrelationConfig(min_length=0)
    assert CorrelationConfig(
        rules=[CorrelationRule("cookie", "sid")], default_rules=False
    ).rules == [CorrelationRule("cookie", "sid")]


def test_masked_recording_still_replays_with_correlation(app_pair: tuple[int, int]) -> None:
    """Masking is deterministic, so the pseudonymized cookie/CSRF a masked response carries is
    the one later masked requests carry: correlation maps it to staging's real value."""
    from replaygate.stages.mask import MaskConfig, MaskStage

    a, b = app_pair
    stage = MaskStage(MaskConfig(), b"corr-key")
    raw = _record(a)
    recorded = [stage.mask_exchange(e) for e in raw]
    assert recorded[1].request.header("cookie") != raw[1].request.header("cookie")
    assert recorded[1].request.header("x-csrf-token") != raw[1].request.header("x-csrf-token")
    hook = CorrelationHook()
    assert _replay(b, recorded, [hook, stage.replay_hook()]) == [200, 200, 201, 200, 200]
    assert hook.stats()["set-cookie"] >= 4


def test_summary_line() -> None:
    hook = _learned([("Set-Cookie", "sid=ORIGSESSION1")], [("Set-Cookie", "sid=NEWSESSION22")])
    _send(hook, make_request("GET", "/", headers=[("Cookie", "sid=ORIGSESSION1")]))
    line = hook.summary()
    assert line == "correlation: 1 substitution (set-cookie=1), 1 value learned"
    assert "ORIGSESSION1" not in line and "NEWSESSION22" not in line


def test_learned_values_are_bounded() -> None:
    hook = CorrelationHook()
    for i in range(1500):
        _learned(
            [("Set-Cookie", f"sid=ORIG{i:08d}")], [("Set-Cookie", f"sid=NEW{i:08d}x")], hook=hook
        )
    glob = hook._targets[""]
    assert len(glob.tokens) == 1024  # oldest forgotten first
    out = _send(hook, make_request("GET", "/", headers=[("Cookie", "sid=ORIG00001499")]))
    assert out.header("cookie") == "sid=NEW00001499x"


def test_created_ids_learned_only_from_creations() -> None:
    hook = CorrelationHook()
    created = make_exchange(
        "POST",
        "/orders",
        status=201,
        response_body=b'{"id": 1234567}',
        response_headers=[("Content-Type", "application/json")],
        replayed_status=201,
        replayed_body=b'{"id": 7654321}',
        replayed_headers=[("Content-Type", "application/json")],
        session="s",
    )
    hook.after_response(created)
    fetched = make_exchange(
        "GET",
        "/users/55",
        response_body=b'{"id": 55}',
        response_headers=[("Content-Type", "application/json")],
        replayed_status=200,
        replayed_body=b'{"id": 56}',
        replayed_headers=[("Content-Type", "application/json")],
        session="s",
    )
    hook.after_response(fetched)
    out = _send(hook, make_request("GET", "/orders/1234567/users/55"))
    assert out.target == "/orders/7654321/users/55"
    assert hook.stats()["json:id"] == 1


def test_absurdly_deep_json_does_not_break_the_hook() -> None:
    deep = b'{"a":' * 1000 + b'"x"' + b"}" * 1000
    hook = _learned(
        [("Content-Type", "application/json")], [("Content-Type", "application/json")], deep, deep
    )
    assert hook.stats() == {}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_name_normalisation_keeps_letters_and_digits(name: str) -> None:
    from replaygate.replay.correlation import _norm

    assert _norm(name) == "".join(c for c in name.lower() if c.isalnum())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["X-Csrf-Token", "x-csrf-token", "Location", "Set-Cookie", "A"]),
            st.text("abc ;=", max_size=6),
        ),
        max_size=6,
    )
)
def test_header_map_is_header_for_every_name(headers: list[tuple[str, str]]) -> None:
    from replaygate.replay.correlation import _first_values

    raw = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    msg = Response(raw.encode())
    got = _first_values(msg)
    for name in ("x-csrf-token", "X-CSRF-TOKEN", "location", "set-cookie", "a", "b"):
        assert got.get(name.lower()) == msg.header(name)


def test_answers_that_issue_nothing_are_not_parsed_and_requests_go_untouched() -> None:
    """Learning looks at the original answer's head bytes first: no Set-Cookie, token header,
    Location, JSON or HTML form means nothing is parsed or decoded (staging's answer is not
    even looked at); with nothing learned for the target, a request is passed as is."""
    hook = CorrelationHook()
    orig = Response(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
    new = Response(b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=abcdefgh123\r\n\r\n")
    req = Request(b"GET /a?sid=abcdefgh123 HTTP/1.1\r\nHost: h\r\n\r\n")
    ex = Exchange(id="1", request=req, response=orig, replayed=new)
    assert hook.before_send(ex, req) is req
    hook.after_response(ex)
    assert orig._headers is None and new._headers is None
    req2 = Request(b"GET /b HTTP/1.1\r\nHost: h\r\nCookie: sid=abcdefgh123\r\n\r\n")
    assert hook.before_send(Exchange(id="2", request=req2), req2) is req2
    assert hook.summary() == "correlation: 0 substitutions, 0 values learned"
