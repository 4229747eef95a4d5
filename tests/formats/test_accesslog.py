from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import ConfigError
from replaygate.formats import ReadOptions, open_reader
from replaygate.formats.accesslog import LineError, detect, parse_line
from replaygate.model import Flag

NGINX = b'77.179.66.156 - - [25/Oct/2016:14:49:33 +0200] "GET /a?b=1 HTTP/1.1" 200 612 "http://r.test/" "Mozilla/5.0"'
VHOST = b'lessons.example.com 192.168.0.1 - - [09/Jun/2020:12:10:39 -0700] "GET /A%20B.mp4 HTTP/1.1" 206 7648063 "-" "Silk"'
ALB = (
    b"https 2018-07-02T22:23:00.186641Z app/my-lb/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 "
    b'0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/p?a=1 HTTP/1.1" '
    b'"curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:tg "Root=1-58" "www.example.com" '
    b'"arn:aws:acm" 1 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"'
)
ELB = (
    b"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 "
    b'0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -'
)


def test_nginx_combined() -> None:
    ll = parse_line(NGINX)
    assert (ll.method, ll.target, ll.version, ll.status, ll.bytes) == (
        "GET",
        "/a?b=1",
        "HTTP/1.1",
        200,
        612,
    )
    assert ll.ts_ns == 1477399773_000_000_000  # 14:49:33 +0200 = 12:49:33 UTC
    assert ll.referer == "http://r.test/" and ll.user_agent == "Mozilla/5.0"
    assert ll.client == "77.179.66.156" and ll.host is None


def test_vhost_prefix_gives_host() -> None:
    ll = parse_line(VHOST)
    assert ll.host == "lessons.example.com"
    assert ll.client == "192.168.0.1"
    assert ll.status == 206 and ll.bytes == 7648063


@pytest.mark.parametrize(
    "line",
    [
        b'10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] "GET /o HTTP/1.1" 200 5 "-" "F"',
        b'"10.5.102.222, 199.96.1.1" 10.2.1.185 - - [22/Jan/2016:13:18:29 +0000] "GET /o HTTP/1.1" 200 5 "-" "F"',
        b'2a03:0:10ff::8000, 10.225.192.17 10.2.2.121 - - [30/Dec/2016:06:47:09 +0000] "GET /o HTTP/1.1" 200 5 "-" "F"',
        b'172.17.0.1 - - [29/May/2017:19:02:48 +0000] "GET /o HTTP/1.1" 200 5 "-" "F" "-"',
        b'1.2.3.4 - frank [10/Oct/2000:13:55:36 -0700] "GET /o HTTP/1.0" 200 2326',  # common log format
    ],
)
def test_client_lists_and_variants(line: bytes) -> None:
    ll = parse_line(line)
    assert ll.target == "/o" and ll.host is None


def test_alb_and_elb() -> None:
    a = parse_line(ALB)
    assert (a.format, a.host, a.target, a.scheme, a.status) == (
        "alb",
        "www.example.com",
        "/p?a=1",
        "https",
        200,
    )
    assert a.user_agent == "curl/7.46.0" and a.client == "192.168.131.39"
    assert a.ts_ns == 1530570168364000000  # request_creation_time, not the response time
    e = parse_line(ELB)
    assert (e.format, e.host, e.target, e.scheme) == ("elb", "www.example.com", "/", "http")
    assert e.ts_ns == 1431560383945958000
    assert detect(ALB) == "alb" and detect(ELB) == "elb" and detect(NGINX) == "nginx"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-"', "empty_request"),
        (
            b'1.2.3.4 - - [12/Apr/2018:09:48:40 +0200] "\\x16\\x03\\x01" 400 0 "-" "-"',
            "bad_request_line",
        ),
        (b"garbage line", "unparsable_line"),
        (b'1.2.3.4 - - [12/Foo/2018:09:48:40 +0200] "GET / HTTP/1.1" 200 1', "unparsable_line"),
        (
            b'2015-05-13T23:39:43.945958Z lb 1.2.3.4:1 10.0.0.1:80 0 0 0 - - 82 305 "- - - " "-" - -',
            "empty_request",
        ),
    ],
)
def test_bad_lines_have_reasons(line: bytes, reason: str) -> None:
    with pytest.raises(LineError) as e:
        parse_line(line)
    assert e.value.reason == reason


