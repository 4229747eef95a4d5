"""Live capture under load: replaygate capture vs tcpdump, same wrk traffic, same run.

nginx (1 worker) on loopback; ``wrk`` at a series of request rates (wrk has no rate flag:
each step is a number of connections plus a per-request Lua ``delay()`` that paces them; the
last step is unpaced). For every step, started before wrk and stopped after it:

* ``replaygate capture -i lo -p PORT -o step.gor`` (a real CLI process; CPU% via psutil),
* ``tcpdump -i lo -B 65536 -w step.pcap port PORT`` as the reference capturer,
* with ``GOREPLAY=/path/to/gor`` (or ``GOREPLAY_BIN``; GoReplay 1.3.x) also ``gor --input-raw :PORT
  --input-raw-track-response --output-file step-gr.gor``, GoReplay capturing the same traffic.

Reported per step: requests wrk completed, exchanges replaygate captured complete, exchanges
found complete in tcpdump's pcap (counted with replaygate's pcap reader), kernel drops and
every other loss counter replaygate printed, CPU% of the capture process, and the **CPU time
per captured exchange** of each capturer (user+sys of the whole process after start-up, its
drain after wrk included; for tcpdump per exchange found in its pcap). The highest rate
at which replaygate captured 100% is printed at the end, and whether every shortfall above
it shows up in the counters (no silent loss).

    python -m bench capture                 # short: 4 steps x 5 s
    python -m bench capture --full          # 7 steps x 10 s
    python -m bench capture --engines       # libpcap next_batch vs raw AF_PACKET, read path
    python -m bench capture --soak=600      # steady rate for 10 min, RSS every 10 s
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
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil

from replaygate.testing.servers import NginxServer

BIN = str(Path(sys.executable).parent / "replaygate")

SHORT = [(4, 2), (16, 1), (64, 1), (64, 0)]  # (connections, delay ms; 0 = unpaced)
FULL = [(2, 2), (8, 1), (16, 1), (32, 1), (64, 1), (128, 1), (64, 0)]


def _wrk(url: str, conns: int, delay_ms: int, seconds: float, tmp: Path) -> tuple[int, float]:
    args = ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--latency"]
    if delay_ms:
        script = tmp / f"delay{delay_ms}.lua"
        script.write_text(f"function delay()\n  return {delay_ms}\nend\n")
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return n, rate


def _summary(stderr: str) -> dict[str, int]:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("replaygate: capture:")]
    if not lines:
        raise RuntimeError(f"capture printed no summary: {stderr[-500:]}")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


def _count_pcap(path: Path) -> int:
    from replaygate.formats import open_reader

    return sum(1 for ex in open_reader(path) if ex.complete)


def _stop(p: subprocess.Popen[str]) -> tuple[str, float]:
    """SIGINT, wait; (stderr, CPU seconds user+sys of the whole run)."""
    import threading

    err: list[str] = []
    assert p.stderr is not None
    reader = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    p.send_signal(signal.SIGINT)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    reader.join(60)
    return "".join(err), ru.ru_utime + ru.ru_stime


def _goreplay_complete(path: Path) -> int:
    """Exchanges with both request and response in GoReplay's output (it may add _N)."""
    from replaygate.formats.gor import read_exchanges

    n = 0
    for f in sorted(path.parent.glob(path.stem + "*.gor")):
        n += sum(1 for ex in read_exchanges(f) if ex.response is not None)
    return n


