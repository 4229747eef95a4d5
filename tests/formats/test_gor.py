from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import InputError, TruncatedError
from replaygate.formats import open_reader, open_writer
from replaygate.formats.gor import (
    SEPARATOR,
    GorRecord,
    GorRecordParser,
    GorWriter,
    encode_record,
    exchange_records,
    parse_bytes,
    read_exchanges,
    read_records,
    write_bytes,
)
from replaygate.model import ConnectionId, Exchange, Flag
from replaygate.testing import make_exchange, make_response

REQ = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"1 abc 10 -1\n" + REQ + SEPARATOR, [(1, "abc", 10, None, REQ)]),
        (b"1 abc 10\n" + REQ + SEPARATOR, [(1, "abc", 10, None, REQ)]),  # old 3-field header
        (
            b"2 abc 10 5\nHTTP/1.1 200 OK\r\n\r\n" + SEPARATOR,
            [(2, "abc", 10, 5, b"HTTP/1.1 200 OK\r\n\r\n")],
        ),
        (b"", []),
    ],
)
def test_parser_table(data: bytes, expected: list[tuple[object, ...]]) -> None:
    recs = parse_bytes(data)
    assert [(r.type, r.id, r.ts_ns, r.latency_ns, r.payload) for r in recs] == expected


def test_parser_any_split() -> None:
    data = b"1 abc 10 -1\n" + REQ + SEPARATOR + b"2 abc 11 3\nHTTP/1.1 204 No\r\n\r\n" + SEPARATOR
    for cut in range(len(data)):
        p = GorRecordParser()
        recs = p.feed(data[:cut]) + p.feed(data[cut:])
        assert p.close() is None
        assert [r.type for r in recs] == [1, 2]


def test_truncated_reports_offset() -> None:
    good = b"1 abc 10 -1\n" + REQ + SEPARATOR
    with pytest.raises(TruncatedError) as e:
        parse_bytes(good + b"1 def 11 -1\nGET /half")
    assert e.value.offset == len(good)


def test_roundtrip_byte_exact(tmp_path: Path) -> None:
    conn = ConnectionId("10.0.0.1", 5555, "10.0.0.2", 80)
    exs = [
        make_exchange("GET", "/a", response_body=b"hello", conn=conn, session="s 1"),
        make_exchange("POST", "/b", request_body=b"x" * 100, status=None),
        make_exchange("GET", "/c", replayed_status=500, replayed_body=b"boom"),
    ]
    exs[0].flags.add(Flag.MIDSTREAM)
    exs[0].meta["rule"] = "a b=c"
    data = write_bytes(exs)
    p = tmp_path / "x.gor"
    p.write_bytes(data)
    back = list(read_exchanges(p))
    assert [e.id for e in back] == [e.id for e in exs]
    assert back[0].conn == conn and back[0].session == "s 1"
    assert back[0].flags == {Flag.MIDSTREAM}
    assert back[0].meta == {"rule": "a b=c"}
    assert back[1].response is None
    assert back[2].replayed is not None and back[2].replayed.status == 500
    assert write_bytes(back) == data
    # and records round-trip too
    assert b"".join(encode_record(r) for r in read_records(p)) == data


