"""Replay throughput vs wrk, timing accuracy at --speed 1, and RSS on a big recording.

``python -m bench replay`` (default, < 2 min): nginx (1 worker, ``return 200 "ok"``) on
loopback; a generated .gor of 200k GETs; ``replaygate replay --max --concurrency 64`` with 1
and 2 workers (``--no-correlate``) and with 1 worker and the default flags (correlation on)
next to ``wrk -t1 -c64`` / ``wrk -t2 -c64`` in the same run -> req/s, ratio and client CPU
per request.
Then timing accuracy: 500 rps recorded for 10 s (``--full``: 60 s) replayed at ``--speed 1``,
p50/p99 of |actual - recorded send offset|.
``--rss``: also build a 2 GB recording and report the peak RSS of replaying it (long);
``--rss-only`` skips the rest.
``--instructions``: instead, load-independent CPU cost: ``valgrind --tool=callgrind``
instructions per request of ``replay --max -c 64 --no-correlate`` from the difference
between a 1,000- and a 5,000-GET replay (start-up cancels out), for the lean path (plain
``.gor``) and the full path (the same file gzipped: the lean path reads plain files only;
gunzip adds ~1% of the figure), with ``--order none`` and the default ``recorded``, and
with the default flags (token correlation on: the lean path applies too, the input holding
no recorded answers to learn from). Then the lean path's parts, in-process (no network):
reading the ``.gor`` records, the lean feed (reading + checks + ``prepare_request``), and
``prepare_request`` alone; the rest of a request's cost is the client (connection, lane,
uvloop, httptools).
``--requests=N`` changes the recording size, ``--repeat=N`` the interleaved runs (best of N).
With ``GOREPLAY_BIN=/path/to/gor`` (GoReplay 1.3.x) GoReplay replays the first 10 000 requests
of the same recording at maximum speed (``--input-file 'FILE|100000%' --output-http``) to an
nginx that logs every request, in the same run: its req/s and CPU per request are printed
next to ours.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from replaygate.formats.gor import SEPARATOR
from replaygate.testing.servers import NginxServer

T0 = 1_700_000_000_000_000_000
REPLAYGATE = str(Path(sys.executable).with_name("replaygate"))


def write_gor(path: Path, n: int, *, gap_ns: int = 0, pad: int = 0, response: bool = False) -> None:
    """``n`` GET records (ts spaced ``gap_ns``), optionally with a padded original response."""
    req = b"GET / HTTP/1.1\r\nHost: prod.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
    body = b"x" * pad
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with open(path, "wb", buffering=1 << 20) as f:
        for i in range(n):
            ts = T0 + i * gap_ns
            rid = f"{i:040x}"
            f.write(f"1 {rid} {ts} -1\n".encode() + req + SEPARATOR)
            if response:
                f.write(f"2 {rid} {ts + 500_000} 500000\n".encode() + resp + SEPARATOR)


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


CPU: dict[str, float] = {}  # tool -> best CPU microseconds per request seen


def _cpu_note(tool: str, cpu_s: float, requests: float) -> None:
    if requests > 0:
        us = cpu_s / requests * 1e6
        CPU[tool] = min(CPU.get(tool, us), us)


def wrk(url: str, threads: int, conns: int, seconds: int) -> float:
    c0 = _child_cpu()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    _cpu_note(f"wrk -t{threads}", _child_cpu() - c0, float(n.group(1)) if n else 0)
    return float(m.group(1)) if m else 0.0


def replay_cli(args: list[str], *, correlate: bool = False) -> tuple[float, float, str, int]:
    """Run the CLI; returns (achieved req/s, wall s, stderr, peak RSS bytes of the tree).
    ``correlate``: the defaults (token correlation on), else ``--no-correlate``."""
    t = time.perf_counter()
    c0 = _child_cpu()
    p = subprocess.Popen(
        [REPLAYGATE, "replay", *args, "--no-progress", *([] if correlate else ["--no-correlate"])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]

    def watch() -> None:
        try:
            proc = psutil.Process(p.pid)
            while p.poll() is None:
                rss = proc.memory_info().rss
                for c in proc.children(recursive=True):
                    try:
                        rss = max(rss, c.memory_info().rss)
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], rss)
                time.sleep(0.1)
        except psutil.Error:
            pass

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    _, err = p.communicate()
    th.join()
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"replay failed ({p.returncode}): {err[-800:]}")
    m = re.search(r"rate ([\d.]+) req/s achieved", err)
    sent = re.search(r"replay: sent (\d+)", err)
    tool = "replaygate --workers 2" if "--workers" in args else "replaygate"
    if correlate:
        tool += " (defaults: correlation on)"
    _cpu_note(tool, _child_cpu() - c0, float(sent.group(1)) if sent else 0)
    return (float(m.group(1)) if m else 0.0), wall, err, peak[0]


def goreplay(binary: str, tmp: Path, n: int) -> tuple[float, float]:
    """GoReplay replaying ``n`` GETs at maximum speed: (req/s, CPU us per request). Requests
    are counted in the target's access log; the run ends when all arrived or none came in
    5 s."""
    path = tmp / "gor.gor"
    write_gor(path, n)
    with NginxServer(workers=1, access_log=True) as lg:
        log = lg.root / "access.log"
        c0 = _child_cpu()
        t0 = time.perf_counter()
        p = subprocess.Popen(
            [binary, "--input-file", f"{path}|100000%", "--output-http", lg.url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        count, last_change, t_last = 0, time.perf_counter(), t0
        try:
            while count < n and time.perf_counter() - last_change < 5:
                time.sleep(0.2)
                now = log.read_bytes().count(b"\n") if log.exists() else 0
                if now != count:
                    count, last_change, t_last = now, time.perf_counter(), time.perf_counter()
        finally:
            p.terminate()
            p.wait(10)
        cpu = _child_cpu() - c0
    return count / max(t_last - t0, 1e-9), cpu / max(count, 1) * 1e6


def timing(url: str, tmp: Path, seconds: int) -> tuple[float, float, float, float]:
    """500 rps recorded over ``seconds``, replayed at speed 1: lag p50/p99/max, achieved."""
    from replaygate.formats import open_reader
    from replaygate.replay import ReplayConfig, run_replay

    path = tmp / "timing.gor"
    write_gor(path, 500 * seconds, gap_ns=2_000_000)
    st = run_replay(open_reader(path), ReplayConfig(targets=[url], speed=1.0, concurrency=64))
    return st.lag_p50_ms, st.lag_p99_ms, st.lag_max_ms, st.achieved_rate


def main(argv: list[str]) -> int:
    full = "--full" in argv
    rss_only = "--rss-only" in argv
    rss = "--rss" in argv or rss_only
    n = 200_000
    repeat = 2
    for a in argv:
        if a.startswith("--requests="):
            n = int(a.split("=", 1)[1])
        if a.startswith("--repeat="):
            repeat = max(1, int(a.split("=", 1)[1]))
    part = next((a.split("=", 1)[1] for a in argv if a.startswith("--part=")), None)
    if part is not None:  # a child of _parts, under callgrind
        _run_part(part, next(a.split("=", 1)[1] for a in argv if a.startswith("--file=")), n)
        return 0
    if "--instructions" in argv:
        return _instructions()
    if shutil.which("wrk") is None:
        print("bench replay: wrk is not installed (apt-get install wrk)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="rg-bench-replay-"))
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  cpus: {os.cpu_count()}  requests: {n}")
    try:
        with NginxServer(workers=1) as ng:
            if not rss_only:
                _throughput(ng, tmp, n, full, repeat)
            if rss:
                _rss(ng, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _instructions(small: int = 1000, big: int = 5000) -> int:
    """Instructions per request (callgrind), lean and full path, order none and recorded."""
    if shutil.which("valgrind") is None:
        print("bench replay --instructions: valgrind is not installed (apt-get install valgrind)")
        return 2
    import gzip

    tmp = Path(tempfile.mkdtemp(prefix="rg-bench-replay-ic-"))
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  instructions per request, callgrind")
    try:
        files: dict[tuple[str, int], Path] = {}
        for n in (small, big):
            plain = tmp / f"in{n}.gor"
            write_gor(plain, n)
            gz = tmp / f"in{n}.gor.gz"
            gz.write_bytes(gzip.compress(plain.read_bytes()))
            files["lean", n], files["full", n] = plain, gz
        with NginxServer(workers=1) as ng:
            # once without valgrind: compiled modules cached, so both runs start alike
            replay_cli([str(files["lean", small]), "-t", ng.url, "--max", "-c", "64"])
            for order in ("none", "recorded"):
                row = []
                for path_kind in ("lean", "full"):
                    counts = []
                    for n in (small, big):
                        out = tmp / f"cg.{path_kind}.{order}.{n}"
                        p = subprocess.run(
                            [
                                "valgrind",
                                "--tool=callgrind",
                                f"--callgrind-out-file={out}",
                                REPLAYGATE,
                                "replay",
                                str(files[path_kind, n]),
                                "-t",
                                ng.url,
                                "--max",
                                "-c",
                                "64",
                                "--order",
                                order,
                                "--no-correlate",
                                "--no-progress",
                            ],
                            capture_output=True,
                            text=True,
                        )
                        m = re.search(r"Collected : (\d+)", p.stderr)
                        if p.returncode != 0 or m is None or f"sent {n}," not in p.stderr:
                            raise RuntimeError(f"callgrind run failed: {p.stderr[-800:]}")
                        counts.append(int(m.group(1)))
                    row.append((counts[1] - counts[0]) / (big - small))
                print(
                    f"--order {order:8s}: lean path {row[0] / 1000:6.1f}k instructions/request, "
                    f"full path {row[1] / 1000:6.1f}k  (lean/full {row[0] / row[1]:.2f})"
                )
            counts = []
            for n in (small, big):
                counts.append(
                    _callgrind(
                        [
                            REPLAYGATE,
                            "replay",
                            str(files["lean", n]),
                            "-t",
                            ng.url,
                            "--max",
                            "-c",
                            "64",
                            "--no-progress",
                        ],
                        tmp / f"cg.defaults.{n}",
                        f"sent {n},",
                    )
                )
            print(
                "default flags (correlation on, --order recorded): "
                f"{(counts[1] - counts[0]) / (big - small) / 1000:6.1f}k instructions/request"
            )
        _parts(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _callgrind(cmd: list[str], out: Path, expect: str) -> int:
    """Instructions callgrind counts for ``cmd`` (whose stderr must contain ``expect``)."""
    p = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or m is None or expect not in p.stderr:
        raise RuntimeError(f"callgrind run failed: {p.stderr[-800:]}")
    return int(m.group(1))


_REQUEST = b"GET / HTTP/1.1\r\nHost: prod.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"


def _run_part(part: str, path: str, n: int) -> None:
    """One part of the lean path over the ``n`` records of ``path`` (no network)."""
    import threading

    from replaygate.formats import ReadOptions
    from replaygate.formats.gor_lean import request_batches
    from replaygate.replay._lean import LeanFeed
    from replaygate.replay._rate import SendClock
    from replaygate.replay._stats import ReplayStats
    from replaygate.replay.client import prepare_request

    class Pool:
        host_bytes = b"127.0.0.1:8080"
        prefix = b""

    if part == "read":
        got = sum(len(b) for b in request_batches(path, ReadOptions()))
    elif part == "feed":
        feed = LeanFeed(
            request_batches(path, ReadOptions()),
            Pool(),  # type: ignore[arg-type]
            ReplayStats(),
            None,
            threading.Event(),
            SendClock(),
        )
        got = 0
        while feed.next() is not None:
            got += 1
    else:
        for _ in range(n):
            prepare_request(_REQUEST, len(_REQUEST), Pool.host_bytes)
        got = n
    print(f"part {part}: {got} done", file=sys.stderr)


def _parts(tmp: Path, small: int = 2000, big: int = 10000) -> None:
    """Instructions per request of the lean path's parts that run without the network."""
    for n in (small, big):
        write_gor(tmp / f"parts{n}.gor", n)
    per = {}
    for part in ("read", "feed", "prepare"):
        counts = [
            _callgrind(
                [
                    sys.executable,
                    "-m",
                    "bench",
                    "replay",
                    f"--part={part}",
                    f"--requests={n}",
                    f"--file={tmp / f'parts{n}.gor'}",
                ],
                tmp / f"cg.part.{part}.{n}",
                f"part {part}: {n} done",
            )
            for n in (small, big)
        ]
        per[part] = (counts[1] - counts[0]) / (big - small)
    print(
        f"lean path parts (in-process): read .gor {per['read'] / 1000:.1f}k, feed (read + "
        f"checks + prepare_request) {per['feed'] / 1000:.1f}k, of which prepare_request "
        f"{per['prepare'] / 1000:.1f}k instructions/request; the rest of a request is the client"
    )


