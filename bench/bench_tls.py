"""HTTPS decryption throughput: ``replaygate`` reading a capture with ``--tls-keylog``
against ``tshark -o tls.keylog_file:FILE`` on the same file, in the same run.

``python -m bench tls [--full]``. The captures are real TLS conversations made in memory by
Python's ``ssl`` (keys from ``keylog_filename``), written as pcap: workloads of small
keep-alive GETs (many records, many exchanges) and of 256 KiB responses (bulk decryption),
each in TLS 1.2 (ECDHE-RSA-AES128-GCM-SHA256) and TLS 1.3 (TLS_AES_256_GCM_SHA384).

replaygate reads the file to exchanges (``formats.pcap.read``: decode, reassemble,
decrypt, parse HTTP/1). tshark runs ``-2 -Y http.request -T fields -e http.request.uri``,
the least it must do to report the same requests. ``ratio`` = tshark's time / ours (> 1:
replaygate is faster). Without tshark only our figures are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.protocol.tlsconv import converse, pcap_bytes, segments

from replaygate.formats import ReadOptions
from replaygate.formats.pcap import read
from replaygate.pipeline import Counters

_SMALL_RESP = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n"
    b'{"id": 12345, "ok": true}'
)


def _workload(kind: str, n: int) -> list[tuple[bytes, bytes]]:
    if kind == "small":
        return [(b"GET /api/items/%d HTTP/1.1\r\nHost: shop.test\r\n\r\n" % i, _SMALL_RESP)
                for i in range(n)]  # fmt: skip
    body = os.urandom(256 << 10)
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    return [(b"GET /file/%d HTTP/1.1\r\nHost: shop.test\r\n\r\n" % i, resp) for i in range(n)]


def _make(tmp: Path, kind: str, n: int, version: ssl.TLSVersion) -> tuple[Path, Path, int]:
    keylog = tmp / f"{kind}-{version.name}.keys"
    ciphers = "ECDHE-RSA-AES128-GCM-SHA256" if version == ssl.TLSVersion.TLSv1_2 else None
    conv, _ = converse(_workload(kind, n), str(keylog), version=version, ciphers=ciphers)
    segs = segments(conv.flights, mss=16384)
    pcap = tmp / f"{kind}-{version.name}.pcap"
    pcap.write_bytes(pcap_bytes(segs))
    return pcap, keylog, sum(len(s.payload) for s in segs)


def _ours(pcap: Path, keylog: Path) -> tuple[float, int]:
    t = time.perf_counter()
    n = sum(
        1
        for _ in read(str(pcap), ReadOptions(counters=Counters(),
                                             extra={"tls_keylog": str(keylog)}))
    )  # fmt: skip
    return time.perf_counter() - t, n


def _tshark(pcap: Path, keylog: Path) -> tuple[float, int]:
    t = time.perf_counter()
    out = subprocess.run(
        ["tshark", "-2", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}",
         "-d", "tcp.port==443,tls", "-Y", "http.request", "-T", "fields",
         "-e", "http.request.uri"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return time.perf_counter() - t, len(out.splitlines())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench tls")
    ap.add_argument("--full", action="store_true", help="larger captures (slower)")
    args = ap.parse_args(argv)
    sizes = {"small": 20_000 if args.full else 1_000, "bulk": 400 if args.full else 20}
    have_tshark = shutil.which("tshark") is not None
    print(f"{'workload':<22}{'MB':>8}{'exch':>7}{'ours MB/s':>11}{'ex/s':>9}"
          f"{'tshark MB/s':>13}{'ratio':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rg-bench-tls-") as d:
        for kind, n in sizes.items():
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                pcap, keylog, payload = _make(Path(d), kind, n, version)
                mb = payload / 1e6
                ours_s, ours_n = _ours(pcap, keylog)
                assert ours_n == n, (ours_n, n)
                line = (f"{kind + ' ' + version.name:<22}{mb:>8.1f}{n:>7}"
                        f"{mb / ours_s:>11.1f}{n / ours_s:>9.0f}")  # fmt: skip
                if have_tshark:
                    ts_s, ts_n = _tshark(pcap, keylog)
                    line += f"{mb / ts_s:>13.1f}{ts_s / ours_s:>8.2f}"
                    if ts_n != n:
                        line += f"  (tshark saw {ts_n})"
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