@pytest.mark.parametrize("ext", [".gor", ".gor.gz", ".gor.zst"])
def test_registry_compressed(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"t{ext}"
    w = open_writer(p)
    exs = [make_exchange("GET", f"/{i}") for i in range(50)]
    for e in exs:
        w.write(e)
    w.close()
    if ext == ".gor.gz":
        assert gzip.decompress(p.read_bytes()).startswith(b"1 ")
    assert [e.request.target for e in open_reader(p)] == [f"/{i}" for i in range(50)]


def test_rotation_by_size(tmp_path: Path) -> None:
    w = GorWriter(tmp_path / "r.gor", max_bytes=500)
    for i in range(20):
        w.write(make_exchange("GET", f"/{i}", response_body=b"y" * 100))
    w.close()
    assert len(w.files) > 2
    got = [e.request.target for f in w.files for e in read_exchanges(f)]
    assert got == [f"/{i}" for i in range(20)]


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(read_records(tmp_path / "nope.gor"))


def test_responses_far_from_request(tmp_path: Path) -> None:
    # GoReplay writes responses when they arrive: interleaved, possibly late.
    recs = []
    for i in range(5):
        recs.append(f"1 id{i} {i} -1\n".encode() + REQ + SEPARATOR)
    for i in reversed(range(5)):
        recs.append(f"2 id{i} {i} 7\nHTTP/1.1 200 OK\r\n\r\n".encode() + SEPARATOR)
    p = tmp_path / "late.gor"
    p.write_bytes(b"".join(recs))
    back = list(read_exchanges(p))
    assert [e.id for e in back] == [f"id{i}" for i in range(5)]
    assert all(e.response is not None for e in back)


def test_cut_file_reads_complete_records_and_reports_offset(tmp_path: Path) -> None:
    from replaygate.formats import ReadOptions

    good = write_bytes([make_exchange("GET", f"/{i}") for i in range(3)])
    p = tmp_path / "cut.gor"
    p.write_bytes(good + b"1 abc 10 -1\nGET /half")
    opts = ReadOptions()
    assert [e.request.target for e in open_reader(p, opts)] == ["/0", "/1", "/2"]
    assert opts.counters.dropped["truncated_record"] == 1
    assert any(f"offset {len(good)}" in n for n in opts.counters.notes)


def test_cut_gzip_file_reads_what_it_can(tmp_path: Path) -> None:
    from replaygate.formats import ReadOptions

    data = gzip.compress(write_bytes([make_exchange("GET", f"/{i}") for i in range(200)]))
    p = tmp_path / "cut.gor.gz"
    p.write_bytes(data[: len(data) // 2])
    opts = ReadOptions()
    got = list(open_reader(p, opts))
    assert 0 < len(got) < 200
    assert opts.counters.dropped["truncated_record"] == 1


def test_text_file_named_gor_is_format_error(tmp_path: Path) -> None:
    from replaygate.errors import FormatError

    p = tmp_path / "t.gor"
    p.write_text("hello, I am not a recording\n")
    with pytest.raises(FormatError, match=r"not a \.gor file"):
        list(open_reader(p))


def test_bad_record_in_the_middle_is_skipped_and_counted(tmp_path: Path) -> None:
    from replaygate.formats import ReadOptions

    a = write_bytes([make_exchange("GET", "/a")])
    b = write_bytes([make_exchange("GET", "/b")])
    p = tmp_path / "m.gor"
    p.write_bytes(a + b"x y\nGARBAGE" + SEPARATOR + b)
    opts = ReadOptions()
    assert [e.request.target for e in open_reader(p, opts)] == ["/a", "/b"]
    assert opts.counters.dropped["bad_record"] == 1


def test_header_line_stays_goreplay_readable() -> None:
    # GoReplay splits the header on " ", needs >= 3 fields, reads meta[2] as the timestamp and
    # writes -1 as the latency of requests; our rg.* fields must come after those.
    ex = make_exchange("GET", "/", conn=ConnectionId("::1", 1, "::2", 80), session="a b")
    ex.id = "weird id\twith space"
    data = write_bytes([ex])
    header = data.split(b"\n", 1)[0].decode()
    parts = header.split(" ")
    assert parts[0] == "1" and parts[1] == "weird_id_with_space"
    assert int(parts[2]) == ex.ts_ns and parts[3] == "-1"
    assert all(p.startswith("rg.") and " " not in p for p in parts[4:])
    assert data.endswith("\n🐵🙈🙉\n".encode())


def test_without_metadata_is_plain_goreplay(tmp_path: Path) -> None:
    w = GorWriter(tmp_path / "plain.gor", with_metadata=False)
    w.write(make_exchange("GET", "/x", response_body=b"ok"))
    w.close()
    lines = [
        ln for ln in (tmp_path / "plain.gor").read_bytes().split(b"\n") if ln[:2] in (b"1 ", b"2 ")
    ]
    assert len(lines) == 2 and all(len(ln.split(b" ")) == 4 for ln in lines)


def test_rotation_by_time(tmp_path: Path) -> None:
    from replaygate.testing import FakeClock

    clock = FakeClock()
    w = GorWriter(tmp_path / "t.gor.zst", max_seconds=10, clock=clock)
    for i in range(6):
        w.write(make_exchange("GET", f"/{i}"))
        clock.advance(4)
    w.close()
    assert [Path(f).name for f in w.files] == ["t_0.gor.zst", "t_1.gor.zst"]
    got = [e.request.target for f in w.files for e in read_exchanges(f)]
    assert got == [f"/{i}" for i in range(6)]


def _goreplay_file_reader(data: bytes) -> list[tuple[bytes, int, bytes]]:
    """A line-for-line transcription of GoReplay's fileInputReader.parse (input_file.go):
    lines are buffered until one equals the separator minus its leading newline; the record's
    meta (header split on spaces) needs >= 3 fields; meta[2] is ParseInt'ed; the data is the
    buffer minus its last byte. Returns (type, timestamp, data) of each accepted record."""
    sep_line = SEPARATOR[1:]
    out = []
    buf = b""
    for line in data.splitlines(keepends=True):
        if line == sep_line:
            nl = buf.find(b"\n")
            meta = buf[:nl].split(b" ") if nl >= 0 else []
            if len(meta) >= 3:
                out.append((meta[0], int(meta[2]), buf[:-1]))
            buf = b""
            continue
        buf += line
    return out


def test_goreplay_reader_accepts_our_files() -> None:
    conn = ConnectionId("10.0.0.1", 5555, "10.0.0.2", 80)
    exs = [
        make_exchange("GET", "/a", response_body=b"hello\n", conn=conn, session="s 1"),
        make_exchange("POST", "/b", request_body=b"x\r\ny", replayed_status=200),
        make_exchange("GET", "/c", status=None),
    ]
    exs[0].meta["rule"] = "a b=c"
    data = write_bytes(exs)
    got = _goreplay_file_reader(data)
    ours = parse_bytes(data)
    assert len(got) == len(ours) == 6
    for (typ, ts, payload), rec in zip(got, ours, strict=True):
        assert typ == str(rec.type).encode() and ts == rec.ts_ns
        header, _, body = payload.partition(b"\n")
        assert body == rec.payload  # GoReplay hands middleware/output exactly our bytes
        assert header.split(b" ")[1] == rec.id.encode()


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    target=st.text(alphabet="/abc?=&%.", min_size=1, max_size=20).map(lambda t: "/" + t),
    body=st.binary(max_size=64),
    status=st.one_of(st.none(), st.integers(100, 599)),
    meta=st.dictionaries(_names, st.text(max_size=10), max_size=3),
    session=st.one_of(st.none(), st.text(max_size=8)),
    flags=st.sets(st.sampled_from(list(Flag))),
)
def test_roundtrip_property(
    method: str,
    target: str,
    body: bytes,
    status: int | None,
    meta: dict[str, str],
    session: str | None,
    flags: set[Flag],
) -> None:
    ex = make_exchange(method, target, request_body=body, status=status, session=session)
    ex.meta.update(meta)
    ex.flags |= flags
    data = write_bytes([ex])
    recs = parse_bytes(data)
    assert b"".join(encode_record(r) for r in recs) == data
    from replaygate.formats.gor import _exchange_from_records

    back = _exchange_from_records(recs[0], recs[1:])
    assert back.request.raw == ex.request.raw and back.meta == ex.meta
    assert back.flags == ex.flags and back.session == ex.session
    assert write_bytes([back]) == data


def test_latency_conventions_of_goreplay_versions() -> None:
    from replaygate.formats.gor import _exchange_from_records

    req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    # GoReplay < 1.3 (and replaygate): request -1, response latency = request start -> end
    old = parse_bytes(b"1 a 1000 -1\n" + req + SEPARATOR + b"2 a 1500 700\n" + resp + SEPARATOR)
    ex = _exchange_from_records(old[0], old[1:])
    assert ex.latency_ns == 700 and ex.response is not None and ex.response.ts_last_ns == 1700
    # GoReplay 1.3+: every message carries its own duration (End - Start)
    new = parse_bytes(b"1 a 1000 20\n" + req + SEPARATOR + b"2 a 1500 30\n" + resp + SEPARATOR)
    ex = _exchange_from_records(new[0], new[1:])
    assert ex.request.ts_last_ns == 1020
    assert ex.response is not None and ex.response.ts_first_ns == 1500
    assert ex.latency_ns == 530


@pytest.mark.parametrize("ext", [".gor.gz", ".gor.zst"])
def test_plain_bytes_named_compressed_is_format_error(tmp_path: Path, ext: str) -> None:
    from replaygate.errors import FormatError

    p = tmp_path / f"x{ext}"
    p.write_bytes(write_bytes([make_exchange()]))
    with pytest.raises(FormatError, match="stream"):
        list(open_reader(p))


def test_cut_zstd_file_reads_what_it_can(tmp_path: Path) -> None:
    from replaygate.formats import ReadOptions

    p = tmp_path / "z.gor.zst"
    w = open_writer(p)
    for i in range(500):
        w.write(make_exchange("GET", f"/{i}", response_body=bytes(range(256)) * 4))
    w.close()
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    opts = ReadOptions()
    assert 0 < len(list(open_reader(p, opts))) < 500
    assert opts.counters.dropped["truncated_record"] == 1


def test_window_bounds_waiting_and_late_responses_are_counted(tmp_path: Path) -> None:
    from replaygate.formats import ReadOptions

    recs = [f"1 id{i} {i} -1\n".encode() + REQ + SEPARATOR for i in range(10)]
    recs.append(b"2 id0 100 7\nHTTP/1.1 200 OK\r\n\r\n" + SEPARATOR)
    p = tmp_path / "late.gor"
    p.write_bytes(b"".join(recs))
    opts = ReadOptions(extra={"gor_window": 3})
    got = list(open_reader(p, opts))
    assert len(got) == 10 and got[0].response is None
    assert opts.counters.dropped["response_without_request"] == 1
    assert all(e.response is not None for e in open_reader(p)) is False
    assert next(iter(open_reader(p))).response is not None  # default window is wide enough


def test_repeated_ids_keep_file_order(tmp_path: Path) -> None:
    # concatenated recordings repeat ids; exchanges must still come out in file order
    a = make_exchange("GET", "/a", id="same")
    b = make_exchange("GET", "/b", status=None)
    c = make_exchange("GET", "/c", id="same")
    p = tmp_path / "cat.gor"
    p.write_bytes(write_bytes([a, b, c]))
    got = list(read_exchanges(p))
    assert [e.request.target for e in got] == ["/a", "/b", "/c"]
    assert all(e.response is not None for e in (got[0], got[2]))
    assert write_bytes(got) == p.read_bytes()


def test_first_exchange_keeps_its_replayed_response(tmp_path: Path) -> None:
    """The front exchange waits for its type-3 record even before any type 3 was seen."""
    p = tmp_path / "r.gor"
    p.write_bytes(
        write_bytes([make_exchange(target=f"/{i}", replayed_status=200) for i in range(3)])
    )
    got = [(ex.request.target, ex.replayed is not None) for ex in open_reader(p)]
    assert got == [("/0", True), ("/1", True), ("/2", True)]


def test_http09_reply_body_survives_a_round_trip(tmp_path: Path) -> None:
    from replaygate.model import Exchange, Request, Response

    ex = Exchange(
        id="a" * 40,
        request=Request(b"GET /zeek.html\r\n", ts_first_ns=1),
        response=Response(b"<html>hi</html>\n", ts_first_ns=2, head_len=0),
    )
    p = tmp_path / "r.gor"
    p.write_bytes(write_bytes([ex]))
    (back,) = list(open_reader(p))
    assert back.response is not None
    assert back.response.head_len == 0
    assert back.response.body() == b"<html>hi</html>\n"


# -- encoding: the one-pass writer path must give the bytes the record path always gave -------

GOLDEN = Path(__file__).parent / "golden" / "encode.gor"


def _golden_exchanges() -> list[Exchange]:
    """Every field the encoder writes, with values that need quoting and that do not."""
    t = 1_700_000_000_000_000_000
    conn4 = ConnectionId("10.0.0.1", 5000, "10.0.0.2", 80)
    conn6 = ConnectionId("::1", 40000, "fe80::1", 8080)
    exs = [
        make_exchange("GET", "/plain", id="a" * 40, ts_ns=t, conn=conn4),
        make_exchange(
            "POST",
            "/b",
            id="id with spaces\tand tab",
            request_body=b"x=1",
            ts_ns=t,
            session="s p a c e/é%",
            conn=conn6,
        ),
        make_exchange("GET", "/c", status=None, ts_ns=0, session=""),
        make_exchange(
            "GET",
            "/d",
            id="r1",
            replayed_status=503,
            replayed_body=b"no",
            ts_ns=t,
            latency_ns=0,
            replay_latency_ns=-5,
        ),
        make_exchange("PUT", "/e", id="é\u2028x", ts_ns=t, session="user\ud800surrogate"),
    ]
    exs[0].seq = 7
    exs[0].flags |= {Flag.MASKED, Flag.MODIFIED, Flag.MIDSTREAM}
    exs[0].request.ts_last_ns = t + 123
    exs[0].meta.update(
        {"rule": "a b", "empty": "", "pct": "100%", "uni": "ü→", "safe": "a:b>c[],."}
    )
    exs[1].interim.append(make_response(100, b"", ts_ns=t + 5))
    exs[1].interim.append(make_response(103, b"", ts_ns=0))
    exs[1].replay_error = "timeout after 5 s\nsecond line"
    exs[1].replay_ts_ns = t + 9
    exs[2].id = ""  # written as "-"
    exs[2].replay_error = "connect refused"  # an error with no replayed response
    assert exs[3].response is not None
    exs[3].response.ts_first_ns = 0  # no rg.tf
    exs[4].request.ts_last_ns = exs[4].request.ts_first_ns - 1  # earlier than first: kept
    exs[4].meta["m"] = "\x00\x7f\r\n"
    return exs


def test_golden_encoding_is_byte_identical(tmp_path: Path) -> None:
    """Fixed bytes written by the record-at-a-time encoder before the one-pass writer."""
    golden = GOLDEN.read_bytes()
    exs = _golden_exchanges()
    assert write_bytes(exs) == golden
    assert b"".join(encode_record(r) for ex in exs for r in exchange_records(ex)) == golden
    w = GorWriter(tmp_path / "g.gor")
    for ex in exs:
        w.write(ex)
    w.close()
    assert (tmp_path / "g.gor").read_bytes() == golden
    assert w.records == len(parse_bytes(golden))
    plain = GorWriter(tmp_path / "p.gor", with_metadata=False)
    for ex in exs:
        plain.write(ex)
    plain.close()
    expected = b"".join(
        encode_record(GorRecord(r.type, r.id, r.ts_ns, r.latency_ns, r.payload))
        for ex in exs
        for r in exchange_records(ex)
    )
    assert (tmp_path / "p.gor").read_bytes() == expected
    assert b" rg." not in expected


def test_rotating_writer_splits_between_records_as_before(tmp_path: Path) -> None:
    exs = _golden_exchanges()
    w = GorWriter(tmp_path / "r.gor", max_bytes=200)
    for ex in exs:
        w.write(ex)
    w.close()
    # a file is switched before the record that finds it full
    chunks: list[bytes] = []
    size = 0
    for r in (r for ex in exs for r in exchange_records(ex)):
        data = encode_record(r)
        if not chunks or size >= 200:
            chunks.append(b"")
            size = 0
        chunks[-1] += data
        size += len(data)
    assert [Path(f).read_bytes() for f in w.files] == chunks


_any_text = st.text(st.characters(codec="utf-8") | st.sampled_from("\ud800\udfff% :>[],.~"))


@settings(max_examples=200, deadline=None)
@given(value=_any_text)
def test_quote_fast_path_matches_urllib(value: str) -> None:
    from urllib.parse import quote

    from replaygate.formats.gor import _SAFE, _quote

    assert _quote(value) == quote(value, safe=_SAFE, errors="surrogatepass")


@settings(max_examples=100, deadline=None)
@given(
    rid=_any_text,
    session=st.one_of(st.none(), _any_text),
    meta=st.dictionaries(_names, _any_text, max_size=3),
    flags=st.sets(st.sampled_from(list(Flag))),
    seq=st.integers(-3, 10**12),
    ts=st.integers(0, 1 << 62),
    lats=st.tuples(*[st.integers(-(10**9), 10**9)] * 3),
    interim=st.integers(0, 2),
    status=st.one_of(st.none(), st.integers(100, 599)),
    replayed=st.one_of(st.none(), st.integers(100, 599)),
    error=st.one_of(st.none(), _any_text),
    metadata=st.booleans(),
)
def test_one_pass_encoding_equals_record_encoding(
    rid: str,
    session: str | None,
    meta: dict[str, str],
    flags: set[Flag],
    seq: int,
    ts: int,
    lats: tuple[int, int, int],
    interim: int,
    status: int | None,
    replayed: int | None,
    error: str | None,
    metadata: bool,
) -> None:
    from replaygate.formats.gor import exchange_bytes

    ex = make_exchange(
        "GET",
        "/",
        id=rid,
        ts_ns=ts,
        status=status,
        session=session,
        replayed_status=replayed,
        latency_ns=lats[0],
        replay_latency_ns=lats[1],
    )
    ex.conn = ConnectionId("::1", 1, "127.0.0.1", 2) if seq % 2 else None
    ex.meta.update(meta)
    ex.flags |= flags
    ex.seq = seq
    ex.request.ts_last_ns = ts + lats[2]
    ex.interim += [make_response(100, ts_ns=ts + i * lats[2]) for i in range(interim)]
    ex.replay_error = error
    recs = exchange_records(ex)
    if not metadata:
        recs = [GorRecord(r.type, r.id, r.ts_ns, r.latency_ns, r.payload) for r in recs]
    assert exchange_bytes(ex, metadata=metadata) == b"".join(encode_record(r) for r in recs)


# --- linear reading, size limits, cut compressed files (#12) -------------------------------


@pytest.mark.parametrize("mib", [2, 8])
def test_a_big_record_in_many_pieces_is_read_in_linear_work(mib: int) -> None:
    """Each byte is copied a bounded number of times, whatever the record size (the old
    parser copied the whole pending buffer on every read: quadratic)."""
    rec = encode_record(
        GorRecord(1, "a" * 40, 1, None, b"GET / HTTP/1.1\r\n\r\n" + b"x" * (mib << 20))
    )
    p = GorRecordParser()
    out = []
    for i in range(0, len(rec), 64 << 10):
        out += p.feed(rec[i : i + (64 << 10)])
    assert len(out) == 1 and len(out[0].payload) == len(rec) - len(SEPARATOR) - rec.index(b"\n") - 1
    assert p.bytes_copied <= 3 * len(rec)


def test_a_record_over_the_limit_names_file_and_offset(tmp_path: Path) -> None:
    from replaygate.errors import FormatError
    from replaygate.formats import ReadOptions

    small = write_bytes([make_exchange("GET", "/a")])
    big = write_bytes([make_exchange("POST", "/b", request_body=b"y" * 5000)])
    p = tmp_path / "big.gor"
    p.write_bytes(small + big)
    with pytest.raises(
        FormatError, match=r"record is longer than 4KiB \(limit: --max-record-size\)"
    ) as e:
        list(open_reader(p, ReadOptions(max_record_size=4096)))
    assert e.value.offset == len(small) and e.value.path == str(p)
    assert len(list(open_reader(p, ReadOptions(max_record_size=8192)))) == 2


def test_zeros_named_gor_fail_fast_without_reading_everything(tmp_path: Path) -> None:
    from replaygate.errors import FormatError

    p = tmp_path / "zero.gor"
    p.write_bytes(b"\0" * (3 << 20))
    with pytest.raises(FormatError, match=r"header line is longer than 1MiB: not a \.gor file"):
        list(open_reader(p))


def test_cut_zstd_file_is_reported(tmp_path: Path) -> None:
    import zstandard

    from replaygate.formats import ReadOptions

    data = write_bytes([make_exchange("GET", f"/{i}") for i in range(50)])
    frames = zstandard.ZstdCompressor().compress(data[:3000]) + zstandard.ZstdCompressor().compress(
        data[3000:]
    )
    p = tmp_path / "two.gor.zst"
    p.write_bytes(frames)
    opts = ReadOptions()
    assert len(list(open_reader(p, opts))) == 50  # both frames read
    assert not opts.counters.cuts
    p.write_bytes(frames[:-5])
    opts = ReadOptions()
    assert len(list(open_reader(p, opts))) < 50
    assert opts.counters.dropped["truncated_record"] == 1 and len(opts.counters.cuts) == 1


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 10_000), st.booleans())
def test_zstd_frame_scanner_knows_where_frames_end(data: bytes, cut: int, checksum: bool) -> None:
    import zstandard

    from replaygate.formats._zstd import FrameScanner

    frame = zstandard.ZstdCompressor(write_checksum=checksum).compress(data)
    frame2 = frame + frame
    cut %= len(frame2) + 1
    s = FrameScanner()
    for i in range(0, cut, 7):
        s.feed(frame2[i : min(cut, i + 7)])
    assert s.at_boundary == (cut in (0, len(frame), len(frame2)))


