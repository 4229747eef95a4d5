"""HTTP1StreamParser alone: exchanges/s and MB/s on generated streams, against httptools
(llhttp, C) parsing the same bytes in the same chunks in the same run.

``python -m bench parse [--full] [--repeat=N]``. Workloads: small keep-alive GETs (one
segment per message, both directions), 1 MB response bodies (64 KiB segments), chunked
responses (4 KiB chunks, 1460-byte segments), and pipelined small GETs (many per segment).

The httptools reference keeps url, header values and body pieces through its callbacks (the
least a user must do to get messages); replaygate also keeps the exact raw bytes, pairs
requests and responses, and builds Exchange objects with stable ids. ``ratio`` is replaygate
speed / httptools speed; the goal is >= 50k small exchanges/s.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime

Stream = list[tuple[bool, bytes]]  # (from_client, chunk) in feed order


def _small(n: int) -> tuple[Stream, int]:
    body = b'{"id": 12345, "ok": true}'
    resp = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Date: Tue, 01 Dec 2026 08:00:00 GMT\r\n\r\n" % len(body) + body
    )
    s: Stream = []
    for i in range(n):
        s.append(
            (
                True,
                b"GET /api/items/%d?page=2 HTTP/1.1\r\nHost: shop.example.com\r\n"
                b"User-Agent: bench/1.0\r\nAccept: application/json\r\n\r\n" % i,
            )
        )
        s.append((False, resp))
    return s, n


def _pipelined(n: int, depth: int = 16) -> tuple[Stream, int]:
    req = b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n"
    resp = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"
    s: Stream = []
    for _ in range(n // depth):
        s.append((True, req * depth))
        s.append((False, resp * depth))
    return s, (n // depth) * depth


def _big(n: int, size: int = 1 << 20, seg: int = 64 << 10) -> tuple[Stream, int]:
    body = b"b" * size
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body
    s: Stream = []
    for i in range(n):
        s.append((True, b"GET /file/%d HTTP/1.1\r\nHost: h\r\n\r\n" % i))
        s += [(False, resp[j : j + seg]) for j in range(0, len(resp), seg)]
    return s, n


def _chunked(
    n: int, size: int = 64 << 10, chunk: int = 4096, seg: int = 1460
) -> tuple[Stream, int]:
    piece = b"%x\r\n" % chunk + b"c" * chunk + b"\r\n"
    resp = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + piece * (size // chunk)
        + b"0\r\n\r\n"
    )
    s: Stream = []
    for i in range(n):
        s.append((True, b"GET /c/%d HTTP/1.1\r\nHost: h\r\n\r\n" % i))
        s += [(False, resp[j : j + seg]) for j in range(0, len(resp), seg)]
    return s, n


def run_replaygate(stream: Stream) -> int:
    from replaygate.protocol.http1 import HTTP1StreamParser

    p = HTTP1StreamParser(id_seed="bench")
    n = 0
    ts = 1
    cd, sd = p.client_data, p.server_data
    for from_client, chunk in stream:
        ts += 1
        n += len(cd(chunk, ts) if from_client else sd(chunk, ts))
    return n + len(p.close(ts))


def run_httptools(stream: Stream) -> int:
    import httptools

    class Proto:
        """The least a user of httptools must do to get messages: keep url, headers, body."""

        def __init__(self) -> None:
            self.done = 0
            self.parts: list[bytes] = []

        def on_url(self, url: bytes) -> None:
            self.parts.append(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.parts.append(value)

        def on_body(self, body: bytes) -> None:
            self.parts.append(body)

        def on_message_complete(self) -> None:
            self.done += 1
            self.parts = []

    rq, rs = Proto(), Proto()
    req = httptools.HttpRequestParser(rq)
    resp = httptools.HttpResponseParser(rs)
    for from_client, chunk in stream:
        (req if from_client else resp).feed_data(chunk)
    return min(rq.done, rs.done)


def _best(fn: Callable[[Stream], int], stream: Stream, repeat: int) -> tuple[float, int]:
    best = float("inf")
    got = 0
    for _ in range(repeat):
        t = time.perf_counter()
        got = fn(stream)
        best = min(best, time.perf_counter() - t)
    return best, got


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench parse")
    ap.add_argument("--full", action="store_true", help="bigger workloads (about 4x)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per workload, best kept")
    opts = ap.parse_args(argv)
    k = 4 if opts.full else 1
    workloads = {
        "small keep-alive GET": _small(50_000 * k),
        "pipelined GET x16": _pipelined(100_000 * k),
        "1 MB bodies": _big(100 * k),
        "chunked 64 KB bodies": _chunked(500 * k),
    }
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {platform.python_implementation()} "
        f"{platform.python_version()}, best of {opts.repeat}"
    )
    print(
        f"{'workload':24} {'exchanges':>9} {'replaygate ex/s':>16} {'MB/s':>8} "
        f"{'httptools ex/s':>15} {'MB/s':>8} {'ratio':>6}"
    )
    rc = 0
    for name, (stream, expected) in workloads.items():
        nbytes = sum(len(c) for _, c in stream)
        t_rg, got = _best(run_replaygate, stream, opts.repeat)
        t_ht, got_ht = _best(run_httptools, stream, opts.repeat)
        if got != expected or got_ht != expected:
            print(f"{name}: wrong count: replaygate {got}, httptools {got_ht}, expected {expected}")
            rc = 1
        print(
            f"{name:24} {expected:>9} {expected / t_rg:>16,.0f} {nbytes / t_rg / 1e6:>8.1f} "
            f"{expected / t_ht:>15,.0f} {nbytes / t_ht / 1e6:>8.1f} {t_ht / t_rg:>6.2f}"
        )
    return rc
