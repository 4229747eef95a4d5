"""NATS JetStream scale-out: publish rate and replay throughput with 1, 2, 4 workers.

    python -m bench nats [--n 20000] [--workers 1,2,4] [--partitions 16]

References measured in the same run: the file path (``replaygate replay FILE --max``) against
the same nginx, and the raw JetStream publish rate of nats-py (``publish_async`` of 120-byte
payloads, no encoding). Each row prints wall-clock rates and the CPU time per operation of the
process doing it (ours: process time; subprocesses: user+sys from ``wait4``), and the ratio
to its reference for both: on a busy machine the CPU ratio is the steadier one.
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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench nats")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--partitions", type=int, default=16)
    a = ap.parse_args(argv)
    counts = [int(x) for x in a.workers.split(",")]
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
        url = ns.url + f"/BENCH?partitions={a.partitions}"
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
        wall, cpu, err = _run(
            [*BIN, "replay", path, "--target", ng.url, "--max", "--concurrency", "64",
             "--no-progress", "--allow-unsafe-target"]
        )  # fmt: skip
        file_rate, file_cpu = a.n / wall, cpu / a.n
        m = re.search(r"rate ([0-9.]+) req/s achieved", err)
        file_steady = float(m.group(1)) if m else file_rate
        print(
            f"reference: file replay --max, 1 process: {file_steady:,.0f} req/s while replaying,"
            f" {file_rate:,.0f} req/s and {file_cpu * 1e6:.1f} us CPU/req including start-up"
        )
        print(
            "| workers | req/s while replaying (first to last result) | vs file replay |"
            " per worker | req/s incl. start-up and drain | CPU us/req (all workers) |"
            " CPU vs file replay |"
        )
        print("|---|---|---|---|---|---|---|")
        for k in counts:
            subprocess.run([*BIN, "stream", "purge", url, "--yes"], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            sink = NatsSink(url)
            for ex in _exchanges(a.n):  # new ids: JetStream de-duplicates repeated ids
                sink.write(ex)
            sink.close()
            t = time.perf_counter()
            results: list[tuple[float, float, str]] = [(0.0, 0.0, "")] * k

            def one(i: int, results: list[tuple[float, float, str]] = results) -> None:
                results[i] = _run(
                    [*BIN, "worker", "--source", url, "--target", ng.url, "--id", f"b{i}",
                     "--exit-when-idle", "1s", "--allow-unsafe-target"]
                )  # fmt: skip

            threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            # the idle wait (1 s + the drained check, 1 s apart) is not replay time
            dt = time.perf_counter() - t - 2.25
            stamps = [r.replay_ts_ns or 0 for r in read_stream(url.split("?")[0] + "-RESULTS")]
            n_res = len(stamps)
            span = (max(stamps) - min(stamps)) / 1e9 if n_res > 1 else dt
            steady = n_res / max(span, 1e-9)
            cpu = sum(r[1] for r in results) / max(1, n_res)
            print(
                f"| {k} | {steady:,.0f} | {steady / file_steady:.2f}x | {steady / k:,.0f} |"
                f" {n_res / dt:,.0f} | {cpu * 1e6:.1f} | {file_cpu / cpu:.2f}x |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