_piece = st.sampled_from(
    [SEPARATOR, b"\n", b"\r\n", b" ", b"1 ab 10 -1", b"2 ab 11 5 rg.tf=3", b"3 x 1 2 rg.err=a%20b",
     b"x y", b"1 id", b"9 a b", b"GET / HTTP/1.1\r\n\r\n", b"\xf0\x9f", b"rg.v=1"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_piece, max_size=14))
def test_whole_message_parse_equals_the_streaming_parser(pieces: list[bytes]) -> None:
    """parse_bytes' shortcut for data ending with a separator: same records, same errors."""
    from replaygate.errors import FormatError

    data = b"".join(pieces) + SEPARATOR

    def streaming() -> object:
        try:
            p = GorRecordParser()
            recs = p.feed(data)
            assert p.close() is None
            return [
                (r.type, r.id, r.ts_ns, r.latency_ns, r.payload, r.extra, r.offset) for r in recs
            ]
        except FormatError as e:
            return ("error", type(e), e.message, e.offset)

    def whole() -> object:
        try:
            recs = parse_bytes(data)
            return [
                (r.type, r.id, r.ts_ns, r.latency_ns, r.payload, r.extra, r.offset) for r in recs
            ]
        except FormatError as e:
            return ("error", type(e), e.message, e.offset)

    assert whole() == streaming()


