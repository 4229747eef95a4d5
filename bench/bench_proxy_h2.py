"""The recording proxy with HTTP/2 clients: ``h2load`` through ``replaygate proxy`` against
``h2load`` straight to the same nginx, in the same run.

``python -m bench proxy_h2`` (< 1 min by default): nginx (1 worker, ``return 200 "ok"``) with
an h2c port and an HTTP/1.1 port on loopback; ``replaygate proxy`` (a real process,
recording to a ``.gor`` file) with h2c clients, once with ``--upstream-http2`` (streams
multiplexed on one h2c upstream connection) and once with the default HTTP/1.1 upstream (a
pool of keep-alive connections). ``h2load -n N -c K -m S`` (``--requests=N`` default 10 000,
``--connections=K`` default 1, ``--streams=S`` default 32) on each -> req/s, the ratio
through the proxy / direct, and the proxy's CPU per request (user+sys of its process).
``--repeat=R`` keeps the best of R runs each.

The proxy is Python around the ``h2`` library (pure-Python framing and HPACK) and nginx is C:
expect a ratio well under 1; the figures to watch are the trend and CPU per request.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from replaygate.testing.servers import NginxServer, free_port, wait_for_port

REPLAYGATE = str(Path(sys.executable).with_name("replaygate"))


def _arg(argv: list[str], name: str, default: int) -> int:
    for a in argv:
        if a.startswith(f"--{name}="):
            return max(1, int(a.split("=", 1)[1]))
    return default


def h2load(url: str, n: int, conns: int, streams: int) -> float:
    out = subprocess.run(
        ["h2load", "-n", str(n), "-c", str(conns), "-m", str(streams), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if rate is None or done is None or int(done.group(2)) != n:
        raise RuntimeError(f"h2load did not succeed on every request:\n{out[-800:]}")
    return float(rate.group(1))


def through_proxy(
    upstream: str, extra: list[str], n: int, conns: int, streams: int, repeat: int
) -> tuple[float, float]:
    """(best req/s, proxy CPU us per request) of h2load through a proxy process."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rg-bench-proxy-h2-") as d:
        p = subprocess.Popen(
            [REPLAYGATE, "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
             "-o", f"{d}/rec.gor", *extra],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port("127.0.0.1", port)
            proc = psutil.Process(p.pid)
            best, cpu = 0.0, 0.0
            for _ in range(repeat):
                t0 = sum(proc.cpu_times()[:2])
                rate = h2load(f"http://127.0.0.1:{port}/", n, conns, streams)
                used = sum(proc.cpu_times()[:2]) - t0
                if rate > best:
                    best, cpu = rate, used / n * 1e6
            return best, cpu
        finally:
            p.terminate()
            p.wait(timeout=30)


def main(argv: list[str]) -> int:
    if shutil.which("h2load") is None:
        print("proxy_h2: skipped (h2load not installed: apt-get install nghttp2-client)")
        return 0
    n = _arg(argv, "requests", 10_000)
    conns = _arg(argv, "connections", 1)
    streams = _arg(argv, "streams", 32)
    repeat = _arg(argv, "repeat", 1)
    h2c, plain = free_port(), free_port()
    locations = f"""
        location / {{ return 200 "ok"; }}
    }}
    server {{
        listen 127.0.0.1:{h2c} http2;
        location / {{ return 200 "ok"; }}
    """
    with NginxServer(locations, port=plain):
        wait_for_port("127.0.0.1", h2c)
        direct = max(h2load(f"http://127.0.0.1:{h2c}/", n, conns, streams) for _ in range(repeat))
        time.sleep(0.5)
        up2, cpu2 = through_proxy(
            f"http://127.0.0.1:{h2c}", ["--upstream-http2"], n, conns, streams, repeat
        )
        up1, cpu1 = through_proxy(f"http://127.0.0.1:{plain}", [], n, conns, streams, repeat)
    print(f"h2load -n {n} -c {conns} -m {streams}, nginx 1 worker, recording to .gor")
    print(f"  direct to nginx h2c:                {direct:10.0f} req/s")
    print(f"  proxy, HTTP/2 upstream (h2c):       {up2:10.0f} req/s  ratio {up2 / direct:.3f}"
          f"  proxy CPU {cpu2:.0f} us/req")  # fmt: skip
    print(f"  proxy, HTTP/1.1 upstream (pool):    {up1:10.0f} req/s  ratio {up1 / direct:.3f}"
          f"  proxy CPU {cpu1:.0f} us/req")  # fmt: skip
    return 0
