"""Extraction benchmark: pcap -> exchanges, against tshark and tcpdump on the same file.

``python -m bench extract [--exchanges=N] [--per-conn=K] [--file=PATH] [--keep] [--no-tshark]
[--no-convert]``

Generates a classic pcap of N exchanges (default 100 000) on keep-alive connections of K
exchanges each, with mixed sizes (small GETs, POSTs with bodies, responses from 120 B to
32 KiB, some chunked), built with :func:`replaygate.testing.frames.synth_flow`: handshake,
MSS segmentation, ACKs, FIN. Then, in the same run, times:

* frames only: ``iter_frames`` + ``decode_frame`` (this area's share of the work);
* replaygate extracting exchanges (``formats.pcap.read``, counted);
* ``replaygate convert file.pcap out.gor`` (the CLI end to end), when the command exists;
* ``tshark -r file -Y http.request -T fields -e frame.number | wc -l`` (HTTP requests);
* ``tcpdump -r file -w /dev/null`` (reading the records, nothing more).

It prints exchanges/s, MB/s and the ratios. The exchange counts must agree with what was
generated, or the run fails: a fast wrong answer is not a result.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replaygate.formats import ReadOptions
from replaygate.pipeline import Counters
from replaygate.protocol.pcapfile import PcapWriter, iter_frames
from replaygate.testing.frames import synth_flow

__all__ = ["generate", "main"]

_SIZES = [(0.60, 100, 600), (0.30, 800, 2500), (0.08, 4000, 10000), (0.02, 16000, 32768)]


def _body_size(rng: random.Random) -> int:
    x = rng.random()
    for share, lo, hi in _SIZES:
        if x < share:
            return rng.randint(lo, hi)
        x -= share
    return 200


def _pair(rng: random.Random, i: int) -> tuple[bytes, bytes]:
    if rng.random() < 0.2:
        body = b'{"item": %d, "data": "' % i + b"x" * rng.randint(50, 1500) + b'"}'
        req = (
            b"POST /api/v1/orders/%d HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench/1.0\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (i, len(body))
        ) + body
    else:
        req = (
            b"GET /products/%d?page=%d&sort=price HTTP/1.1\r\nHost: shop.example\r\n"
            b"User-Agent: Mozilla/5.0 (bench)\r\nAccept: */*\r\nCookie: session=abc%d\r\n\r\n"
            % (i % 5000, i % 17, i % 999)
        )
    n = _body_size(rng)
    payload = b"y" * n
    if rng.random() < 0.15:
        chunks = [payload[k : k + 4096] for k in range(0, n, 4096)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
        resp = head + framed
    else:
        resp = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: nginx\r\n"
            b"Content-Length: %d\r\n\r\n" % n
        ) + payload
    return req, resp


def generate(path: Path, exchanges: int, per_conn: int, seed: int = 7) -> int:
    """Write the benchmark pcap; returns how many exchanges it holds."""
    rng = random.Random(seed)
    done = 0
    conn = 0
    t = 1_700_000_000_000_000_000
    with PcapWriter(path) as w:
        while done < exchanges:
            k = min(per_conn, exchanges - done)
            pairs = [_pair(rng, done + j) for j in range(k)]
            client = (f"10.{1 + conn // 60000 % 200}.{conn // 250 % 240}.{1 + conn % 250}",
                      1024 + conn % 60000)  # fmt: skip
            flow = synth_flow(pairs, client=client, server=("10.0.0.2", 80), start_ns=t,
                              step_ns=20_000)  # fmt: skip
            w.write_many(flow)
            t = flow[-1][0] + 50_000
            done += k
            conn += 1
    return done


def _time(fn: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - t0, out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench extract", description=__doc__.split("\n")[0])
    ap.add_argument("--exchanges", type=int, default=100_000)
    ap.add_argument("--per-conn", type=int, default=10)
    ap.add_argument("--file", help="use this pcap instead of generating one (counts unchecked)")
    ap.add_argument("--keep", action="store_true", help="keep the generated pcap")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--no-convert", action="store_true")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="rg-bench-extract-"))
    try:
        if args.file:
            path, expect = Path(args.file), None
        else:
            path = tmp / "bench.pcap"
            gen_s, expect = _time(lambda: generate(path, args.exchanges, args.per_conn))
            print(f"generated {expect} exchanges in {gen_s:.1f}s", flush=True)
        mb = path.stat().st_size / 1e6
        frames = sum(1 for _ in iter_frames(str(path)))
        print(f"file: {path} {mb:.1f} MB, {frames} frames")

        from replaygate.protocol.linklayer import decode_frame

        def frames_only() -> int:
            c = Counters()
            return sum(
                1 for f in iter_frames(str(path), c) if decode_frame(f.linktype, f.data, f.ts_ns, c)
            )

        t_frames, nseg = _time(frames_only)
        print(f"frames+decode: {t_frames:.2f}s  {frames / t_frames:,.0f} frames/s  "
              f"{mb / t_frames:.0f} MB/s  ({nseg} TCP segments)", flush=True)  # fmt: skip

        from replaygate.formats.pcap import read

        counters = Counters()
        t_ours, n = _time(lambda: sum(1 for _ in read(str(path), ReadOptions(counters=counters))))
        assert isinstance(n, int)
        print(f"replaygate read: {t_ours:.2f}s  {n / t_ours:,.0f} exchanges/s  "
              f"{mb / t_ours:.1f} MB/s  ({n} exchanges)", flush=True)  # fmt: skip
        rc = 0
        if expect is not None and n != expect:
            print(f"FAIL: extracted {n} exchanges, generated {expect}")
            rc = 1

        exe = Path(sys.executable).with_name("replaygate")
        if not args.no_convert and exe.exists():
            out = tmp / "out.gor"
            t_conv, proc = _time(lambda: subprocess.run(
                [str(exe), "convert", str(path), str(out)], capture_output=True, text=True))  # fmt: skip
            assert isinstance(proc, subprocess.CompletedProcess)
            if proc.returncode == 0:
                print(f"replaygate convert -> .gor: {t_conv:.2f}s  {n / t_conv:,.0f} exchanges/s  "
                      f"({out.stat().st_size / 1e6:.1f} MB written) {proc.stderr.strip()[-200:]}")  # fmt: skip
            else:
                print(
                    f"replaygate convert failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"
                )

        if shutil.which("tcpdump"):
            t_td, _ = _time(lambda: subprocess.run(
                ["tcpdump", "-r", str(path), "-w", "/dev/null"], capture_output=True, check=True))  # fmt: skip
            print(f"tcpdump -r -w /dev/null: {t_td:.2f}s  {mb / t_td:.0f} MB/s   "
                  f"frames+decode / tcpdump time = {t_frames / t_td:.1f}x, "
                  f"full extraction / tcpdump time = {t_ours / t_td:.1f}x")  # fmt: skip
        if not args.no_tshark and shutil.which("tshark"):
            cmd = (f"tshark -r {path} -Y http.request -T fields -e frame.number 2>/dev/null"
                   " | wc -l")  # fmt: skip
            t_ts, proc = _time(
                lambda: subprocess.run(cmd, shell=True, capture_output=True, text=True)
            )
            assert isinstance(proc, subprocess.CompletedProcess)
            nts = int(proc.stdout.strip() or 0)
            print(f"tshark -Y http.request: {t_ts:.2f}s  {nts / t_ts:,.0f} requests/s  ({nts} requests)"
                  f"   replaygate is {t_ts / t_ours:.1f}x tshark's speed")  # fmt: skip
            if expect is not None and nts != expect:
                print(f"note: tshark counted {nts} requests, generated {expect}")
        notes = {k: v for k, v in counters.notes.items() if v}
        print(f"counters: dropped={dict(counters.dropped)} notes={notes}")
        if args.keep and not args.file:
            kept = Path.cwd() / "bench-extract.pcap"
            shutil.move(str(path), kept)
            print(f"kept {kept}")
        return rc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
