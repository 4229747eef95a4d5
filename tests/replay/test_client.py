"""Request preparation (the only changes made to recorded bytes), config, histogram, and
response framing against httpbin (a real WSGI app on loopback): gzip, chunked, redirects."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import ConfigError
from replaygate.model import Request
from replaygate.replay import (
    Histogram,
    ReplayConfig,
    ReplayStats,
    Target,
    parse_ramp,
    run_replay,
)
from replaygate.replay.client import make_ssl_context, prepare_request
from replaygate.testing import MemorySink, make_exchange


def prep(raw: bytes, host: bytes | None = b"stage:8080", prefix: bytes = b"") -> bytes:
    return prepare_request(raw, Request(raw).head_len, host, prefix)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (
            b"GET / HTTP/1.1\r\nHost: prod\r\nA: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: stage:8080\r\nA: 1\r\n\r\n",
        ),
        (b"GET / HTTP/1.1\r\nhOsT:prod\r\n\r\n", b"GET / HTTP/1.1\r\nhOsT: stage:8080\r\n\r\n"),
        (b"GET / HTTP/1.1\nHost: prod\n\n", b"GET / HTTP/1.1\nHost: stage:8080\n\n"),
        (b"GET / HTTP/1.1\r\nA: 1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: stage:8080\r\nA: 1\r\n\r\n"),
        (b"GET / HTTP/1.0\r\nA: 1\r\n\r\n", b"GET / HTTP/1.0\r\nA: 1\r\n\r\n"),
        (
            b"POST /x HTTP/1.1\r\nHost: stage:8080\r\nContent-Length: 2\r\n\r\nabcd",
            b"POST /x HTTP/1.1\r\nHost: stage:8080\r\nContent-Length: 4\r\n\r\nabcd",
        ),
        (
            b"POST /x HTTP/1.1\r\nHost: stage:8080\r\n\r\nabcd",
            b"POST /x HTTP/1.1\r\nHost: stage:8080\r\nContent-Length: 4\r\n\r\nabcd",
        ),
        (
            b"POST /x HTTP/1.1\r\nHost: stage:8080\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
            b"POST /x HTTP/1.1\r\nHost: stage:8080\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
        ),
    ],
)
def test_prepare_request_table(raw: bytes, want: bytes) -> None:
    assert prep(raw) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (b"GET /a HTTP/2\r\nhost: prod\r\n\r\n", b"GET /a HTTP/1.1\r\nhost: stage:8080\r\n\r\n"),
        (
            b"POST /g HTTP/2\r\nhost: prod\r\nte: trailers\r\n\r\nabc",
            b"POST /g HTTP/1.1\r\nhost: stage:8080\r\nte: trailers\r\nContent-Length: 3\r\n\r\nabc",
        ),
        (
            b"POST /t HTTP/2\r\nhost: p\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n0\r\nx: 1\r\n\r\n",
            b"POST /t HTTP/1.1\r\nhost: stage:8080\r\ntransfer-encoding: chunked\r\n\r\n"
            b"1\r\na\r\n0\r\nx: 1\r\n\r\n",
        ),
        (
            b"GET /HTTP/2 HTTP/1.1\r\nHost: s\r\n\r\n",
            b"GET /HTTP/2 HTTP/1.1\r\nHost: stage:8080\r\n\r\n",
        ),
    ],
)
def test_http2_recordings_are_sent_as_http11(raw: bytes, want: bytes) -> None:
    # #17: HTTP/2 recordings replay to an HTTP/1.1 target
    assert prep(raw) == want


def test_unchanged_request_is_the_same_object() -> None:
    raw = b"GET /a HTTP/1.1\r\nHost: stage:8080\r\nX: y\r\n\r\n"
    assert prep(raw) is raw
    assert prep(raw, host=None) is raw


def test_absolute_form_becomes_origin_form_unless_keep_host() -> None:
    raw = b"GET http://prod:81/a?b=1 HTTP/1.1\r\nHost: prod:81\r\n\r\n"
    assert prep(raw) == b"GET /a?b=1 HTTP/1.1\r\nHost: stage:8080\r\n\r\n"
    assert prep(raw, None) is raw
    assert prep(b"GET https://prod?q HTTP/1.1\r\nHost: p\r\n\r\n", prefix=b"/v1") == (
        b"GET /v1/?q HTTP/1.1\r\nHost: stage:8080\r\n\r\n"
    )


def test_keep_host_and_prefix() -> None:
    raw = b"GET /a?b=1 HTTP/1.1\r\nHost: prod\r\n\r\n"
    assert prep(raw, None, b"/api") == b"GET /api/a?b=1 HTTP/1.1\r\nHost: prod\r\n\r\n"
    absolute = b"GET http://prod/a HTTP/1.1\r\nHost: prod\r\n\r\n"
    assert prep(absolute, None, b"/api") == absolute


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([None, b"h:1"]))
def test_prepare_request_never_raises(raw: bytes, host: bytes | None) -> None:
    out = prepare_request(raw, Request(raw).head_len, host)
    assert isinstance(out, bytes)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z-]{1,12}", fullmatch=True),
            st.from_regex(r"[ -~]{0,20}", fullmatch=True),
        ),
        max_size=6,
    )
)
def test_headers_other_than_host_kept_byte_for_byte(headers: list[tuple[str, str]]) -> None:
    headers = [
        (k, v.strip())
        for k, v in headers
        if k.lower() not in ("host", "content-length", "transfer-encoding")
    ]
    head = (
        "GET / HTTP/1.1\r\nHost: prod\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    )
    out = prep(head.encode())
    assert out == head.replace("Host: prod", "Host: stage:8080").encode()


def test_target_parse() -> None:
    t = Target.parse("https://Stage.example/api/")
    assert (t.scheme, t.host, t.port, t.prefix, t.host_header) == (
        "https",
        "stage.example",
        443,
        "/api",
        "stage.example",
    )
    assert Target.parse("http://127.0.0.1:8080").host_header == "127.0.0.1:8080"
    assert Target.parse("http://[::1]:81").host_header == "[::1]:81"
    # #12: no scheme is an error, as --help says (was: taken as http)
    for bad in ("ftp://x", "http://", "http://x:notaport", "127.0.0.1:8080", "http//h:80"):
        with pytest.raises(ConfigError, match="--target"):
            Target.parse(bad)


@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({"targets": []}, "--target"),
        ({"rate": 5.0, "max_speed": True}, "--rate and --max"),
        ({"speed": 0.0}, "--speed"),
        ({"rate": -1.0}, "--rate"),
        ({"concurrency": 0}, "--concurrency"),
        ({"session_key": "query:x"}, "--session-key"),
        ({"split": True}, "--split"),
        ({"workers": 100}, "--workers"),
        ({"limit": -1}, "--limit"),
        ({"response_timeout": 0.0}, "--timeout"),
    ],
)
def test_config_validation_names_the_flag(kw: dict, flag: str) -> None:  # type: ignore[type-arg]
    kw.setdefault("targets", ["http://x"])
    with pytest.raises(ConfigError, match=flag):
        ReplayConfig(**kw).validate()


def test_parse_ramp() -> None:
    assert parse_ramp("100:10s, 500:2m") == [(100.0, 10.0), (500.0, 120.0)]
    for bad in ("", "100", "x:1s", "10:zz", "-1:1s"):
        with pytest.raises(ConfigError, match="--ramp"):
            parse_ramp(bad)


def test_ca_file_errors_are_config_errors(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="--ca-file"):
        make_ssl_context(ca_file="/nonexistent/ca.pem")


def test_histogram_percentiles_and_merge() -> None:
    h = Histogram()
    for v in range(1, 10001):
        h.record(v)
    assert h.percentile(50) == pytest.approx(5000, rel=0.01)
    assert h.percentile(99) == pytest.approx(9900, rel=0.01)
    assert h.max == 10000 and h.percentile(100) <= 10000
    g = Histogram.from_dict(h.to_dict())
    g.merge(h)
    assert g.count == 20000 and g.percentile(50) == pytest.approx(5000, rel=0.01)
    assert Histogram().percentile(50) == 0


@pytest.fixture(scope="module")
def httpbin_url() -> Iterator[str]:
    httpbin = pytest.importorskip("httpbin")
    serving = pytest.importorskip("werkzeug.serving")
    srv = serving.make_server("127.0.0.1", 0, httpbin.app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_real_app_responses(httpbin_url: str) -> None:
    paths = ["/gzip", "/stream/5", "/status/304", "/bytes/70000", "/redirect/3",
             "/absolute-redirect/2", "/get"]  # fmt: skip
    exs = [make_exchange("GET", p, id=f"{i:040x}") for i, p in enumerate(paths)]
    exs.append(make_exchange("HEAD", "/get", id="f" * 40))
    sink = MemorySink()
    st = run_replay(
        exs, ReplayConfig(targets=[httpbin_url], max_speed=True, redirects=5), sink=sink
    )
    assert not st.errors and st.answered == len(exs)
    by = {(e.request.method, e.request.target): e.replayed for e in sink.exchanges}
    assert all(r is not None for r in by.values())
    gz = by[("GET", "/gzip")]
    assert gz is not None and b'"gzipped": true' in gz.decoded_body()
    stream = by[("GET", "/stream/5")]
    assert stream is not None and stream.body().count(b"\n") == 5
    assert by[("GET", "/status/304")].status == 304  # type: ignore[union-attr]
    assert len(by[("GET", "/bytes/70000")].body()) == 70000  # type: ignore[union-attr]
    for p in ("/redirect/3", "/absolute-redirect/2"):
        assert by[("GET", p)].status == 200  # type: ignore[union-attr]
    assert by[("HEAD", "/get")].body() == b""  # type: ignore[union-attr]


class EndlessServer:
    """A target on 127.0.0.1 that answers every request with ``head`` and then ``unit``
    repeated until the client goes away (or ``stop``), pausing ``pause`` seconds between
    units. Bounded: it stops writing when the client closes and after ``deadline`` seconds."""

    def __init__(self, head: bytes, unit: bytes, pause: float = 0.0) -> None:
        import socket

        self.head, self.unit, self.pause = head, unit, pause
        self.sent = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, c: object) -> None:
        import socket
        import time

        assert isinstance(c, socket.socket)
        deadline = time.monotonic() + 60
        with c:
            try:
                c.recv(65536)
                c.sendall(self.head)
                if not self.unit:
                    self._stop.wait(deadline - time.monotonic())
                while not self._stop.is_set() and time.monotonic() < deadline:
                    c.sendall(self.unit)
                    self.sent += len(self.unit)
                    if self.pause:
                        self._stop.wait(self.pause)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        for t in self._threads:
            t.join(10)


def _replay_one(url: str, **kw: object) -> tuple[ReplayStats, MemorySink]:
    sink = MemorySink()
    cfg = ReplayConfig(targets=[url], max_speed=True, **kw)  # type: ignore[arg-type]
    st = run_replay([make_exchange("GET", "/")], cfg, sink=sink)
    return st, sink


def test_endless_interim_responses_are_an_error_not_a_hang() -> None:
    srv = EndlessServer(b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 50)
    try:
        st, sink = _replay_one(srv.url, response_timeout=600.0)
    finally:
        srv.close()
    assert sink.exchanges[0].replay_error == "headers_too_large"
    assert st.errors == {"headers_too_large": 1}


def test_interim_responses_trickling_forever_hit_the_timeout() -> None:
    srv = EndlessServer(b"", b"HTTP/1.1 100 Continue\r\n\r\n", pause=0.01)
    try:
        _st, sink = _replay_one(srv.url, response_timeout=0.3)
    finally:
        srv.close()
    assert sink.exchanges[0].replay_error in ("timeout", "headers_too_large")


def test_a_head_trickling_forever_hits_the_timeout() -> None:
    srv = EndlessServer(b"HTTP/1.1 200 OK\r\n", b"X", pause=0.01)
    try:
        _st, sink = _replay_one(srv.url, response_timeout=0.3)
    finally:
        srv.close()
    assert sink.exchanges[0].replay_error == "timeout"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_endless_headers_are_capped(method: str) -> None:
    srv = EndlessServer(b"HTTP/1.1 200 OK\r\n", b"X-A: " + b"a" * 1000 + b"\r\n")
    sink = MemorySink()
    try:
        cfg = ReplayConfig(
            targets=[srv.url], max_speed=True, response_timeout=600.0, max_header_size=64 << 10
        )
        st = run_replay([make_exchange(method, "/")], cfg, sink=sink)
    finally:
        srv.close()
    assert sink.exchanges[0].replay_error == "headers_too_large"
    assert st.errors == {"headers_too_large": 1}


def test_endless_body_is_truncated_flagged_and_counted() -> None:
    from replaygate.model import Flag

    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n"
    srv = EndlessServer(head, b"a" * 65536)
    try:
        st, sink = _replay_one(srv.url, response_timeout=600.0, max_response_size=1 << 20)
    finally:
        srv.close()
    ex = sink.exchanges[0]
    assert ex.replay_error is None and ex.replayed is not None
    assert len(ex.replayed.raw) == 1 << 20
    assert ex.replayed.status == 200 and ex.replayed.raw.startswith(head)
    assert Flag.REPLAY_TRUNCATED in ex.flags
    assert st.truncated == 1 and st.as_dict()["truncated"] == 1


def test_a_response_within_the_limits_is_untouched() -> None:
    body = b"b" * 5000
    srv = EndlessServer(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + body, b"")
    try:
        st, sink = _replay_one(srv.url, max_response_size=5100, max_header_size=1024)
    finally:
        srv.close()
    ex = sink.exchanges[0]
    assert ex.replayed is not None and ex.replayed.body() == body and not ex.flags
    assert st.truncated == 0


@pytest.mark.parametrize("field", ["max_response_size", "max_header_size"])
def test_size_limits_are_validated(field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        ReplayConfig(targets=["http://127.0.0.1:1"], **{field: 10}).validate()  # type: ignore[arg-type]


_METHODS = st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "DELETE", "PATCH", "G", ""])
_TARGETS = st.sampled_from(
    ["/", "/a?b=1", "*", "http://prod/x", "HTTPS://prod:1?q", "http://h", "x", "", "/ /"]
)
_VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/2.0", "http/1.1", ""])
_HEADERS = st.lists(
    st.sampled_from(
        [
            "Host: prod",
            "host:prod",
            "HOST:  stage:8080",
            "Host:\tstage:8080",
            "Host: stage:8080",
            "Host: ",
            "Content-Length: 4",
            "content-length: 0",
            "Transfer-Encoding: chunked",
            "Accept: */*",
            "X-Host: a",
        ]
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(
    _METHODS,
    _TARGETS,
    _VERSIONS,
    _HEADERS,
    st.sampled_from(["\r\n", "\n"]),
    st.sampled_from([b"", b"abcd", b"\r\n\r\nx"]),
    st.sampled_from([None, b"stage:8080", b"h:1"]),
    st.sampled_from([b"", b"/api"]),
)
def test_prepare_request_as_before_its_searches_were_cut(
    method: str,
    target: str,
    version: str,
    headers: list[str],
    eol: str,
    body: bytes,
    host: bytes | None,
    prefix: bytes,
) -> None:
    from ._prepare_reference import prepare_request_before

    line = " ".join(x for x in (method, target, version) if x)
    raw = (eol.join([line, *headers]) + eol + eol).encode() + body
    head_len = Request(raw).head_len
    assert prepare_request(raw, head_len, host, prefix) == prepare_request_before(
        raw, head_len, host, prefix
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([None, b"h:1"]), st.sampled_from([b"", b"/p"]))
def test_prepare_request_as_before_on_any_bytes(
    raw: bytes, host: bytes | None, prefix: bytes
) -> None:
    from ._prepare_reference import prepare_request_before

    head_len = Request(raw).head_len
    assert prepare_request(raw, head_len, host, prefix) == prepare_request_before(
        raw, head_len, host, prefix
    )
