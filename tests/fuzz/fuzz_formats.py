"""Fuzz targets for the file readers: .gor records, HAR, access-log lines, JSON Lines, and
the readers' size limits (small limits, arbitrary chunking: only FormatError may come out).

Each target parses arbitrary bytes and then uses what it got the way the CLI does (summary,
re-encoding to the other formats), so a reader that builds a broken exchange is caught too.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson

from replaygate.errors import ReplaygateError
from replaygate.formats import ReadOptions
from replaygate.formats.accesslog import LineError, parse_line
from replaygate.formats.accesslog import _exchange as _log_exchange
from replaygate.formats.gor import (
    SEPARATOR,
    GorRecord,
    GorRecordParser,
    _exchange_from_records,
    encode_record,
    exchange_records,
)
from replaygate.formats.har import exchange_to_entry, parse_har
from replaygate.formats.jsonl import exchange_to_dict, parse_lines
from replaygate.model import Exchange

__all__ = ["SEEDS", "TARGETS"]


def _use(ex: Exchange) -> None:
    ex.summary()
    for rec in exchange_records(ex):
        encode_record(rec)
    orjson.dumps(exchange_to_entry(ex))
    orjson.dumps(exchange_to_dict(ex))


def fuzz_gor(data: bytes) -> None:
    p = GorRecordParser(on_bad=lambda off, why: None)
    half = len(data) // 2
    recs = p.feed(data[:half]) + p.feed(data[half:])
    p.close()
    groups: dict[str, tuple[GorRecord | None, list[GorRecord]]] = {}
    for r in recs:
        req, others = groups.get(r.id, (None, []))
        if r.type == 1 and req is None:
            groups[r.id] = (r, others)
        else:
            others.append(r)
            groups[r.id] = (req, others)
    for req, others in groups.values():
        if req is not None:
            _use(_exchange_from_records(req, others))


def fuzz_har(data: bytes) -> None:
    for ex in parse_har(data, ReadOptions(), path="fuzz.har"):
        _use(ex)


def fuzz_accesslog(data: bytes) -> None:
    for i, line in enumerate(data.split(b"\n")):
        for fmt in (None, "nginx", "alb"):
            try:
                ll = parse_line(line, fmt)
            except LineError:
                continue
            _use(_log_exchange(ll, "fuzz.log", i, None))


def fuzz_jsonl(data: bytes) -> None:
    for ex in parse_lines(data.splitlines(keepends=True), ReadOptions(), path="fuzz.jsonl"):
        _use(ex)


def fuzz_mitm(data: bytes) -> None:
    import io

    from mitmproxy import io as mio

    from replaygate.formats.mitm import _flows

    for ex in _flows(mio, io.BytesIO(data), "fuzz.mitm", ReadOptions()):
        _use(ex)


def fuzz_gor_limits(data: bytes) -> None:
    """Arbitrary bytes in arbitrary pieces through a parser with a tiny record limit."""
    step = 1 + (data[0] if data else 0) % 37
    p = GorRecordParser(on_bad=lambda off, why: None, max_record=64)
    total = 0
    for i in range(0, len(data), step):
        for r in p.feed(data[i : i + step]):
            assert len(r.payload) <= 64
            total += 1
    p.close()
    assert p.bytes_copied <= 3 * len(data) + 64


def fuzz_gor_lean(data: bytes) -> None:
    """The lean request reader (``replay --max``) on a file it accepts: the requests, the
    counters and the errors are the full reader's."""
    import os
    import tempfile

    from replaygate.formats import open_reader
    from replaygate.formats.gor_lean import request_batches, scan
    from replaygate.model import Counters

    fd, path = tempfile.mkstemp(suffix=".gor")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if scan(path) is None:
            return
        wc, gc = Counters(), Counters()
        try:
            want = [ex.request.raw for ex in open_reader(path, ReadOptions(counters=wc))]
        except ReplaygateError as e:
            try:
                for _ in request_batches(path, ReadOptions(counters=gc)):
                    pass
            except ReplaygateError as e2:
                assert str(e2) == str(e)
                return
            raise AssertionError(
                f"the lean reader read what the full reader refused: {e}"
            ) from None
        got: list[bytes] = []
        for batch in request_batches(path, ReadOptions(counters=gc)):
            got.extend(i if isinstance(i, bytes) else i.request.raw for i in batch)
        assert got == want
        assert (gc.dropped, gc.notes, gc.cuts) == (wc.dropped, wc.notes, wc.cuts)
    finally:
        os.unlink(path)


