from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import FormatError, ReplaygateError
from replaygate.formats import ReadOptions, open_reader, open_writer
from replaygate.formats.jsonl import exchange_to_dict, parse_lines
from replaygate.model import ConnectionId, Flag
from replaygate.testing import make_exchange

SUMMARY_KEYS = [
    "id",
    "ts_ns",
    "method",
    "target",
    "host",
    "version",
    "status",
    "request_body_len",
    "response_body_len",
    "latency_ns",
    "complete",
    "flags",
]


def _exchanges() -> list:
    conn = ConnectionId("::1", 5555, "10.0.0.2", 80)
    a = make_exchange("GET", "/a", response_body=b"hello", conn=conn, session="s")
    a.flags.add(Flag.MIDSTREAM)
    a.meta["rule"] = "x"
    a.interim.append(a.response)  # type: ignore[arg-type]
    b = make_exchange("POST", "/b", request_body=b"\x00\xff", status=None)
    c = make_exchange("GET", "/c", replayed_status=500, replayed_body=b"boom")
    c.replay_error = None
    return [a, b, c]


def test_round_trip_exact(tmp_path: Path) -> None:
    exs = _exchanges()
    p = tmp_path / "t.jsonl"
    w = open_writer(p)
    for e in exs:
        w.write(e)
    w.close()
    lines = p.read_bytes().splitlines()
    assert len(lines) == 3
    obj = json.loads(lines[0])
    assert list(obj)[: len(SUMMARY_KEYS)] == SUMMARY_KEYS
    assert obj["request"]["headers"][0] == ["Host", "example.test"]
    assert obj["response"]["body_text"] == "hello" and obj["request"]["body_text"] is None
    assert json.loads(lines[1])["request"]["body_text"] is None  # binary
    back = list(open_reader(p))
    for a, b in zip(exs, back, strict=True):
        assert exchange_to_dict(a) == exchange_to_dict(b)
        assert a.request.raw == b.request.raw
    assert back[0].conn == exs[0].conn and back[0].interim[0].raw == exs[0].interim[0].raw
    assert back[2].replayed is not None and back[2].replayed.status == 500


def test_bad_line_names_line_and_cut_last_line_is_counted(tmp_path: Path) -> None:
    good = json.dumps(exchange_to_dict(_exchanges()[0])).encode()
    p = tmp_path / "bad.jsonl"
    p.write_bytes(good + b"\n{nope}\n" + good + b"\n")
    with pytest.raises(FormatError, match="line 2: invalid JSON") as e:
        list(open_reader(p))
    assert e.value.offset == len(good) + 1
    p.write_bytes(good + b"\n" + good[:50])
    opts = ReadOptions()
    assert len(list(open_reader(p, opts))) == 1
    assert opts.counters.dropped["truncated_record"] == 1


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"id": "x"}, "request"),
        ({"id": "x", "request": {"raw_b64": "!!"}}, "base64"),
        ({"request": {"raw_b64": ""}}, "id"),
        ({"id": "x", "request": {"raw_b64": ""}, "flags": ["bogus"]}, "unknown flag"),
        ([1], "not a JSON object"),
    ],
)
def test_foreign_objects_are_format_errors(obj: object, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        list(parse_lines([json.dumps(obj).encode() + b"\n"]))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_package_errors(data: bytes) -> None:
    try:
        for ex in parse_lines(data.splitlines(keepends=True)):
            ex.summary()
    except ReplaygateError:
        pass


def test_gzip_jsonl(tmp_path: Path) -> None:
    import gzip

    p = tmp_path / "t.jsonl.gz"
    exs = _exchanges()
    w = open_writer(p)
    for e in exs:
        w.write(e)
    w.close()
    lines = gzip.decompress(p.read_bytes()).splitlines()
    assert [json.loads(x)["id"] for x in lines] == [e.id for e in exs]
    assert [e.id for e in open_reader(p)] == [e.id for e in exs]


def test_a_line_over_the_limit_names_file_and_offset(tmp_path: Path) -> None:
    good = json.dumps(exchange_to_dict(_exchanges()[0])).encode() + b"\n"
    p = tmp_path / "long.jsonl"
    p.write_bytes(good + b'{"id": "' + b"x" * 5000 + b'"}\n')
    with pytest.raises(FormatError, match=r"longer than 4KiB \(limit: --max-record-size\)") as e:
        list(open_reader(p, ReadOptions(max_record_size=4096)))
    assert e.value.offset == len(good)


def test_zeros_named_jsonl_fail_at_once(tmp_path: Path) -> None:
    p = tmp_path / "zero.jsonl"
    p.write_bytes(b"\0" * (1 << 20))
    with pytest.raises(FormatError, match=r"line 1: not a JSON Lines record"):
        list(open_reader(p))


def test_cut_gzip_is_reported_not_aborted(tmp_path: Path) -> None:
    import gzip

    lines = b"".join(
        json.dumps(
            exchange_to_dict(make_exchange("GET", f"/{i}", response_body=bytes(range(256)) * 8))
        ).encode()
        + b"\n"
        for i in range(200)
    )
    data = gzip.compress(lines)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(data[: len(data) // 2])
    opts = ReadOptions()
    got = list(open_reader(p, opts))
    assert 0 < len(got) < 200
    assert opts.counters.dropped["truncated_record"] == 1 and len(opts.counters.cuts) == 1
