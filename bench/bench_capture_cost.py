"""CPU cost of live capture per exchange, as instruction counts (valgrind callgrind), which a
busy shared machine does not distort, against tcpdump reading the same packets in the same run.

``python -m bench capture_cost [--exchanges=N] [--file=PCAP]``

Traffic: wrk against nginx on ``lo`` as it really looks (64 interleaved keep-alive
connections, a 41-byte GET and a 149-byte response per exchange, one segment each, ACKs
piggybacked), generated with :func:`replaygate.testing.frames.build_tcp_frame`, or a real
capture given with ``--file``. The packets are handed over the way libpcap's ``next_batch``
hands them to ``capture`` (one bytes object per block of 4096 frames plus packed (sec, usec,
offset, caplen)), then, as capture's worker does: ``decode_frame`` per frame,
``TrafficAssembler.feed_batch`` per block, and (``full``) the ``.gor`` writer.

Each stage runs in its own process under callgrind; a run that only loads the blocks is
subtracted, so start-up and imports do not count. Printed: instructions per exchange for
decode+assembly and for the whole worker+writer path, with the pure-Python modules and (when
``make accel`` built them) the compiled ones, and ``tcpdump -r FILE -w /dev/null``'s
instructions per exchange on the same file (minus reading one packet).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["generate", "main"]

_META = struct.Struct("=IIII")
_REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
_RESP = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 10:06:47 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 2\r\nConnection: keep-alive"
    b"\r\n\r\nok"
)


def generate(path: Path, exchanges: int, conns: int = 64) -> int:
    """wrk-like traffic on loopback: returns how many exchanges the file holds."""
    from replaygate.protocol.pcapfile import PcapWriter
    from replaygate.protocol.segment import ACK, PSH, SYN
    from replaygate.testing.frames import build_tcp_frame

    server = ("127.0.0.1", 8080)
    seqs = {}
    ts = 1_700_000_000_000_000_000
    frames: list[tuple[int, bytes]] = []

    def frame(cport: int, from_client: bool, flags: int, payload: bytes = b"") -> None:
        nonlocal ts
        c, s = seqs[cport]
        src, dst = (("127.0.0.1", cport), server) if from_client else (server, ("127.0.0.1", cport))
        seq, ack = (c, s) if from_client else (s, c)
        frames.append((ts, build_tcp_frame(src=src[0], dst=dst[0], sport=src[1], dport=dst[1],
                                           seq=seq, ack=ack, flags=flags, payload=payload)))  # fmt: skip
        n = len(payload) + (1 if flags & SYN else 0)
        seqs[cport] = (c + n, s) if from_client else (c, s + n)
        ts += 7_000

    ports = [40000 + i for i in range(conns)]
    for p in ports:
        seqs[p] = (1000 * p, 5000 * p)
        frame(p, True, SYN)
        frame(p, False, SYN | ACK)
        frame(p, True, ACK)
    done = 0
    with PcapWriter(path) as w:
        while done < exchanges:
            for p in ports[: exchanges - done]:
                frame(p, True, ACK | PSH, _REQ)
                frame(p, False, ACK | PSH, _RESP)
            done += min(conns, exchanges - done)
            w.write_many(frames)
            frames.clear()
    return done


_WORKER = r"""
import os, struct, sys
from replaygate.protocol.pcapfile import iter_frames
mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
META = struct.Struct("=IIII")
frames = list(iter_frames(path))
blocks = []
for i in range(0, len(frames), 4096):
    parts, meta, off = [], [], 0
    for f in frames[i : i + 4096]:
        parts.append(f.data)
        meta.append(META.pack(f.ts_ns // 10**9, f.ts_ns % 10**9 // 1000, off, len(f.data)))
        off += len(f.data)
    blocks.append((f.linktype, b"".join(parts), b"".join(meta)))
del frames, parts, meta
import replaygate.protocol
from replaygate.formats import WriteOptions, open_writer
from replaygate.pipeline import Counters
from replaygate.protocol.assembler import AssemblerConfig, TrafficAssembler
from replaygate.protocol.linklayer import decode_frame
sink = open_writer(out, WriteOptions())
asm = TrafficAssembler(AssemblerConfig())
link = Counters()
n = 0
if mode != "load":
    for lt, data, meta in blocks:
        segs = []
        for sec, usec, off, caplen in META.iter_unpack(meta):
            seg = decode_frame(lt, data[off : off + caplen], sec * 1_000_000_000 + usec * 1000, link)
            if seg is not None:
                segs.append(seg)
        got = asm.feed_batch(segs)
        n += len(got)
        if mode == "full":
            for ex in got:
                sink.write(ex)
    got = asm.flush()
    n += len(got)
    if mode == "full":
        for ex in got:
            sink.write(ex)
sink.close()
print("compiled" if replaygate.protocol.compiled else "pure", n)
"""


def _callgrind(cmd: list[str], tmp: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    out = tmp / "cg.out"
    p = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or m is None:
        raise RuntimeError(f"{cmd[0]} under callgrind failed: {p.stderr[-400:]}")
    out.unlink(missing_ok=True)
    return int(m.group(1)), p.stdout.strip()


def _python_costs(pcap: Path, tmp: Path, pure: bool) -> dict[str, float]:
    env = dict(os.environ)
    if pure:
        env["REPLAYGATE_PURE_PYTHON"] = "1"
    worker = tmp / "worker.py"
    worker.write_text(_WORKER)
    ir: dict[str, int] = {}
    n = 0
    build = ""
    for mode in ("load", "asm", "full"):
        ir[mode], out = _callgrind(
            [sys.executable, str(worker), mode, str(pcap), str(tmp / "out.gor")], tmp, env
        )
        if mode != "load":
            build, count = out.split()
            n = int(count)
    return {
        "exchanges": n,
        "asm": (ir["asm"] - ir["load"]) / max(1, n),
        "full": (ir["full"] - ir["load"]) / max(1, n),
        "compiled": float(build == "compiled"),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench capture_cost", description=__doc__.split("\n")[0])
    ap.add_argument("--exchanges", type=int, default=3000)
    ap.add_argument("--file", help="a capture to measure instead of the generated traffic")
    a = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("bench capture_cost: valgrind not installed; skipped")
        return 0
    import replaygate.protocol

    with tempfile.TemporaryDirectory(prefix="rg-bench-capcost-") as d:
        tmp = Path(d)
        pcap = Path(a.file) if a.file else tmp / "wrk-like.pcap"
        if not a.file:
            generate(pcap, a.exchanges)
        builds = [True, False] if replaygate.protocol.compiled else [True]
        rows = []
        for pure in builds:
            r = _python_costs(pcap, tmp, pure)
            rows.append(r)
            name = "compiled (make accel)" if r["compiled"] else "pure Python"
            print(f"replaygate {name:22} {int(r['exchanges']):>7} exchanges  "
                  f"decode+assemble {r['asm']:>9,.0f}  +.gor writer {r['full']:>9,.0f} "
                  "instructions/exchange", flush=True)  # fmt: skip
        if not replaygate.protocol.compiled:
            print("compiled build: not built (make accel)")
        if shutil.which("tcpdump"):
            full, _ = _callgrind(["tcpdump", "-Z", "root", "-r", str(pcap), "-w", "/dev/null"], tmp)
            one, _ = _callgrind(
                ["tcpdump", "-Z", "root", "-r", str(pcap), "-w", "/dev/null", "-c", "1"], tmp
            )
            td = (full - one) / max(1, rows[0]["exchanges"])
            print(f"tcpdump -r -w /dev/null (same packets)   {td:>9,.0f} instructions/exchange")
            for r in rows:
                name = "compiled" if r["compiled"] else "pure Python"
                print(f"ratio replaygate ({name}) / tcpdump: {r['full'] / max(1.0, td):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
