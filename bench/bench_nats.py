"""NATS JetStream scale-out: publish rate, and replay throughput by workers x partitions.

    python -m bench nats [--n=20000] [--workers=1,2,4] [--partitions=4,16]

References measured in the same run: the file path (``replaygate replay FILE --max``) against
the same nginx, and the raw JetStream publish rate of nats-py (``publish_async`` of 120-byte
payloads, no encoding). Each row prints wall-clock rates and the CPU time per operation of the
process doing it (ours: process time; subprocesses: user+sys from ``wait4``), and the ratio
to its reference for both: on a busy machine the CPU ratio is the steadier one.

CPU per exchange leaves start-up and the idle wait out: every process involved (workers, file
replay, nats-server, nginx and its workers) is sampled every 20 ms (utime+stime from
``/proc/PID/stat``), and only the CPU spent while replaying counts: for workers, from the first
to the last result's send time (the results stream's timestamps); for the file replay, the
last ``n / rate`` seconds before it exited (the rate its summary reports). The table adds what
nats-server and nginx spent per exchange in the same interval and the stream server's share
of all CPU, so the next limit shows: workers scale until one of them (the target, or the
stream's one leader) takes a core.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import NamedTuple

from replaygate.formats.gor import GorWriter
from replaygate.jetstream import NatsSink, read_stream
from replaygate.testing import make_exchange
from replaygate.testing.nats import NatsServer
from replaygate.testing.servers import NginxServer

BIN = [sys.executable, "-m", "replaygate"]


def _exchanges(n: int) -> list:  # type: ignore[type-arg]
    return [make_exchange("GET", f"/item/{i}", session=f"user{i % 512}") for i in range(n)]


def _proc_cpu(pid: int) -> float:
    """utime+stime of one process and its children still running (nginx workers), seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def _pid(server: object) -> int:
    proc = getattr(server, "_proc", None)
    return int(proc.pid) if proc is not None else 0