@pytest.mark.parametrize(
    ("name", "opts"),
    [
        ("e.gor", {}),
        ("e.gor.gz", {}),
        ("e.gor", {"max_bytes": 200}),
        ("n.gor", {"with_metadata": False}),
    ],
)
def test_write_encoded_writes_what_write_writes(
    tmp_path: Path, name: str, opts: dict[str, object]
) -> None:
    """The live recorders' path (encode on the producer, write batches) and write() give the
    same files, rotation included."""
    exs = _golden_exchanges()
    a = GorWriter(tmp_path / "a" / name, **opts)  # type: ignore[arg-type]
    b = GorWriter(tmp_path / "b" / name, **opts)  # type: ignore[arg-type]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for ex in exs:
        a.write(ex)
    b.write(exs[0])  # write() and batches mix
    b.write_encoded([b.encode(ex) for ex in exs[1:3]])
    b.write_encoded([])
    b.write_encoded([b.encode(ex) for ex in exs[3:]])
    a.close()
    b.close()
    assert len(a.files) == len(b.files) and a.records == b.records
    for fa, fb in zip(a.files, b.files, strict=True):
        ra, rb = Path(fa).read_bytes(), Path(fb).read_bytes()
        if name.endswith(".gz"):
            ra, rb = gzip.decompress(ra), gzip.decompress(rb)
        assert ra == rb