def test_reader_counts_and_notes(tmp_path: Path) -> None:
    lines = (
        [NGINX, b"", b"junk"]
        + [b'1.2.3.4 - - [25/Oct/2016:14:49:33 +0200] "POST /p HTTP/1.1" 201 1 "-" "-"'] * 7
        + [VHOST]
    )
    p = tmp_path / "a.log"
    p.write_bytes(b"\n".join(lines) + b"\n")
    opts = ReadOptions(extra={"host": "default.test"})
    exs = list(open_reader(p, opts))
    assert [e.request.host for e in exs] == ["default.test", "lessons.example.com"]
    assert exs[0].meta["status"] == "200" and exs[0].meta["bytes"] == "612"
    assert Flag.NO_RESPONSE in exs[0].flags and exs[0].response is None
    assert exs[0].request.raw.startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: default.test\r\n")
    assert exs[0].request.header("user-agent") == "Mozilla/5.0"
    d = opts.counters.dropped
    assert d["accesslog_method_not_replayable"] == 7 and d["accesslog_unparsable_line"] == 1
    notes = [n for n in opts.counters.notes if "POST" in n]
    assert len(notes) == 5  # only the first few line numbers
    assert any(f"{p}:4:" in n for n in notes)


def test_forced_format_and_gzip(tmp_path: Path) -> None:
    p = tmp_path / "a.log.gz"
    p.write_bytes(gzip.compress(ALB + b"\n" + NGINX + b"\n"))
    opts = ReadOptions(log_format="alb")
    exs = list(open_reader(p, opts))
    assert len(exs) == 1 and exs[0].request.host == "www.example.com"
    assert opts.counters.dropped["accesslog_unparsable_line"] == 1
    with pytest.raises(ConfigError, match="log-format"):
        list(open_reader(p, ReadOptions(log_format="iis")))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_lines_raise_only_line_errors(data: bytes) -> None:
    for fmt in (None, "nginx", "alb", "elb"):
        try:
            ll = parse_line(data, fmt)
        except LineError:
            continue
        assert ll.method and ll.target


def test_unescaped_spaces_in_target() -> None:
    ll = parse_line(b'1.2.3.4 - - [25/Oct/2016:14:49:33 +0200] "GET /a b/c HTTP/1.1" 200 1 "-" "-"')
    assert ll.target == "/a%20b/c" and ll.version == "HTTP/1.1"


@pytest.mark.parametrize("name", ["access.log.1", "access.log.12.gz", "x.log", "x.log.gz"])
def test_rotated_log_names_are_access_logs(name: str) -> None:
    from replaygate.formats import format_of

    assert format_of(name) == "accesslog"


def test_a_log_line_over_1mib_is_an_error_naming_the_offset(tmp_path: Path) -> None:
    from replaygate.errors import FormatError

    p = tmp_path / "long.log"
    p.write_bytes(NGINX + b"\n" + b"\0" * (2 << 20))
    with pytest.raises(FormatError, match=r"log line is longer than 1MiB") as e:
        list(open_reader(p))
    assert e.value.offset == len(NGINX) + 1


def test_a_cut_log_gz_is_a_cut_and_a_non_gzip_is_an_error(tmp_path: Path) -> None:
    from replaygate.errors import FormatError

    data = gzip.compress(b"".join(NGINX + b"\n" for _ in range(3000)))
    p = tmp_path / "cut.log.gz"
    p.write_bytes(data[: len(data) // 2])
    opts = ReadOptions()
    got = list(open_reader(p, opts))
    assert 0 < len(got) < 3000
    assert opts.counters.dropped["truncated_record"] == 1 and len(opts.counters.cuts) == 1
    p.write_bytes(b"\0" * 100)
    with pytest.raises(FormatError, match="not a gzip stream"):
        list(open_reader(p))
