"""Recording proxy: throughput and added latency against direct calls, same run.

nginx (1 worker) on loopback; ``wrk --latency`` straight at nginx, then through
``replaygate proxy --upstream nginx -o run.gor`` (a real CLI process, recording to disk),
then through the reference reverse proxy: a second nginx (1 worker) with ``proxy_pass`` to
the first over keep-alive upstream connections. Each load is measured back to back:
unpaced (throughput) and paced with a Lua ``delay()`` (latency at a load both can carry).
Reported: req/s, p50/p99 latency and the added p50/p99, the ratio to nginx ``proxy_pass``,
the CPU time per proxied request of each proxy, the proxy's recorded/dropped counters.

    python -m bench proxy            # 5 s per run
    python -m bench proxy --seconds=15
    python -m bench proxy --callgrind=3000   # CPU instructions per request (load-independent)

``--callgrind N``: on a shared machine wall-clock figures move with the neighbours' load, so
this counts the proxy's user-space instructions instead: the proxy runs under
``valgrind --tool=callgrind`` (instrumentation switched on only around the measured part),
64 keep-alive connections send N GETs through it (a fixed count, not a duration), and the
instructions of each proxy thread are divided by N. ``RG_BENCH_KEEP=DIR`` keeps callgrind's
files in DIR (one per thread: ``callgrind_annotate --inclusive=yes DIR/cg.out-03``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from replaygate.testing.servers import NginxServer, free_port, wait_for_port

BIN = str(Path(sys.executable).parent / "replaygate")

LOADS = [("paced c=8 delay=1ms", 8, 1), ("paced c=32 delay=1ms", 32, 1), ("unpaced c=64", 64, 0)]


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


def _wrk(url: str, conns: int, delay: int, seconds: float, tmp: Path) -> dict[str, Any]:
    args = ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--latency"]
    if delay:
        script = tmp / "d.lua"
        script.write_text(f"function delay()\n  return {delay}\nend\n")
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return {
        "n": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(lat["50"]),
        "p99": _ms(lat["99"]),
        "errors": len(re.findall(r"Non-2xx|Socket errors", out)),
    }


_PROXY_PASS = """
        location / {
            proxy_pass http://rg_up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
"""


def _nginx_worker(ng: NginxServer) -> psutil.Process:
    """The (single) worker process of an nginx started by NginxServer."""
    assert ng._proc is not None
    kids = psutil.Process(ng._proc.pid).children()
    return kids[0] if kids else psutil.Process(ng._proc.pid)


def _cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def _sys_s(p: psutil.Process) -> float:
    return float(p.cpu_times().system)


_LOAD = """
import asyncio, re, sys
n, conns, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
req = b"GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUser-Agent: bench\\r\\nAccept: */*\\r\\n\\r\\n"
left = n
async def one():
    global left
    r, w = await asyncio.open_connection("127.0.0.1", port)
    while left > 0:
        left -= 1
        w.write(req)
        head = await r.readuntil(b"\\r\\n\\r\\n")
        await r.readexactly(int(re.search(rb"(?i)content-length: *(\\d+)", head).group(1)))
    w.close()
async def main():
    await asyncio.gather(*(one() for _ in range(conns)))
asyncio.run(main())
"""


def _callgrind(n: int) -> int:
    """Instructions per proxied and recorded request, per thread of the proxy process."""
    if shutil.which("valgrind") is None:
        print("bench proxy --callgrind: valgrind not installed; skipped")
        return 0
    keep = os.environ.get("RG_BENCH_KEEP")  # a directory: keep callgrind's files there
    with tempfile.TemporaryDirectory(prefix="rg-bench-proxy-") as d, NginxServer() as ng:
        tmp = Path(keep or d)
        port = free_port()
        load = [sys.executable, "-c", _LOAD]
        px = subprocess.Popen(
            [
                *("valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes"),
                f"--callgrind-out-file={tmp}/cg.out",
                *(sys.executable, BIN, "proxy", "--listen", f"127.0.0.1:{port}"),
                *("--upstream", ng.url, "-o", str(tmp / "run.gor")),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_port("127.0.0.1", port, timeout=300)
            subprocess.run([*load, "300", "64", str(port)], check=True)  # warm up
            ctl = ["callgrind_control", "-i"]
            subprocess.run([*ctl, "on", str(px.pid)], capture_output=True, check=True)
            subprocess.run([*load, str(n), "64", str(port)], check=True)
            subprocess.run([*ctl, "off", str(px.pid)], capture_output=True, check=True)
        finally:
            px.send_signal(signal.SIGTERM)
            _, err = px.communicate(timeout=600)
        per = []
        for f in sorted(tmp.glob("cg.out*")):
            found = re.findall(r"^(?:summary|totals): (\d+)", f.read_text(errors="replace"), re.M)
            total = max((int(x) for x in found), default=0)
            if total:
                per.append(total / n)
    summary = [ln for ln in err.splitlines() if ln.startswith("replaygate: proxy:")]
    counters = dict(re.findall(r"(\w+)=(\d+)", summary[-1])) if summary else {}
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {n} GETs over 64 connections")
    print(
        f"proxy instructions per request: {sum(per):,.0f} "
        f"(by thread: {', '.join(f'{x:,.0f}' for x in per)}); recorded "
        f"{counters.get('recorded')}, dropped_recordings {counters.get('dropped_recordings')}"
    )
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench proxy")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--callgrind", type=int, default=0, metavar="N")
    a = ap.parse_args(argv)
    if a.callgrind:
        return _callgrind(a.callgrind)
    if shutil.which("wrk") is None:
        print("bench proxy: wrk not installed; skipped")
        return 0
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="rg-bench-proxy-") as d,
        NginxServer() as ng,
        NginxServer(
            _PROXY_PASS,
            http_extra=f"upstream rg_up {{ server 127.0.0.1:{ng.port}; keepalive 64; }}",
        ) as ref,
    ):
        tmp = Path(d)
        port = free_port()
        out = tmp / "run.gor"
        px = subprocess.Popen(
            [BIN, "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", ng.url, "-o", str(out)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_port("127.0.0.1", port)
            proc = psutil.Process(px.pid)
            ref_proc = _nginx_worker(ref)
            for label, conns, delay in LOADS:
                direct = _wrk(ng.url, conns, delay, a.seconds, tmp)
                c0 = _cpu_s(ref_proc)
                nx = _wrk(ref.url, conns, delay, a.seconds, tmp)
                nx["cpu_us"] = (_cpu_s(ref_proc) - c0) / max(1, nx["n"]) * 1e6
                c0, s0 = _cpu_s(proc), _sys_s(proc)
                proc.cpu_percent(None)
                via = _wrk(f"http://127.0.0.1:{port}/", conns, delay, a.seconds, tmp)
                cpu = proc.cpu_percent(None)
                via["cpu_us"] = (_cpu_s(proc) - c0) / max(1, via["n"]) * 1e6
                via["sys_us"] = (_sys_s(proc) - s0) / max(1, via["n"]) * 1e6
                rows.append((label, direct, via, cpu, nx))
                print(
                    f"  {label:<22} direct {direct['rate']:>8.0f} req/s p50 {direct['p50']:.2f} "
                    f"p99 {direct['p99']:.2f} ms | proxy {via['rate']:>8.0f} req/s "
                    f"p50 {via['p50']:.2f} p99 {via['p99']:.2f} ms | cpu {cpu:.0f}% | "
                    f"nginx proxy_pass {nx['rate']:>8.0f} req/s",
                    flush=True,
                )
        finally:
            px.send_signal(signal.SIGTERM)
            _, err = px.communicate(timeout=300)
    summary = [ln for ln in err.splitlines() if ln.startswith("replaygate: proxy:")]
    counters = dict(re.findall(r"(\w+)=(\d+)", summary[-1])) if summary else {}
    print()
    print(
        "| load | direct req/s | proxy req/s | ratio | direct p50/p99 ms | proxy p50/p99 ms "
        "| added p50/p99 ms | proxy CPU% | nginx proxy_pass req/s | proxy / proxy_pass "
        "| CPU us/req proxy (of it system) | CPU us/req proxy_pass |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, dr, vr, cpu, nx in rows:
        print(
            f"| {label} | {dr['rate']:.0f} | {vr['rate']:.0f} | {vr['rate'] / dr['rate']:.2f} "
            f"| {dr['p50']:.2f} / {dr['p99']:.2f} | {vr['p50']:.2f} / {vr['p99']:.2f} "
            f"| {vr['p50'] - dr['p50']:+.2f} / {vr['p99'] - dr['p99']:+.2f} | {cpu:.0f} "
            f"| {nx['rate']:.0f} | {vr['rate'] / nx['rate']:.2f} "
            f"| {vr['cpu_us']:.1f} ({vr['sys_us']:.1f}) "
            f"| {nx['cpu_us']:.1f} |"
        )
    total = sum(v["n"] for _, _, v, _, _ in rows)
    print(
        f"\nproxied requests (wrk) {total}; proxy forwarded {counters.get('forwarded')}, "
        f"recorded {counters.get('recorded')}, dropped_recordings "
        f"{counters.get('dropped_recordings')}, errors {counters.get('errors')}"
    )
    return 0
