from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import FormatError, InputError, ReplaygateError
from replaygate.formats import ReadOptions, open_reader, open_writer
from replaygate.formats.har import Writer, parse_har
from replaygate.model import ConnectionId, Flag
from replaygate.testing import make_exchange


def _har(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"log": {"version": "1.2", "entries": list(entries)}}).encode()


def _entry(
    method: str = "GET",
    url: str = "https://shop.test/a?b=1",
    *,
    version: str = "HTTP/1.1",
    req_headers: list[dict[str, str]] | None = None,
    post: dict[str, Any] | None = None,
    status: int = 200,
    resp_headers: list[dict[str, str]] | None = None,
    content: dict[str, Any] | None = None,
    started: str = "2023-03-30T00:00:54.250Z",
    time: float = 14.5,
) -> dict[str, Any]:
    req: dict[str, Any] = {
        "method": method,
        "url": url,
        "httpVersion": version,
        "headers": req_headers or [],
    }
    if post is not None:
        req["postData"] = post
    return {
        "startedDateTime": started,
        "time": time,
        "request": req,
        "response": {
            "status": status,
            "statusText": "",
            "httpVersion": version,
            "headers": resp_headers or [],
            "content": content if content is not None else {"size": 2, "text": "hi"},
        },
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "send": 0.5, "wait": 10, "receive": 4},
    }


def _one(data: bytes) -> Any:
    exs = list(parse_har(data))
    assert len(exs) == 1
    return exs[0]