def test_writev_continues_after_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from replaygate.formats import gor as gor_module

    real = os.writev
    calls: list[int] = []

    def short(fd: int, bufs: list[bytes]) -> int:  # the kernel may stop anywhere
        calls.append(len(bufs))
        return real(fd, [memoryview(bytes(b"".join(bufs)))[:7]])

    monkeypatch.setattr(gor_module, "_IOV_MAX", 4)
    monkeypatch.setattr(gor_module.os, "writev", short)
    exs = _golden_exchanges()
    w = GorWriter(tmp_path / "s.gor")
    w.write_encoded([w.encode(ex) for ex in exs])
    w.close()
    assert (tmp_path / "s.gor").read_bytes() == write_bytes(exs)
    assert max(calls) <= 4 and len(calls) > len(exs)


_ts = st.one_of(st.just(0), st.integers(1, 2**63 - 1))


@settings(max_examples=300, deadline=None)
@given(
    req=st.binary(max_size=40),
    resp=st.binary(max_size=40),
    first=_ts,
    last=_ts,
    resp_ns=_ts,
    seq=st.integers(0, 2**40),
    conn=st.sampled_from([None, ConnectionId("10.0.0.1", 5000, "::1", 80)]),
    meta=st.dictionaries(st.sampled_from(["upstream", "a b", "é"]), _any_text, max_size=2),
    metadata=st.booleans(),
)
def test_whole_encoder_encodes_what_exchange_parts_encodes(
    req: bytes,
    resp: bytes,
    first: int,
    last: int,
    resp_ns: int,
    seq: int,
    conn: ConnectionId | None,
    meta: dict[str, str],
    metadata: bool,
) -> None:
    """The proxy's encoder of plain exchanges (no Exchange built) gives the bytes of the
    exchange the recorder would have built."""
    from unittest import mock

    from replaygate.formats import _gor_exchange
    from replaygate.model import Request, Response

    ex = Exchange("ab12", Request(req, ts_first_ns=first, ts_last_ns=last, head_len=0), conn=conn)
    ex.seq = seq
    ex.response = Response(resp, ts_first_ns=resp_ns, ts_last_ns=resp_ns, head_len=0)
    ex.meta.update(meta)
    with mock.patch.object(_gor_exchange, "new_exchange_id", lambda: "ab12"):
        got = _gor_exchange.whole_encoder(conn, meta, metadata)(
            req, first, last, resp, resp_ns, seq
        )
    assert got == _gor_exchange._exchange_parts(ex, metadata)


def test_write_encoded_without_writev_writes_one_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from replaygate.formats import gor as gor_module

    monkeypatch.setattr(gor_module, "_WRITEV", False)
    exs = _golden_exchanges()
    w = GorWriter(tmp_path / "j.gor")
    w.write_encoded([w.encode(ex) for ex in exs])
    w.close()
    assert (tmp_path / "j.gor").read_bytes() == write_bytes(exs)


def test_write_encoded_disk_full_is_one_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from replaygate.errors import OutputError
    from replaygate.formats import gor as gor_module

    def full(fd: int, bufs: list[bytes]) -> int:
        raise OSError(28, "No space left on device")

    w = GorWriter(tmp_path / "f.gor")
    monkeypatch.setattr(gor_module.os, "writev", full)
    with pytest.raises(OutputError, match=r"cannot write: No space left on device") as e:
        w.write_encoded([w.encode(ex) for ex in _golden_exchanges()])
    assert str(tmp_path / "f.gor") in str(e.value)
    monkeypatch.setattr(gor_module.os, "writev", os.writev)
    w.close()
