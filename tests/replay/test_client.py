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
from replaygate.replay import Histogram, ReplayConfig, Target, parse_ramp, run_replay
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
    assert Target.parse("127.0.0.1:8080").host_header == "127.0.0.1:8080"
    assert Target.parse("http://[::1]:81").host_header == "[::1]:81"
    for bad in ("ftp://x", "http://", "http://x:notaport"):
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