def _step(ng: NginxServer, conns: int, delay: int, seconds: float, tmp: Path) -> dict[str, Any]:
    gor, pcap = tmp / "step.gor", tmp / "step.pcap"
    gr_out = tmp / "step-gr.gor"
    gr_bin = os.environ.get("GOREPLAY") or os.environ.get("GOREPLAY_BIN")
    cap = subprocess.Popen(
        [BIN, "capture", "-i", "lo", "-p", str(ng.port), "-o", str(gor)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert cap.stderr is not None
    while "capturing on" not in cap.stderr.readline():
        if cap.poll() is not None:
            raise RuntimeError("capture did not start")
    startup_cpu = sum(psutil.Process(cap.pid).cpu_times()[:2])  # imports: not per exchange
    td = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-B", "65536", "-s", "0", "-w", str(pcap), "port", str(ng.port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    gr = None
    if gr_bin:
        gr = subprocess.Popen(
            [gr_bin, "--input-raw", f":{ng.port}", "--input-raw-track-response",
             "--output-file", str(gr_out), "--output-file-append"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    time.sleep(1.0)  # tcpdump up
    proc = psutil.Process(cap.pid)
    proc.cpu_percent(None)
    sent, rate = _wrk(ng.url, conns, delay, seconds, tmp)
    cpu = proc.cpu_percent(None)
    time.sleep(1.0)  # let the last packets and FINs arrive
    td_err, td_cpu = _stop(td)
    gr_cpu = _stop(gr)[1] if gr is not None else 0.0
    cpu_s = sum(proc.cpu_times()[:2])
    t_stop = time.monotonic()
    err, cap_cpu = _stop(cap)
    drain_s = time.monotonic() - t_stop  # backlog still being decoded/written after wrk
    s = _summary(err)
    m = re.search(r"(\d+) packets dropped by kernel", td_err)
    ref = _count_pcap(pcap)
    gr_n = _goreplay_complete(gr_out) if gr is not None else -1
    for f in tmp.glob("step-gr*.gor"):
        f.unlink()
    gor.unlink(missing_ok=True)
    pcap.unlink(missing_ok=True)
    losses = {
        k: v
        for k, v in s.items()
        if v
        and (
            k.startswith("packets_dropped")
            or k.startswith("dropped")
            or k.startswith("frames_dropped")
            or k in ("exchanges_incomplete", "requests_without_response", "lost_on_sink_error")
            or k in ("flows_expired_incomplete", "assembler_gaps")
        )
    }
    return {
        "conns": conns,
        "delay": delay,
        "rate": rate,
        "sent": sent,
        # what reached the file complete (written, not merely seen)
        "captured": min(s.get("exchanges_complete", 0), s.get("exchanges_written", 0)),
        "written": s.get("exchanges_written", 0),
        "tcpdump": ref,
        "tcpdump_drops": int(m.group(1)) if m else -1,
        "cpu": cpu,
        "cpu_s": cpu_s,
        "cpu_total_s": cap_cpu - startup_cpu,
        "tcpdump_cpu_s": td_cpu,
        "goreplay": gr_n,
        "goreplay_cpu_s": gr_cpu,
        "drain_s": drain_s,
        "losses": losses,
    }


def run_steps(steps: list[tuple[int, int]], seconds: float) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="rg-bench-cap-") as d, NginxServer() as ng:
        tmp = Path(d)
        for conns, delay in steps:
            r = _step(ng, conns, delay, seconds, tmp)
            rows.append(r)
            print(
                f"  c={conns:<3} delay={delay}ms  {r['rate']:>9.0f} req/s  sent {r['sent']:>8}  "
                f"replaygate {r['captured']:>8} ({100 * r['captured'] / max(1, r['sent']):6.2f}%)  "
                f"tcpdump {r['tcpdump']:>8} ({100 * r['tcpdump'] / max(1, r['sent']):6.2f}%)  "
                f"cpu {r['cpu']:5.1f}%  drain {r['drain_s']:.1f}s  losses {r['losses'] or '-'}",
                flush=True,
            )
    print()
    print(
        "| wrk -c / delay | req/s (wrk) | sent | replaygate complete | tcpdump complete "
        "| capture CPU% during wrk | capture CPU s (to wrk end) | stop+drain s | loss counters "
        "| CPU us/exchange: replaygate | tcpdump | GoReplay (complete) "
        "| replaygate / tcpdump | replaygate / GoReplay (goal <= 1) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pct = 100 * r["captured"] / max(1, r["sent"])
        tpct = 100 * r["tcpdump"] / max(1, r["sent"])
        loss = ", ".join(f"{k}={v}" for k, v in sorted(r["losses"].items())) or "none"
        ours = r["cpu_total_s"] / max(1, r["captured"]) * 1e6
        td_us = r["tcpdump_cpu_s"] / max(1, r["tcpdump"]) * 1e6
        gr_us = r["goreplay_cpu_s"] / max(1, r["goreplay"]) * 1e6
        gr = f"{gr_us:.1f} ({r['goreplay']})" if r["goreplay"] >= 0 else "not run (set GOREPLAY)"
        vs_gr = f"{ours / gr_us:.2f}x" if r["goreplay"] > 0 and gr_us > 0 else "-"
        print(
            f"| {r['conns']} / {r['delay'] or 'unpaced'} | {r['rate']:.0f} | {r['sent']} "
            f"| {r['captured']} ({pct:.2f}%) | {r['tcpdump']} ({tpct:.2f}%) | {r['cpu']:.0f} "
            f"| {r['cpu_s']:.1f} | {r['drain_s']:.1f} | {loss} | {ours:.1f} | {td_us:.1f} | {gr} "
            f"| {ours / max(td_us, 1e-9):.1f}x | {vs_gr} |"
        )
    full = [r for r in rows if r["captured"] >= r["sent"]]
    best = max((r["rate"] for r in full), default=0.0)
    print(f"\nhighest rate with 100% captured: {best:.0f} req/s")
    silent = [r for r in rows if r["captured"] < r["sent"] and not r["losses"]]
    print("every shortfall visible in counters:", "yes" if not silent else f"NO: {silent}")
    return 0


_ENGINE_PCAP = """
import pcapy, select, signal, sys, time
stop = False
def h(*a):
    global stop; stop = True
signal.signal(signal.SIGTERM, h)
p = pcapy.create("lo"); p.set_snaplen(262144); p.set_buffer_size(64 << 20); p.set_timeout(50)
p.activate(); p.setfilter("tcp port PORT"); p.setnonblock(1); fd = p.getfd(); n = 0
while not stop:
    select.select([fd], [], [], 0.05)
    while True:
        data, meta = p.next_batch(4096)
        if not meta: break
        n += len(meta) // 16
print(n, p.stats()[1])
"""

_ENGINE_RAW = """
import socket, signal, struct, sys
stop = False
def h(*a):
    global stop; stop = True
signal.signal(signal.SIGTERM, h)
ETH_P_ALL = 3; PACKET_OUTGOING = 4; SOL_PACKET = 263; PACKET_STATISTICS = 6
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
s.bind(("lo", 0)); s.settimeout(0.05)
buf = bytearray(262144); n = 0; port = PORT
while not stop:
    try:
        k, addr = s.recvfrom_into(buf)
    except TimeoutError:
        continue
    if addr[2] == PACKET_OUTGOING:  # lo: every packet is seen twice
        continue
    # a userspace port check (no kernel BPF from pure Python without a compiled program)
    if buf[23] == 6:
        ihl = (buf[14] & 15) * 4
        sp, dp = struct.unpack_from("!HH", buf, 14 + ihl)
        if sp == port or dp == port:
            n += 1
st = s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
print(n, struct.unpack("II", st)[1])
"""


def run_engines(seconds: float) -> int:
    """Read-path cost of the two engines under the same unpaced wrk load (count only)."""
    print("engine read path under wrk -t1 -c64 (packets counted, nothing decoded):")
    with tempfile.TemporaryDirectory() as d, NginxServer() as ng:
        _, base = _wrk(ng.url, 64, 0, seconds, Path(d))
        print(f"  no capture: {base:,.0f} req/s")
        for name, code in (("libpcap next_batch", _ENGINE_PCAP), ("AF_PACKET recv", _ENGINE_RAW)):
            src = textwrap.dedent(code).replace("PORT", str(ng.port))
            p = subprocess.Popen([sys.executable, "-c", src], stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
            proc = psutil.Process(p.pid)
            proc.cpu_percent(None)
            _, rate = _wrk(ng.url, 64, 0, seconds, Path(d))
            cpu = proc.cpu_percent(None)
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=30)
            pk, drops = (int(x) for x in out.split())
            print(
                f"  {name:<20} nginx {rate:>9,.0f} req/s ({rate / base:.2f}x alone)  "
                f"packets {pk:>9,}  kernel drops {drops:,}  CPU {cpu:.0f}%"
            )
    return 0


def run_soak(seconds: float, conns: int, delay: int) -> int:
    """Steady paced load; RSS of the capture process every 10 s (must stay flat)."""
    with tempfile.TemporaryDirectory(prefix="rg-soak-") as d, NginxServer() as ng:
        tmp = Path(d)
        out = tmp / "soak.gor"
        cap = subprocess.Popen(
            [
                BIN,
                "capture",
                "-i",
                "lo",
                "-p",
                str(ng.port),
                "-o",
                str(out),
                "--max-bytes",
                "256mb",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert cap.stderr is not None
        while "capturing on" not in cap.stderr.readline():
            pass
        script = tmp / "d.lua"
        script.write_text(f"function delay()\n  return {delay}\nend\n")
        wrk = subprocess.Popen(
            ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "-s", str(script), ng.url],
            stdout=subprocess.PIPE,
            text=True,
        )
        proc = psutil.Process(cap.pid)
        samples = []
        t0 = time.monotonic()
        while wrk.poll() is None:
            time.sleep(10)
            rss = proc.memory_info().rss / 2**20
            samples.append(rss)
            print(f"  t={time.monotonic() - t0:5.0f}s  RSS {rss:7.1f} MiB", flush=True)
            for f in tmp.glob("soak_*.gor"):  # keep the disk bounded; rotation closed them
                if f.stat().st_mtime < time.time() - 30:
                    f.unlink()
        wout = wrk.communicate()[0]
        cap.send_signal(signal.SIGINT)
        _, err = cap.communicate(timeout=300)
        s = _summary(err)
        sent = int(re.search(r"(\d+) requests in", wout).group(1))  # type: ignore[union-attr]
        print(f"  wrk sent {sent}, replaygate complete {s.get('exchanges_complete')}")
        if samples:
            first = samples[min(2, len(samples) - 1)]
            print(
                f"  RSS after warm-up {first:.1f} MiB, max {max(samples):.1f} MiB, "
                f"last {samples[-1]:.1f} MiB"
            )
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench capture")
    ap.add_argument("--full", action="store_true", help="7 steps x 10 s")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per step")
    ap.add_argument("--engines", action="store_true", help="compare the read path of engines")
    ap.add_argument("--soak", type=float, default=None, metavar="SECONDS")
    ap.add_argument("--soak-conns", type=int, default=16)
    ap.add_argument("--soak-delay", type=int, default=2)
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench capture: needs root (raw sockets); skipped")
        return 0
    for tool in ("wrk", "tcpdump"):
        if shutil.which(tool) is None:
            print(f"bench capture: {tool} not installed; skipped")
            return 0
    import replaygate.protocol

    build = "compiled (make accel)" if replaygate.protocol.compiled else "pure Python"
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  cpus: {os.cpu_count()}  "
          f"load: {os.getloadavg()[0]:.1f}  capture path: {build}")  # fmt: skip
    if a.engines:
        return run_engines(a.seconds or 5)
    if a.soak:
        return run_soak(a.soak, a.soak_conns, a.soak_delay)
    return run_steps(FULL if a.full else SHORT, a.seconds or (10 if a.full else 5))