def test_http2_entry_becomes_http11_with_host_and_no_pseudo_headers() -> None:
    ex = _one(
        _har(
            _entry(
                version="http/2.0",
                req_headers=[
                    {"name": ":authority", "value": "shop.test"},
                    {"name": ":method", "value": "GET"},
                    {"name": ":path", "value": "/a?b=1"},
                    {"name": "accept", "value": "*/*"},
                ],
            )
        )
    )
    raw = ex.request.raw
    assert raw.startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: shop.test\r\naccept: */*\r\n\r\n")
    assert b":authority" not in raw
    assert ex.meta["source_version"] == "HTTP/2"
    assert ex.meta["scheme"] == "https"
    assert ex.response.status == 200
    assert ex.response.body() == b"hi"


@pytest.mark.parametrize(
    ("version", "source"), [("h3", "HTTP/3"), ("HTTP/3", "HTTP/3"), ("", None), ("HTTP/1.1", None)]
)
def test_versions(version: str, source: str | None) -> None:
    ex = _one(_har(_entry(version=version)))
    assert ex.request.version == "HTTP/1.1"
    assert ex.meta.get("source_version") == source


def test_timings_give_ts_and_latency() -> None:
    ex = _one(_har(_entry(started="2023-03-29T17:37:42.482-07:00", time=107)))
    assert ex.ts_ns == 1680136662482000000
    assert ex.latency_ns == 107_000_000
    assert ex.response.ts_first_ns == ex.ts_ns + 500_000 + 10_000_000


def test_status_zero_is_no_response() -> None:
    entry = _entry(status=0, content={"size": 0})
    entry["response"]["_error"] = "net::ERR_INTERNET_DISCONNECTED"
    ex = _one(_har(entry))
    assert ex.response is None
    assert Flag.NO_RESPONSE in ex.flags
    assert ex.meta["error"] == "net::ERR_INTERNET_DISCONNECTED"
    assert not ex.complete


def test_base64_body_and_content_length_fixed() -> None:
    png = bytes(range(256))
    ex = _one(
        _har(
            _entry(
                resp_headers=[{"name": "Content-Length", "value": "999"}],
                content={"size": 256, "text": base64.b64encode(png).decode(), "encoding": "base64"},
            )
        )
    )
    assert ex.response.body() == png
    assert ex.response.header("content-length") == "256"


def test_decoded_text_is_reencoded_with_content_encoding() -> None:
    ex = _one(
        _har(
            _entry(
                resp_headers=[
                    {"name": "content-encoding", "value": "gzip"},
                    {"name": "transfer-encoding", "value": "chunked"},
                ],
                content={"size": 5, "text": "hello"},
            )
        )
    )
    r = ex.response
    assert r.header("transfer-encoding") is None
    assert gzip.decompress(r.body()) == b"hello"
    assert r.decoded_body() == b"hello"
    assert r.header("content-length") == str(len(r.body()))


def test_unknown_encoding_is_dropped_and_noted() -> None:
    ex = _one(
        _har(
            _entry(
                resp_headers=[{"name": "content-encoding", "value": "x-weird"}],
                content={"size": 5, "text": "hello"},
            )
        )
    )
    assert ex.response.header("content-encoding") is None
    assert ex.response.body() == b"hello"
    assert ex.meta["har.response_encoding_dropped"] == "x-weird"


def test_post_data_text_and_params() -> None:
    ex = _one(_har(_entry("POST", post={"mimeType": "application/json", "text": '{"a":1}'})))
    assert ex.request.body() == b'{"a":1}'
    assert ex.request.header("content-length") == "7"
    ex = _one(
        _har(
            _entry(
                "POST",
                post={
                    "mimeType": "application/x-www-form-urlencoded",
                    "params": [{"name": "a b", "value": "1"}],
                },
            )
        )
    )
    assert ex.request.body() == b"a+b=1"
    assert ex.meta["har.request_body"] == "rebuilt_from_params"


def test_empty_post_gets_content_length_zero() -> None:
    ex = _one(_har(_entry("POST", post={"mimeType": "", "text": ""})))
    assert ex.request.header("content-length") == "0"


def test_304_and_head_carry_no_body_but_keep_length() -> None:
    ex = _one(
        _har(
            _entry(
                status=304,
                resp_headers=[{"name": "content-length", "value": "23866"}],
                content={"size": 23866, "text": "cached page"},
            )
        )
    )
    assert ex.response.body() == b""
    assert ex.response.header("content-length") == "23866"
    ex = _one(
        _har(
            _entry(
                "HEAD",
                resp_headers=[{"name": "content-length", "value": "10"}],
                content={"size": 0, "text": ""},
            )
        )
    )
    assert ex.response.body_raw.tobytes() == b""
    assert ex.response.header("content-length") == "10"


def test_omitted_body_is_flagged_not_empty() -> None:
    c = ReadOptions()
    exs = list(parse_har(_har(_entry(content={"mimeType": "image/png"})), c))
    assert Flag.RESPONSE_TRUNCATED in exs[0].flags
    assert exs[0].meta["har.body"] == "omitted"
    assert any("not recorded" in n for n in c.counters.notes)


def test_cookies_list_becomes_cookie_header() -> None:
    e = _entry()
    e["request"]["cookies"] = [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    assert _one(_har(e)).request.header("cookie") == "a=1; b=2"


def test_slack_style_list_headers_and_non_ascii_url() -> None:
    e = _entry(url="https://h.test/caf\u00e9 x?q=\u00fc")
    e["request"]["headers"] = [["X-A", "1"]]
    ex = _one(_har(e))
    assert ex.request.header("x-a") == "1"
    assert ex.request.target == "/caf%C3%A9%20x?q=%C3%BC"


def test_bad_entries_are_counted_not_fatal() -> None:
    c = ReadOptions()
    data = _har(_entry(), {"request": {"method": "GET"}}, "junk", _entry(started="not a date"))
    exs = list(parse_har(data, c))
    assert len(exs) == 1
    assert c.counters.dropped["har_bad_entry"] == 3
    assert sum(1 for n in c.counters.notes if "entry" in n) == 3


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "invalid JSON at line 1, column 1"),
        (b'{"log": ', "invalid JSON"),
        (b"[1, 2]", 'no top-level "log"'),
        (b'{"log": {"entries": 3}}', "not a list"),
        (b"\xef\xbb\xbf[", "invalid JSON"),
    ],
)
def test_not_har_is_format_error(tmp_path: Path, data: bytes, match: str) -> None:
    p = tmp_path / "x.har"
    p.write_bytes(data)
    with pytest.raises(FormatError, match=match) as e:
        list(open_reader(p))
    assert str(p) in str(e.value)


def test_bom_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "bom.har"
    p.write_bytes(b"\xef\xbb\xbf" + _har(_entry()))
    assert len(list(open_reader(p))) == 1
    with pytest.raises(InputError, match="no such file"):
        open_reader(tmp_path / "nope.har")


def test_writer_streams_valid_har_and_round_trips(tmp_path: Path) -> None:
    conn = ConnectionId("10.0.0.1", 4444, "10.0.0.2", 443)
    exs = [
        make_exchange("GET", "/t?x=1", response_body=b"text body", conn=conn, session="s1"),
        make_exchange(
            "POST",
            "/bin",
            request_body=b"\xff\x00binary",
            response_body=bytes(range(256)),
            response_headers=[("Content-Type", "application/octet-stream")],
        ),
        make_exchange("GET", "/none", status=None),
    ]
    exs[0].meta["scheme"] = "https"
    exs[0].flags.add(Flag.MIDSTREAM)
    p = tmp_path / "o.har"
    w = open_writer(p)
    assert isinstance(w, Writer)
    try:
        for ex in exs:
            w.write(ex)
        w.flush()
        assert p.read_bytes().count(b"\n") >= 2  # entries are written as they come
    finally:
        w.close()
    doc = json.loads(p.read_text())
    log = doc["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "replaygate"
    e0, e1, e2 = log["entries"]
    assert e0["request"]["url"] == "https://example.test/t?x=1"
    assert e0["request"]["queryString"] == [{"name": "x", "value": "1"}]
    assert e0["response"]["content"]["text"] == "text body"
    assert e1["response"]["content"]["encoding"] == "base64"
    assert e1["request"]["postData"]["encoding"] == "base64"
    assert e2["response"]["status"] == 0
    back = list(open_reader(p))
    assert [b.id for b in back] == [e.id for e in exs]
    for a, b in zip(exs, back, strict=True):
        assert b.request.raw == a.request.raw
        assert b.flags == a.flags
        assert b.ts_ns == a.ts_ns
        assert (b.response.raw if b.response else None) == (a.response.raw if a.response else None)
    assert back[0].conn == conn and back[0].session == "s1"


def test_empty_writer_is_valid_json(tmp_path: Path) -> None:
    p = tmp_path / "e.har"
    open_writer(p).close()
    assert json.loads(p.read_text())["log"]["entries"] == []


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_package_errors(data: bytes) -> None:
    try:
        list(parse_har(data))
    except ReplaygateError:
        pass


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(
                ["request", "response", "time", "startedDateTime", "timings", "_replaygate"]
            ),
            _json,
        ),
        max_size=3,
    )
)
def test_arbitrary_entries_never_crash(entries: list[dict[str, Any]]) -> None:
    data = json.dumps({"log": {"entries": entries}}).encode()
    for ex in parse_har(data):
        ex.summary()


def test_websocket_handshake_is_flagged_upgrade() -> None:
    ex = _one(_har(_entry(status=101, content={"size": 0, "text": ""})))
    assert Flag.UPGRADE in ex.flags and ex.response.status == 101
    assert ex.complete  # the handshake itself is complete


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PATCH", "HEAD"]),
    target=st.text(alphabet="/abc?=&%.~", min_size=0, max_size=20).map(lambda t: "/" + t),
    req_body=st.binary(max_size=40),
    resp_body=st.one_of(st.binary(max_size=40), st.text(max_size=20).map(str.encode)),
    status=st.one_of(st.none(), st.sampled_from([200, 201, 404, 500])),
)
def test_own_har_round_trips_property(
    tmp_path_factory: pytest.TempPathFactory,
    method: str,
    target: str,
    req_body: bytes,
    resp_body: bytes,
    status: int | None,
) -> None:
    ex = make_exchange(
        method, target, request_body=req_body, response_body=resp_body, status=status
    )
    p = tmp_path_factory.mktemp("har") / "p.har"
    w = Writer(str(p))
    w.write(ex)
    w.close()
    (back,) = list(open_reader(p))
    assert back.request.raw == ex.request.raw
    if method == "HEAD" or ex.response is None:
        assert back.summary()["status"] == ex.summary()["status"]
    else:
        assert back.response is not None and back.response.raw == ex.response.raw
    assert back.summary() == ex.summary() or method == "HEAD"


def test_request_body_left_out_is_flagged() -> None:
    e = _entry("POST", req_headers=[{"name": "Content-Length", "value": "5000"}])
    ex = _one(_har(e))
    assert Flag.REQUEST_TRUNCATED in ex.flags and ex.meta["har.request_body"] == "omitted"
    assert ex.request.header("content-length") == "0"  # framing stays honest
    assert not ex.complete


def test_our_har_loads_in_mitmproxys_har_importer(tmp_path: Path) -> None:
    har_io = pytest.importorskip("mitmproxy.io.har")
    exs = [
        make_exchange("GET", "/a?x=1", response_body=b"hello"),
        make_exchange("POST", "/b", request_body=b'{"k": 1}', status=201),
        make_exchange("GET", "/bin", response_body=bytes(range(256))),
    ]
    p = tmp_path / "m.har"
    w = Writer(str(p))
    for ex in exs:
        w.write(ex)
    w.close()
    entries = json.loads(p.read_text())["log"]["entries"]
    for ex, entry in zip(exs, entries, strict=True):
        flow = har_io.request_to_flow(entry)
        assert flow.request.method == ex.request.method
        assert flow.request.url == f"http://example.test{ex.request.target}"
        assert flow.response.status_code == ex.response.status
        assert flow.response.content == ex.response.decoded_body()


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2023-06-10T12:00:00.123456789+02:00", 1686391200123456789),
        ("2023-06-10T12:00:00Z", 1686398400000000000),
        ("2023-06-10 12:00:00.5Z", 1686398400500000000),
        ("2023-06-10T12:00:00.123-0700", 1686423600123000000),
        ("2023-06-10T12:00:00", 1686398400000000000),
    ],
)
def test_started_date_time_formats(text: str, ns: int) -> None:
    assert _one(_har(_entry(started=text))).ts_ns == ns


def test_multipart_params_rebuilt_with_boundary() -> None:
    post = {
        "mimeType": "multipart/form-data",
        "params": [
            {"name": "foo", "value": "bar"},
            {"name": "f", "fileName": "a.txt", "contentType": "text/plain", "value": "hi"},
        ],
    }
    e = _entry(
        "POST", post=post, req_headers=[{"name": "Content-Type", "value": "multipart/form-data"}]
    )
    ex = _one(_har(e))
    ctype = ex.request.header("content-type")
    assert ctype.startswith("multipart/form-data; boundary=")
    boundary = ctype.split("boundary=")[1]
    body = ex.request.body()
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(
        f"--{boundary}--\r\n".encode()
    )
    assert b'name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhi\r\n' in body
    assert ex.request.header("content-length") == str(len(body))
    import email.parser

    msg = email.parser.BytesParser().parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
    assert [part.get_payload() for part in msg.get_payload()] == ["bar", "hi"]


def test_entry_without_started_date_time() -> None:
    e = _entry()
    del e["startedDateTime"]
    assert _one(_har(e)).ts_ns == 0


def test_lone_surrogate_escapes_do_not_break_writers() -> None:
    import orjson

    from replaygate.formats.gor import write_bytes
    from replaygate.formats.har import exchange_to_entry
    from replaygate.formats.jsonl import exchange_to_dict

    e = _entry(url="http://h\ud800/\ud800x", req_headers=[{"name": "a", "value": "\udc80"}])
    e["_error"] = "\ud800"
    e["_replaygate"] = {"session": "\ud800", "meta": {"k": "\udfff"}}
    data = json.dumps({"log": {"entries": [e]}}).encode()  # json.dumps escapes surrogates
    ex = _one(data)
    write_bytes([ex])
    orjson.dumps(exchange_to_dict(ex))
    orjson.dumps(exchange_to_entry(ex))


# --- cut documents, limits, hostile numbers (#12) -------------------------------------------


def test_a_har_cut_by_sigkill_mid_write_reads_back_every_complete_entry(tmp_path: Path) -> None:
    """A real recorder process killed with SIGKILL while it writes: its HAR reads back."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "live.har"
    code = (
        "from replaygate.formats import open_writer\n"
        "from replaygate.testing import make_exchange\n"
        f"w = open_writer({str(out)!r})\n"
        "i = 0\n"
        "while True:\n"
        "    w.write(make_exchange('GET', f'/{i}', response_body=b'x' * 3000))\n"
        "    i += 1\n"
        "    if i % 20 == 0:\n"
        "        w.flush()\n"
        "        print(i, flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert proc.stdout is not None
        flushed = 0
        while flushed < 100:
            line = proc.stdout.readline()
            assert line, "the writer process ended by itself"
            flushed = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    opts = ReadOptions()
    got = list(open_reader(out, opts))
    assert len(got) >= flushed
    assert [e.request.target for e in got] == [f"/{i}" for i in range(len(got))]
    assert opts.counters.dropped["truncated_record"] == 1
    ((path, offset, msg),) = opts.counters.cuts
    assert path == str(out) and offset is not None and f"after {len(got)} complete entries" in msg


@pytest.mark.parametrize("keep", [0.4, 0.9, 0.95, -3, -2])
def test_a_cut_har_keeps_complete_entries(tmp_path: Path, keep: float) -> None:
    p = tmp_path / "o.har"
    w = open_writer(p)
    for i in range(30):
        w.write(make_exchange("GET", f"/{i}", response_body=b'{"a": "q\\"x"}' * 10))
    w.close()
    data = p.read_bytes()
    n = int(len(data) * keep) if keep > 0 else len(data) + int(keep)
    p.write_bytes(data[:n])
    opts = ReadOptions()
    got = [e.request.target for e in open_reader(p, opts)]
    assert got == [f"/{i}" for i in range(len(got))] and (keep < 0) == (len(got) == 30)
    assert len(opts.counters.cuts) == 1


def test_corruption_in_the_middle_is_still_an_error(tmp_path: Path) -> None:
    p = tmp_path / "o.har"
    w = open_writer(p)
    for i in range(5):
        w.write(make_exchange("GET", f"/{i}"))
    w.close()
    data = p.read_bytes()
    p.write_bytes(data[:300] + b"\\q" + data[300:])
    with pytest.raises(FormatError, match="invalid JSON"):
        list(open_reader(p))


def test_a_4301_digit_number_is_not_a_crash() -> None:
    big = "9" * 4301
    for field in ("status", "bodySize", "headersSize"):
        entry = _entry()
        entry["response"][field] = "__BIG__"
        data = _har(entry).replace(b'"__BIG__"', big.encode())
        list(parse_har(data, ReadOptions(), path="big.har"))
    entry = _entry(req_headers=[{"name": "Content-Length", "value": big}])
    list(parse_har(_har(entry), ReadOptions(), path="big.har"))


def test_zeros_named_har_fail_at_once_and_size_is_bounded(tmp_path: Path) -> None:
    p = tmp_path / "zero.har"
    p.write_bytes(b"\0" * (1 << 20))
    with pytest.raises(FormatError, match="not a HAR file: does not start with JSON"):
        list(open_reader(p))
    p.write_bytes(_har(_entry()) + b" " * 5000)
    with pytest.raises(FormatError, match=r"HAR document is longer than 4KiB"):
        list(open_reader(p, ReadOptions(max_file_size=4096)))