def fuzz_line_limits(data: bytes) -> None:
    """JSON Lines and access logs read through the bounded line reader, tiny limits."""
    import gzip
    import io

    from replaygate.formats._limits import bounded_lines
    from replaygate.formats.accesslog import _lines

    limit = 16 + (data[0] if data else 0)
    lines = bounded_lines(io.BytesIO(data), limit, "fuzz.jsonl", "record", b"{")
    for ex in parse_lines(lines, ReadOptions(), path="fuzz.jsonl"):
        _use(ex)
    opts = ReadOptions(max_record_size=limit)
    for ex in _lines(io.BufferedReader(io.BytesIO(data)), "fuzz.log", None, None, opts):
        _use(ex)
    # the same bytes as a (possibly cut) gzip member
    z = gzip.compress(data)[: max(10, len(data))]
    from replaygate.formats.jsonl import _read

    with gzip.open(io.BytesIO(z)) as f:
        for ex in _read(f, "fuzz.jsonl.gz", ReadOptions()):  # type: ignore[arg-type]
            _use(ex)


def fuzz_har_limits(data: bytes) -> None:
    """A HAR document under a small size limit, and every prefix shape of it (cut files)."""
    import io

    from replaygate.formats._har_import import _read_document

    doc = _read_document(io.BytesIO(data), "fuzz.har", 4096)
    cut = data[: len(data) * 2 // 3]
    for d in (doc, cut):
        try:
            for ex in parse_har(d, ReadOptions(), path="fuzz.har"):
                _use(ex)
        except ReplaygateError:
            pass


def fuzz_zstd_frames(data: bytes) -> None:
    """The zstd frame scanner never raises, and agrees with zstd on real frames cut anywhere."""
    import io

    import zstandard

    from replaygate.formats._zstd import FrameScanner, ZstdReader

    s = FrameScanner()
    s.feed(data)
    frame = zstandard.ZstdCompressor(write_checksum=bool(data[:1] > b"\x80")).compress(data)
    cut = len(data) % (len(frame) + 1)
    s = FrameScanner()
    s.feed(frame[:cut])
    assert s.at_boundary == (cut in (0, len(frame)))
    try:
        r = ZstdReader(io.BytesIO(frame[:cut]))
        while r.read(4096):
            pass
    except EOFError:
        assert cut not in (0, len(frame))
    except zstandard.ZstdError:
        pass


def _mitm_seed() -> list[bytes]:
    import io

    from mitmproxy import io as mio
    from mitmproxy.test import tflow

    buf = io.BytesIO()
    w = mio.FlowWriter(buf)
    w.add(tflow.tflow(resp=True))
    w.add(tflow.tflow(err=True))
    return [buf.getvalue()]


TARGETS: dict[str, Callable[[bytes], None]] = {
    "gor_records": fuzz_gor,
    "har_reader": fuzz_har,
    "accesslog_line": fuzz_accesslog,
    "jsonl_reader": fuzz_jsonl,
    "gor_limits": fuzz_gor_limits,
    "gor_lean": fuzz_gor_lean,
    "line_limits": fuzz_line_limits,
    "har_limits": fuzz_har_limits,
    "zstd_frames": fuzz_zstd_frames,
}
try:
    _MITM_SEEDS = _mitm_seed()
    TARGETS["mitm_reader"] = fuzz_mitm
except ImportError:  # mitmproxy is an optional extra
    _MITM_SEEDS = []

_REQ = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"
_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
_HAR = orjson.dumps(
    {
        "log": {
            "version": "1.2",
            "entries": [
                {
                    "startedDateTime": "2023-03-30T00:00:54.250Z",
                    "time": 14.6,
                    "request": {
                        "method": "POST",
                        "url": "https://h.test/p?q=1",
                        "httpVersion": "http/2.0",
                        "headers": [{"name": ":authority", "value": "h.test"}],
                        "postData": {"mimeType": "text/plain", "text": "abc"},
                    },
                    "response": {
                        "status": 200,
                        "httpVersion": "h3",
                        "headers": [{"name": "content-encoding", "value": "gzip"}],
                        "content": {
                            "size": 2,
                            "text": base64.b64encode(b"hi").decode(),
                            "encoding": "base64",
                        },
                    },
                    "timings": {"send": 1, "wait": 2, "receive": 3},
                },
                {"startedDateTime": "x", "request": {"method": "GET", "url": "/"}},
            ],
        }
    }
)
_JSONL = orjson.dumps(
    {
        "id": "abc",
        "request": {"raw_b64": base64.b64encode(_REQ).decode(), "ts_first_ns": 1},
        "response": {"raw_b64": base64.b64encode(_RESP).decode()},
        "flags": ["midstream"],
        "conn": "10.0.0.1:1->10.0.0.2:80",
        "meta": {"k": "v"},
    }
)

SEEDS: dict[str, list[bytes]] = {
    "gor_records": [
        b"1 abc 10 -1 rg.v=1 rg.conn=1.2.3.4%3A5-%3E6.7.8.9%3A80\n" + _REQ + SEPARATOR,
        b"1 abc 10\n" + _REQ + SEPARATOR + b"2 abc 12 3 rg.tf=11\n" + _RESP + SEPARATOR,
        b"3 abc 10 5 rg.err=timeout\n" + SEPARATOR + b"1 abc 10 -1\nGET /cut",
    ],
    "har_reader": [
        _HAR,
        b"\xef\xbb\xbf" + _HAR,
        b'{"log": {"entries": []}}',
        b"[1, 2",
        # regression: lone surrogate escapes (JSON allows them) reached the writers
        _HAR.replace(b"/p?q=1", b"/\\ud800").replace(b"h.test", b"h\\udc80"),
    ],
    "accesslog_line": [
        b'1.2.3.4 - - [25/Oct/2016:14:49:33 +0200] "GET / HTTP/1.1" 200 612 "-" "UA"\n'
        b'host.test 1.2.3.4 - - [09/Jun/2020:12:10:39 -0700] "HEAD /x HTTP/1.0" 206 7 "r" "u"\n'
        b'127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-"',
        b"https 2018-07-02T22:23:00.186641Z app/lb/1 1.2.3.4:2817 10.0.0.1:80 0.1 0.1 0.1 200 "
        b'200 0 57 "GET https://www.example.com:443/p?a=1 HTTP/1.1" "curl/7.46.0" - -\n'
        b"2015-05-13T23:39:43.945958Z lb 1.2.3.4:2817 10.0.0.1:80 0.1 0.1 0.1 200 200 0 29 "
        b'"GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -',
        # regression: a year-1 timestamp made an exchange JSON could not hold
        b'0001-01-01T00:00:00 \x00 \x00 \x00 \x00 \x00 \x00 \x00 \x00 \x00 \x00 "A \x00"',
    ],
    "jsonl_reader": [_JSONL + b"\n", _JSONL + b"\n" + _JSONL[:40]],
    "gor_lean": [
        b"1 a 1700000000000000000 -1\n"
        + _REQ
        + SEPARATOR
        + b"1 b 2 -1 rg.v=1\n"
        + _REQ
        + SEPARATOR,
        b"1 a 1 -1\n" + _REQ + SEPARATOR + b"1 x y\n" + SEPARATOR + b"1 c 9999999999999999999\nGET",
    ],
    "gor_limits": [
        b"1 abc 10 -1\n" + _REQ + SEPARATOR + b"1 def 11 -1\n" + _REQ * 4 + SEPARATOR,
        b"\x00" * 300,
    ],
    "line_limits": [_JSONL + b"\n" + _JSONL[:40], b"\x00" * 300, b"{" + b" " * 400 + b"}\n"],
    "har_limits": [_HAR, _HAR[: len(_HAR) // 2], b"\x00" * 100, b" " * 5000],
    "zstd_frames": [b"", b"abc" * 100, bytes(range(256))],
    "mitm_reader": _MITM_SEEDS,
}
