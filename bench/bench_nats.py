"""NATS JetStream scale-out: publish rate and replay throughput with 1, 2, 4 workers.

    python -m bench nats [--n 20000] [--workers 1,2,4]

References measured in the same run: the file path (``replaygate replay FILE --max``) against
the same nginx, and the raw JetStream publish rate of nats-py without our encoding.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import subprocess
import sys
import tempfile
import time

from replaygate.formats.gor import GorWriter
from replaygate.jetstream import NatsSink, read_stream
from replaygate.testing import make_exchange
from replaygate.testing.nats import NatsServer
from replaygate.testing.servers import NginxServer

BIN = [sys.executable, "-m", "replaygate"]


def _exchanges(n: int) -> list:  # type: ignore[type-arg]
    return [make_exchange("GET", f"/item/{i}", session=f"user{i % 512}") for i in range(n)]


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
    a = ap.parse_args(argv)
    counts = [int(x) for x in a.workers.split(",")]
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, cores: {os.cpu_count()}"
    )
    exs = _exchanges(a.n)
    with NatsServer() as ns, NginxServer() as ng, tempfile.TemporaryDirectory() as tmp:
        raw = asyncio.run(_raw_publish(ns.url, a.n))
        print(f"reference: raw nats-py publish_async, 120 B payloads: {raw:,.0f} msg/s")
        url = ns.url + "/BENCH?partitions=16"
        t = time.perf_counter()
        sink = NatsSink(url)
        for ex in exs:
            sink.write(ex)
        sink.close()
        pub = a.n / (time.perf_counter() - t)
        print(
            f"capture -> stream publish (NatsSink): {pub:,.0f} exchanges/s ({pub / raw:.2f}x raw)"
        )
        t = time.perf_counter()
        got = sum(1 for _ in read_stream(url))
        print(f"stream -> reader: {got / (time.perf_counter() - t):,.0f} exchanges/s")

        path = os.path.join(tmp, "bench.gor")
        w = GorWriter(path)
        for ex in exs:
            w.write(ex)
        w.close()
        t = time.perf_counter()
        subprocess.run(
            [*BIN, "replay", path, "--target", ng.url, "--max", "--concurrency", "64",
             "--no-progress", "--allow-unsafe-target"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        file_rate = a.n / (time.perf_counter() - t)
        print(f"reference: file replay --max, 1 process: {file_rate:,.0f} req/s")
        print("| workers | replayed req/s (through JetStream) | vs file replay |")
        print("|---|---|---|")
        for k in counts:
            subprocess.run([*BIN, "stream", "purge", url, "--yes"], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            sink = NatsSink(url)
            for ex in _exchanges(a.n):  # new ids: JetStream de-duplicates repeated ids
                sink.write(ex)
            sink.close()
            t = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [
                        *BIN,
                        "worker",
                        "--source",
                        url,
                        "--target",
                        ng.url,
                        "--id",
                        f"b{i}",
                        "--exit-when-idle",
                        "1s",
                        "--allow-unsafe-target",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i in range(k)
            ]
            for p in procs:
                p.wait()
            # the idle wait (1 s + up to 0.5 s polling) is not replay time
            dt = time.perf_counter() - t - 1.25
            n_res = sum(1 for _ in read_stream(url.split("?")[0] + "-RESULTS"))
            rate = n_res / dt
            print(f"| {k} | {rate:,.0f} | {rate / file_rate:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
