"""Passive HTTP/2 parsing throughput: ``protocol.http2.HTTP2Parser`` on an h2c connection
against ``protocol.http1.HTTP1StreamParser`` on the same requests and answers as HTTP/1.1,
in the same run.

``python -m bench http2 [--full]``. Workloads: small JSON GETs (HPACK and framing cost per
exchange) and 64 KiB answers in 16 KiB DATA frames (bulk). Both parsers get each
direction in 64 KiB pieces, interleaved. ``ratio`` = HTTP/1 time / HTTP/2 time (> 1: the
HTTP/2 path is faster). Replay over HTTP/2 does not exist yet, so there is no h2load figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.protocol import h2frames as f

from replaygate.model import ConnectionId
from replaygate.protocol.http1 import HTTP1StreamParser
from replaygate.protocol.http2 import PREFACE, HTTP2Parser

_CONN = ConnectionId("127.0.0.1", 40000, "127.0.0.1", 8080)
_PIECE = 64 << 10


def _h2(n: int, body: bytes) -> tuple[bytes, bytes]:
    c, s = f.Side(), f.Side()
    cb, sb = [PREFACE + f.settings()], [f.settings()]
    for i in range(n):
        sid = 1 + 2 * i
        cb.append(c.headers(sid, [*f.get(f"/api/items/{i}", "shop.test"),
                                  ("accept", "application/json"), ("user-agent", "bench/1")],
                            end=True))  # fmt: skip
        sb.append(s.headers(sid, [(":status", "200"), ("content-type", "application/json"),
                                  ("content-length", str(len(body)))]))  # fmt: skip
        for j in range(0, len(body), 16384):
            sb.append(s.data(sid, body[j : j + 16384], end=j + 16384 >= len(body)))
    return b"".join(cb), b"".join(sb)


def _h1(n: int, body: bytes) -> tuple[bytes, bytes]:
    req = b"GET /api/items/%d HTTP/1.1\r\nHost: shop.test\r\naccept: application/json\r\nuser-agent: bench/1\r\n\r\n"
    resp = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        % len(body)
        + body
    )
    return b"".join(req % i for i in range(n)), resp * n


def _run(
    parser: HTTP1StreamParser | HTTP2Parser, client: bytes, server: bytes
) -> tuple[float, int]:
    t = time.perf_counter()
    out = 0
    for i in range(0, max(len(client), len(server)), _PIECE):
        if client[i : i + _PIECE]:
            out += len(parser.client_data(client[i : i + _PIECE], i))
        if server[i : i + _PIECE]:
            out += len(parser.server_data(server[i : i + _PIECE], i))
    out += len(parser.close(1))
    return time.perf_counter() - t, out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench http2")
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args(argv)
    scale = 10 if args.full else 1
    for name, n, body in (("small", 2000 * scale, b'{"id": 12345, "ok": true}'),
                          ("64k", 100 * scale, os.urandom(64 << 10))):  # fmt: skip
        h2c, h2s = _h2(n, body)
        h1c, h1s = _h1(n, body)
        t2, n2 = _run(HTTP2Parser(_CONN), h2c, h2s)
        t1, n1 = _run(HTTP1StreamParser(_CONN), h1c, h1s)
        assert n1 == n2 == n, (n1, n2, n)
        print(f"{name:6} {n:6} exchanges  http2 {t2 / n * 1e6:7.1f} us/ex  "
              f"http1 {t1 / n * 1e6:7.1f} us/ex  ratio(http1/http2) {t1 / t2:5.2f}")  # fmt: skip
    return 0