class _Sampler:
    """CPU seconds of watched processes over wall-clock time (``time.time()``), every 20 ms."""

    def __init__(self) -> None:
        self.samples: dict[int, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        self.samples.setdefault(pid, [(time.time(), _proc_cpu(pid))])

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            for pid, got in list(self.samples.items()):
                if os.path.exists(f"/proc/{pid}/stat"):
                    got.append((time.time(), _proc_cpu(pid)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, pid: int, t0: float, t1: float) -> float:
        """CPU seconds ``pid`` spent from ``t0`` to ``t1`` (linear between samples)."""
        return self._at(pid, t1) - self._at(pid, t0)

    def _at(self, pid: int, t: float) -> float:
        got = self.samples.get(pid) or [(t, 0.0)]
        prev = got[0]
        if t <= prev[0]:
            return prev[1]
        for cur in got[1:]:
            if cur[0] >= t:
                span = cur[0] - prev[0]
                return prev[1] + (cur[1] - prev[1]) * ((t - prev[0]) / span if span else 1.0)
            prev = cur
        return prev[1]


SAMPLER: _Sampler | None = None


class Ran(NamedTuple):
    wall: float
    cpu: float
    err: str
    pid: int


def _run(cmd: list[str]) -> Ran:
    """Wall seconds, CPU seconds (user+sys), stderr and pid of one subprocess."""
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        if SAMPLER is not None:
            SAMPLER.watch(p.pid)
        _, status, ru = os.wait4(p.pid, 0)
        if SAMPLER is not None:  # the exact total at exit
            SAMPLER.samples[p.pid].append((time.time(), ru.ru_utime + ru.ru_stime))
        err.seek(0)
        text = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{text[-2000:]}")
    return Ran(time.perf_counter() - t, ru.ru_utime + ru.ru_stime, text, p.pid)


async def _raw_publish(url: str, n: int) -> float:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=512)
    await js.add_stream(name="RAW", subjects=["raw.>"])
    payload = b"x" * 120
    t = time.perf_counter()
    for i in range(n):
        await js.publish_async(f"raw.{i % 16}", payload)
    await js.publish_async_completed()
    dt = time.perf_counter() - t
    await nc.close()
    return n / dt


def _publish(url: str, n: int, tag: str) -> None:
    sink = NatsSink(url)
    for i in range(n):  # ids unique per stream: JetStream de-duplicates repeated ids
        sink.write(make_exchange("GET", f"/item/{i}", session=f"{tag}user{i % 512}"))
    sink.close()


def _workers(url: str, target: str, k: int) -> list[Ran]:
    """Run ``k`` worker processes until the stream is drained."""
    results: list[Ran] = [Ran(0.0, 0.0, "", 0)] * k

    def one(i: int) -> None:
        results[i] = _run(
            [*BIN, "worker", "--source", url, "--target", target, "--id", f"b{i}",
             "--exit-when-idle", "1s", "--allow-unsafe-target"]
        )  # fmt: skip

    threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench nats")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--partitions", default="4,16")
    a = ap.parse_args(argv)
    counts = [int(x) for x in a.workers.split(",")]
    parts = [int(x) for x in a.partitions.split(",")]
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, cores: {os.cpu_count()},"
        f" load average: {os.getloadavg()[0]:.1f}"
    )
    exs = _exchanges(a.n)
    with NatsServer() as ns, NginxServer() as ng, tempfile.TemporaryDirectory() as tmp:
        c0 = time.process_time()
        raw = asyncio.run(_raw_publish(ns.url, a.n))
        raw_cpu = (time.process_time() - c0) / a.n
        print(
            f"reference: raw nats-py publish_async, 120 B payloads: {raw:,.0f} msg/s,"
            f" {raw_cpu * 1e6:.1f} us CPU/msg"
        )
        url = ns.url + f"/BENCH?partitions={parts[-1]}"
        t = time.perf_counter()
        c0 = time.process_time()
        sink = NatsSink(url)
        for ex in exs:
            sink.write(ex)
        sink.close()
        pub = a.n / (time.perf_counter() - t)
        pub_cpu = (time.process_time() - c0) / a.n
        print(
            f"capture -> stream publish (NatsSink): {pub:,.0f} exchanges/s ({pub / raw:.2f}x raw),"
            f" {pub_cpu * 1e6:.1f} us CPU/exchange ({raw_cpu / pub_cpu:.2f}x raw)"
        )
        t = time.perf_counter()
        got = sum(1 for _ in read_stream(url))
        print(f"stream -> reader: {got / (time.perf_counter() - t):,.0f} exchanges/s")

        path = os.path.join(tmp, "bench.gor")
        w = GorWriter(path)
        for ex in exs:
            w.write(ex)
        w.close()
        samp = _Sampler()
        global SAMPLER
        SAMPLER = samp
        samp.watch(_pid(ns))
        samp.watch(_pid(ng))
        ran = _run(
            [*BIN, "replay", path, "--target", ng.url, "--max", "--concurrency", "64",
             "--no-progress", "--allow-unsafe-target"]
        )  # fmt: skip
        file_rate = a.n / ran.wall
        m = re.search(r"rate ([0-9.]+) req/s achieved", ran.err)
        file_steady = float(m.group(1)) if m else file_rate
        t_exit = samp.samples[ran.pid][-1][0]
        file_cpu = samp.between(ran.pid, t_exit - a.n / file_steady, t_exit) / a.n
        print(
            f"reference: file replay --max, 1 process: {file_steady:,.0f} req/s while replaying,"
            f" {file_rate:,.0f} req/s including start-up; {file_cpu * 1e6:.1f} us CPU/req"
            f" while replaying ({ran.cpu / a.n * 1e6:.1f} with start-up)"
        )
        print(
            "| partitions | workers | req/s while replaying (first to last result) |"
            " vs file replay | per worker | CPU us/req per worker process | CPU vs file replay |"
            " nats-server CPU us/req | nats-server share of CPU | nginx CPU us/req |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        best = 0.0
        for np_ in parts:
            for k in counts:
                url = ns.url + f"/BENCHP{np_}W{k}?partitions={np_}"
                _publish(url, a.n, f"p{np_}w{k}")
                results = _workers(url, ng.url, k)
                stamps = [r.replay_ts_ns or 0 for r in read_stream(url.split("?")[0] + "-RESULTS")]
                n_res = len(stamps)
                t0, t1 = min(stamps, default=0) / 1e9, max(stamps, default=0) / 1e9
                span = t1 - t0 if n_res > 1 else 1.0
                steady = n_res / max(span, 1e-9)
                w_cpu = sum(samp.between(r.pid, t0, t1) for r in results)
                n_cpu = samp.between(_pid(ns), t0, t1)
                g_cpu = samp.between(_pid(ng), t0, t1)
                cpu_x = max(w_cpu, 1e-9) / max(1, n_res)
                ratio = file_cpu / cpu_x
                best = max(best, ratio)
                share = n_cpu / max(w_cpu + n_cpu + g_cpu, 1e-9)
                print(
                    f"| {np_} | {k} | {steady:,.0f} | {steady / file_steady:.2f}x |"
                    f" {steady / k:,.0f} | {cpu_x * 1e6:.1f} | {ratio:.2f}x |"
                    f" {n_cpu / max(1, n_res) * 1e6:.1f} | {share:.0%} |"
                    f" {g_cpu / max(1, n_res) * 1e6:.1f} |"
                )
        samp.close()
        print(f"worker CPU per exchange vs file replay (goal >= 0.8x): best {best:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