def _throughput(ng: NginxServer, tmp: Path, n: int, full: bool, repeat: int) -> None:
    src = tmp / "in.gor"
    write_gor(src, n)
    print(f"recording: {src.stat().st_size / 1e6:.1f} MB, {n} GETs")
    url = ng.url + "/"
    wrk(url, 1, 64, 1)  # warm up
    # interleaved, best of `repeat` each: the machine is shared, so alternate the tools
    w1 = r1 = w2 = r2 = rd = 0.0
    wall1 = wall2 = 0.0
    rss1 = 0
    for _ in range(repeat):
        w1 = max(w1, wrk(url, 1, 64, 5))
        r, wall1, _, rss = replay_cli([str(src), "-t", ng.url, "--max", "-c", "64"])
        r1, rss1 = max(r1, r), max(rss1, rss)
        w2 = max(w2, wrk(url, 2, 64, 5))
        r, wall2, _, _ = replay_cli([str(src), "-t", ng.url, "--max", "-c", "64", "--workers", "2"])
        r2 = max(r2, r)
        # the defaults (correlation on, --order recorded): what a user runs without flags
        r, _, _, _ = replay_cli([str(src), "-t", ng.url, "--max", "-c", "64"], correlate=True)
        rd = max(rd, r)
    print(f"best of {repeat} runs each, interleaved")
    print(f"wrk -t1 -c64:                        {w1:10.0f} req/s")
    print(
        f"replaygate --max -c64 (1 process):   {r1:10.0f} req/s  "
        f"ratio {r1 / w1:.0%}  (wall {wall1:.1f} s incl. startup, peak RSS "
        f"{rss1 / 1e6:.0f} MB)"
    )
    print(f"same, default flags (correlation on):{rd:10.0f} req/s  ratio {rd / w1:.0%}")
    print(f"wrk -t2 -c64:                        {w2:10.0f} req/s")
    print(
        f"replaygate --max -c64 --workers 2:   {r2:10.0f} req/s  ratio {r2 / w2:.0%}"
        f"  (vs wrk -t1: {r2 / w1:.0%}; wall {wall2:.1f} s)"
    )
    gor_bin = os.environ.get("GOREPLAY_BIN")
    if gor_bin:
        g_rate, g_cpu = goreplay(gor_bin, tmp, min(n, 10_000))
        print(
            f"GoReplay ({gor_bin}), 10k GETs at max speed: {g_rate:10.0f} req/s, "
            f"{g_cpu:.1f} us CPU/request  (replaygate / GoReplay: {r1 / max(g_rate, 1e-9):.1f}x)"
        )
    else:
        print("GoReplay: not measured (set GOREPLAY_BIN=/path/to/gor to add it to this run)")
    print(
        "client CPU per request (user+sys, load-independent): "
        + ", ".join(f"{k} {v:.1f} us" for k, v in sorted(CPU.items()))
    )
    secs = 60 if full else 10
    p50, p99, mx, ach = timing(ng.url, tmp, secs)
    print(
        f"timing --speed 1, 500 rps for {secs} s: |actual - recorded offset| "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {mx:.2f} ms; achieved {ach:.1f} req/s"
    )


def _rss(ng: NginxServer, tmp: Path) -> None:
    big = tmp / "big.gor"
    per = 16 * 1024
    count = (2 << 30) // (per + 300)
    write_gor(big, count, pad=per, response=True)
    print(f"big recording: {big.stat().st_size / 1e9:.2f} GB, {count} exchanges")
    rb, wallb, _, peak = replay_cli(
        [str(big), "-t", ng.url, "--max", "-c", "64", "-o", str(tmp / "o.gor")]
    )
    print(
        f"RSS replaying 2 GB (--max, with --output): peak {peak / 1e6:.0f} MB, "
        f"{rb:.0f} req/s, wall {wallb:.0f} s"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
