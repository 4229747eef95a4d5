"""The lean request reader gives what the full .gor reader gives, for the files it accepts."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaygate.errors import FormatError, ReplaygateError
from replaygate.formats import ReadOptions, open_reader
from replaygate.formats.gor import SEPARATOR
from replaygate.formats.gor_lean import RequestScan, lean_requests, request_batches, scan
from replaygate.model import Counters, Exchange

T0 = 1_700_000_000_000_000_000
GET = b"GET /a HTTP/1.1\r\nHost: prod.example\r\n\r\n"


def rec(header: bytes, payload: bytes = GET) -> bytes:
    return header + b"\n" + payload + SEPARATOR


def lean(path: Path, **kw: int) -> tuple[list[bytes], Counters]:
    c = Counters()
    out: list[bytes] = []
    for batch in request_batches(str(path), ReadOptions(counters=c, **kw)):  # type: ignore[arg-type]
        out.extend(i if isinstance(i, bytes) else i.request.raw for i in batch)
    return out, c


def full(path: Path, **kw: int) -> tuple[list[bytes], Counters]:
    c = Counters()
    exs = list(open_reader(str(path), ReadOptions(counters=c, **kw)))  # type: ignore[arg-type]
    return [ex.request.raw for ex in exs], c


def same(path: Path, **kw: int) -> list[bytes]:
    """Both readers: same requests, same counters, or the same error."""
    try:
        want, wc = full(path, **kw)
    except ReplaygateError as e:
        with pytest.raises(type(e)) as got:
            lean(path, **kw)
        assert str(got.value) == str(e)
        return []
    got_reqs, gc = lean(path, **kw)
    assert got_reqs == want
    assert gc.dropped == wc.dropped
    assert gc.notes == wc.notes
    assert gc.cuts == wc.cuts
    return want


def test_scan_accepts_request_files_only(tmp_path: Path) -> None:
    plain = tmp_path / "a.gor"
    plain.write_bytes(rec(b"1 a %d -1" % T0) + rec(b"1 b %d" % T0))
    assert scan(str(plain)) == RequestScan(sessions=False)
    conn = tmp_path / "c.gor"
    conn.write_bytes(rec(b"1 a 1 -1 rg.v=1 rg.conn=1.2.3.4:5->6.7.8.9:80"))
    assert scan(str(conn)) == RequestScan(sessions=True)
    resp = tmp_path / "r.gor"
    resp.write_bytes(rec(b"1 a 1 -1") + rec(b"2 a 2 1", b"HTTP/1.1 200 OK\r\n\r\n"))
    assert scan(str(resp)) is None
    first = tmp_path / "f.gor"
    first.write_bytes(rec(b"2 a 2 1", b"HTTP/1.1 200 OK\r\n\r\n") + rec(b"1 a 1 -1"))
    assert scan(str(first)) is None
    gz = tmp_path / "a.gor.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert scan(str(gz)) is None
    empty = tmp_path / "e.gor"
    empty.write_bytes(b"")
    assert scan(str(empty)) == RequestScan(sessions=False)
    assert scan(str(tmp_path / "missing.gor")) is None
    # a cut request at the end is still a request file (the cut is counted when read)
    cut = tmp_path / "cut.gor"
    cut.write_bytes(rec(b"1 a 1 -1") + b"1 b 2 -1\nGET /cu")
    assert scan(str(cut)) == RequestScan(sessions=False)
    # ... a cut response is not
    cut2 = tmp_path / "cut2.gor"
    cut2.write_bytes(rec(b"1 a 1 -1") + b"2 b 2 1\nHTTP/1.1 2")
    assert scan(str(cut2)) is None


def test_lean_requests_needs_every_input(tmp_path: Path) -> None:
    a = tmp_path / "a.gor"
    a.write_bytes(rec(b"1 a 1 -1"))
    b = tmp_path / "b.gor"
    b.write_bytes(rec(b"1 b 1 -1 rg.v=1 rg.sess=s1"))
    opts = ReadOptions()
    assert lean_requests([str(a), str(b)], opts, sessions_ok=False) is None
    batches = lean_requests([str(a), str(b)], opts, sessions_ok=True)
    assert batches is not None
    items = [i for batch in batches for i in batch]
    assert items[0] == GET
    assert isinstance(items[1], Exchange) and items[1].session == "s1"


@pytest.mark.parametrize(
    "data",
    [
        rec(b"1 a %d -1" % T0) * 3,
        rec(b"1 a 9223372036854775807 -1") + rec(b"1 b 9223372036854775808 -1"),
        rec(b"1 a 1 9223372036854775807") + rec(b"1 a 1 9223372036854775808"),
        rec(b"1 a 1 -1 rg.v=1 rg.flags=request_gap") + rec(b"1 b 1 -1 rg.m.upstream=x%3A1"),
        rec(b"1 a 1") + rec(b"1 a 1 5") + rec(b"1 a 1 -2") + rec(b"1 a 1\r"),
        rec(b"1 a 1 -1") + rec(b"1 bad-ts x -1") + rec(b"1 c 3 -1"),
        rec(b"1 a 1 -1") + rec(b"") + rec(b"1 c 3 -1"),
        rec(b"1 a 1 -1") + b"1 b 2 -1\nGET /cut",
        rec(b"1 a 1 -1") + b"\r\n",
        rec(b"1 a 1 -1", b""),
        rec(b"1 a 1 -1", b"GET / HTTP/1.1\r\nHost: h\r\n"),
        b"1 lone-header" + SEPARATOR + rec(b"1 b 1 -1"),
        rec(b"1 x 1 -1 extra"),
        b"1 a 1 -1\nGET / HTTP/1.1\r\n\r\nno separator at all",
    ],
)
def test_same_as_the_full_reader(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "t.gor"
    path.write_bytes(data)
    same(path)


def test_records_across_reads_and_limits(tmp_path: Path) -> None:
    big = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3000000\r\n\r\n" + b"x" * 3_000_000
    path = tmp_path / "big.gor"
    path.write_bytes(rec(b"1 a 1 -1") + rec(b"1 b 2 -1", big) + rec(b"1 c 3 -1"))
    assert len(same(path)) == 3
    with pytest.raises(FormatError, match="max-record-size"):
        lean(path, max_record_size=1_000_000)
    same(path, max_record_size=1_000_000)


def test_not_a_gor_file(tmp_path: Path) -> None:
    path = tmp_path / "x.gor"
    path.write_bytes(b"1 this is text\n" * 10)
    same(path)


_HEADERS = st.one_of(
    st.builds(lambda ts: b"1 id %d -1" % ts, st.integers(0, 2**64)),
    st.builds(
        lambda ts, lat: b"1 id %d %d" % (ts, lat), st.integers(0, 2**64), st.integers(-3, 2**64)
    ),
    st.sampled_from(
        [
            b"1 a 1",
            b"1 a 1 -1 rg.v=1",
            b"1 a b c d",
            b"",
            b"  ",
            b"1",
            b"x y z",
            b"1 a 1 -1 rg.flags=gap",
        ]
    ),
    st.binary(max_size=12),
)
_PAYLOADS = st.one_of(st.just(GET), st.just(b""), st.binary(max_size=40))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records=st.lists(st.tuples(_HEADERS, _PAYLOADS), max_size=8),
    tail=st.sampled_from([b"", b"\n", b"1 cut 1 -1\nGET", b"garbage"]),
)
def test_property_same_as_the_full_reader(
    tmp_path: Path, records: list[tuple[bytes, bytes]], tail: bytes
) -> None:
    data = b"".join(h + b"\n" + p + SEPARATOR for h, p in records if SEPARATOR not in p) + tail
    path = tmp_path / "p.gor"
    path.write_bytes(data)
    if scan(str(path)) is not None:
        same(path)
