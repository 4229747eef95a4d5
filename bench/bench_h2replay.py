"""Replay over HTTP/2 (``replay --http2``) against ``h2load`` in the same run, same target.

``python -m bench h2replay`` (< 1 min by default): nginx (1 worker, ``http2``, ``return 200
"ok"``) on loopback, h2c by prior knowledge and h2 over TLS (ALPN); a generated .gor of N GETs
(``--requests=N``, default 20 000); ``replaygate replay --http2 --max`` with K connections x
S streams (``--connections=K``, default 1; ``--streams=S``, default 64; ``--concurrency`` =
K x S) next to ``h2load -n N -c K -m S`` on the same URL -> req/s, the ratio
replaygate / h2load, and client CPU per request (user+sys of each process, which does not
depend on how busy the machine is; ours without the start-up cost, measured on a one-request
run). ``--repeat=R`` runs each tool R times, interleaved, and
keeps the best. The HTTP/1.1 replay of the same recording, and the h2c replay with ``--workers 2`` (one
process per core, each with its own connections), are printed next to it for scale.

h2load (Debian ``nghttp2-client``) is C; our client is Python around the ``h2`` library
(pure-Python framing and HPACK), so expect a ratio well under 1: the figure to watch is its
trend, and CPU per request.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replaygate.testing.servers import NginxServer, free_port

from .bench_replay import _child_cpu, write_gor

REPLAYGATE = str(Path(sys.executable).with_name("replaygate"))


def _arg(argv: list[str], name: str, default: int) -> int:
    for a in argv:
        if a.startswith(f"--{name}="):
            return max(1, int(a.split("=", 1)[1]))
    return default


def h2load(url: str, n: int, conns: int, streams: int) -> tuple[float, float]:
    """(req/s, CPU us per request) of ``h2load`` on ``url``."""
    c0 = _child_cpu()
    out = subprocess.run(
        ["h2load", "-n", str(n), "-c", str(conns), "-m", str(streams), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = _child_cpu() - c0
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if rate is None or done is None or int(done.group(2)) != n:
        raise RuntimeError(f"h2load did not succeed on every request:\n{out[-800:]}")
    return float(rate.group(1)), cpu / n * 1e6


def replay(args: list[str], n: int, startup: float = 0.0) -> tuple[float, float, str]:
    """(req/s achieved, CPU us per request, summary) of ``replaygate replay``; ``startup``
    (CPU seconds of a one-request run) is taken off, so CPU/request is the marginal cost."""
    c0 = _child_cpu() + startup
    p = subprocess.run(
        [REPLAYGATE, "replay", *args, "--max", "--no-progress", "--no-correlate"],
        capture_output=True,
        text=True,
    )
    cpu = _child_cpu() - c0
    if p.returncode != 0:
        raise RuntimeError(f"replay failed ({p.returncode}): {p.stderr[-800:]}")
    m = re.search(r"rate ([\d.]+) req/s achieved", p.stderr)
    errs = re.search(r"replay: sent (\d+), answered (\d+), errors (\d+)", p.stderr)
    if errs is None or int(errs.group(2)) != n:
        raise RuntimeError(f"replay did not answer every request:\n{p.stderr[-800:]}")
    return (float(m.group(1)) if m else 0.0), cpu / n * 1e6, p.stderr


def main(argv: list[str]) -> int:
    n = _arg(argv, "requests", 20_000)
    conns = _arg(argv, "connections", 1)
    streams = _arg(argv, "streams", 64)
    repeat = _arg(argv, "repeat", 1)
    if shutil.which("h2load") is None:
        print("bench h2replay: h2load is not installed (apt-get install nghttp2-client)")
        return 2
    from tests.replay._servers import self_signed

    tmp = Path(tempfile.mkdtemp(prefix="rg-bench-h2replay-"))
    cert, key = self_signed(str(tmp))
    h2c, h2 = free_port(), free_port()
    locations = f"""
        location / {{ return 200 "ok"; }}
    }}
    server {{
        listen 127.0.0.1:{h2c} http2;
        http2_max_concurrent_streams 1024;
        location / {{ return 200 "ok"; }}
    }}
    server {{
        listen 127.0.0.1:{h2} ssl http2;
        http2_max_concurrent_streams 1024;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 "ok"; }}
    """
    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  requests: {n}  "
        f"connections: {conns}  streams: {streams}  best of {repeat}"
    )
    try:
        src = tmp / "in.gor"
        write_gor(src, n)
        with NginxServer(locations, workers=1) as ng:
            flags = ["--http2", "--h2-connections", str(conns), "--h2-streams", str(streams)]
            flags += ["-c", str(conns * streams), "--order", "none"]
            for name, url, extra in (
                ("h2c", f"http://127.0.0.1:{h2c}", []),
                ("h2/TLS", f"https://127.0.0.1:{h2}", ["--ca-file", cert]),
            ):
                h2load(url + "/", min(n, 2000), conns, streams)  # warm up
                one = tmp / "one.gor"
                write_gor(one, 1)
                c0 = _child_cpu()
                replay([str(one), "-t", url, *flags, *extra], 1)
                startup = _child_cpu() - c0  # interpreter, imports, connection setup
                best_h = best_r = 0.0
                cpu_h = cpu_r = float("inf")
                for _ in range(repeat):
                    rate, cpu = h2load(url + "/", n, conns, streams)
                    best_h, cpu_h = max(best_h, rate), min(cpu_h, cpu)
                    rate, cpu, _ = replay([str(src), "-t", url, *flags, *extra], n, startup)
                    best_r, cpu_r = max(best_r, rate), min(cpu_r, cpu)
                print(f"{name:7} h2load -c{conns} -m{streams}:     {best_h:10.0f} req/s  "
                      f"{cpu_h:6.1f} us CPU/request")  # fmt: skip
                print(f"{name:7} replaygate --http2:      {best_r:10.0f} req/s  "
                      f"{cpu_r:6.1f} us CPU/request  ratio {best_r / best_h:.1%}")  # fmt: skip
                if name == "h2c":  # one process per core: each with its own connections
                    rate, cpu, _ = replay([str(src), "-t", url, *flags, "--workers", "2"], n)
                    print(f"{name:7} replaygate --http2 --workers 2: {rate:5.0f} req/s  "
                          f"ratio {rate / best_h:.1%}")  # fmt: skip
            c0 = _child_cpu()
            replay([str(tmp / "one.gor"), "-t", ng.url], 1)
            startup = _child_cpu() - c0
            h1 = [str(src), "-t", ng.url, "-c", "64", "--order", "none"]
            rate, cpu, _ = replay(h1, n, startup)
            print(f"HTTP/1.1 replaygate -c64 (for scale): {rate:10.0f} req/s  "
                  f"{cpu:6.1f} us CPU/request")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
