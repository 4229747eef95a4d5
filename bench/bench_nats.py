"""NATS JetStream scale-out: publish rate, and replay throughput by workers x partitions.

    python -m bench nats [--n=20000] [--workers=1,2,4] [--partitions=4,16]

References measured in the same run: the file path (``replaygate replay FILE --max``) against
the same nginx, and the raw JetStream publish rate of nats-py (``publish_async`` of 120-byte
payloads, no encoding). Each row prints wall-clock rates and the CPU time per operation of the
process doing it (ours: process time; subprocesses: user+sys from ``wait4``), and the ratio
to its reference for both: on a busy machine the CPU ratio is the steadier one.

CPU per exchange leaves start-up out: each command also runs on a small input (``--n`` / 20
exchanges), and the per-exchange figure is (CPU(n) - CPU(small)) / (n - small), per worker
process. The table adds what the other processes spent per exchange in the same interval
(nats-server, nginx: utime+stime from ``/proc``) and the stream server's share of all CPU, so
the next limit shows: workers scale until one of them (the target, or the stream's one leader)
takes a core.
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


def _run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user+sys) and stderr of one subprocess."""
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{text[-2000:]}")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, text


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


def _workers(url: str, target: str, k: int) -> list[tuple[float, float, str]]:
    """Run ``k`` worker processes until the stream is drained: (wall, CPU, stderr) each."""
    results: list[tuple[float, float, str]] = [(0.0, 0.0, "")] * k

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
    small = max(50, a.n // 20)
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

        def replay_file(exchanges: list) -> tuple[float, float, str]:  # type: ignore[type-arg]
            path = os.path.join(tmp, f"bench{len(exchanges)}.gor")
            w = GorWriter(path)
            for ex in exchanges:
                w.write(ex)
            w.close()
            return _run(
                [*BIN, "replay", path, "--target", ng.url, "--max", "--concurrency", "64",
                 "--no-progress", "--allow-unsafe-target"]
            )  # fmt: skip

        _, cpu_small, _ = replay_file(exs[:small])
        wall, cpu, err = replay_file(exs)
        file_rate = a.n / wall
        file_cpu = max(cpu - cpu_small, 1e-9) / (a.n - small)
        m = re.search(r"rate ([0-9.]+) req/s achieved", err)
        file_steady = float(m.group(1)) if m else file_rate
        print(
            f"reference: file replay --max, 1 process: {file_steady:,.0f} req/s while replaying,"
            f" {file_rate:,.0f} req/s including start-up; {file_cpu * 1e6:.1f} us CPU/req"
            f" without start-up ({cpu / a.n * 1e6:.1f} with)"
        )
        print(
            "| partitions | workers | req/s while replaying (first to last result) |"
            " vs file replay | per worker | CPU us/req per worker process | CPU vs file replay |"
            " nats-server CPU us/req | nats-server share of CPU | nginx CPU us/req |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        best = 0.0
        for np_ in parts:
            base = ns.url + f"/BENCHP{np_}?partitions={np_}"
            _publish(base, small, "s")  # one worker on a small stream: its start-up CPU
            fixed = _workers(base, ng.url, 1)[0][1]
            for k in counts:
                url = ns.url + f"/BENCHP{np_}W{k}?partitions={np_}"
                _publish(url, a.n, f"p{np_}w{k}")
                n0, g0 = _proc_cpu(_pid(ns)), _proc_cpu(_pid(ng))
                results = _workers(url, ng.url, k)
                n_cpu, g_cpu = _proc_cpu(_pid(ns)) - n0, _proc_cpu(_pid(ng)) - g0
                stamps = [r.replay_ts_ns or 0 for r in read_stream(url.split("?")[0] + "-RESULTS")]
                n_res = len(stamps)
                span = (max(stamps) - min(stamps)) / 1e9 if n_res > 1 else 1.0
                steady = n_res / max(span, 1e-9)
                # the small run's CPU is start-up plus `small` exchanges: take start-up off
                # each process, and count those `small` exchanges once per process
                w_cpu = sum(r[1] for r in results)
                cpu_x = max(w_cpu - k * fixed, 1e-9) / max(1, n_res - k * small)
                ratio = file_cpu / cpu_x
                best = max(best, ratio)
                share = n_cpu / max(w_cpu + n_cpu + g_cpu, 1e-9)
                print(
                    f"| {np_} | {k} | {steady:,.0f} | {steady / file_steady:.2f}x |"
                    f" {steady / k:,.0f} | {cpu_x * 1e6:.1f} | {ratio:.2f}x |"
                    f" {n_cpu / max(1, n_res) * 1e6:.1f} | {share:.0%} |"
                    f" {g_cpu / max(1, n_res) * 1e6:.1f} |"
                )
        print(f"worker CPU per exchange vs file replay (goal >= 0.8x): best {best:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
