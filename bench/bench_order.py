"""Happens-before replay order (``--order``): its cost, and stateful apps replayed N times.

``python -m bench order`` (default, short): throughput of ``replaygate replay --max -c 64`` on
a recording of independent requests that overlapped in the recording (each spans the next
``--overlap`` requests), ``--order recorded`` next to ``--order none`` in the same run
(interleaved, best of ``--repeat``) against nginx -> req/s and the ratio (goal >= 0.90).

``--soak=N``: the stateful test app (replaygate.testing.stateful: accounts, server-made ids,
a login cookie, users interleaved on connections the server closes every 3 answers) recorded
once through ``replaygate proxy``, then replayed at ``--max`` to N fresh copies; each run must
show zero status differences from the recording (prints the runs that did).
``--kinto``: the same with Kinto (a real stateful REST service from PyPI: accounts plugin,
memory backend; buckets and records with server-made ids), installed into its own venv under
``--cache`` (default ``~/.cache/replaygate-bench``), a fresh Kinto process per run; clients
reconnect every 3 requests.
``--burner``: keep every core busy with spinning processes while recording and replaying.

    python -m bench order                       # throughput ratio only (< 1 min)
    python -m bench order --soak=20 --burner    # the "Done when" figure, test app
    python -m bench order --kinto --soak=20 --burner
    python -m bench order --kinto --soak=1 --order=none   # the same without order: fails

Exits 1 when a run showed a difference or the ratio is below 0.90.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from replaygate.formats.gor import SEPARATOR
from replaygate.testing.servers import NginxServer, free_port, wait_for_port
from replaygate.testing.stateful import (
    StatefulApp,
    drive_users,
    record_through_proxy,
    status_differences,
)

T0 = 1_700_000_000_000_000_000
REPLAYGATE = str(Path(sys.executable).with_name("replaygate"))


# -- throughput ---------------------------------------------------------------------------------
def write_overlapping(path: Path, n: int, overlap: int, gap_ns: int = 10_000) -> None:
    """``n`` GETs ``gap_ns`` apart, each answered after ``overlap`` more requests began."""
    req = b"GET / HTTP/1.1\r\nHost: prod.example\r\nUser-Agent: bench\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    lat = overlap * gap_ns + gap_ns // 2
    with open(path, "wb", buffering=1 << 20) as f:
        for i in range(n):
            ts = T0 + i * gap_ns
            rid = f"{i:040x}"
            f.write(f"1 {rid} {ts} -1\n".encode() + req + SEPARATOR)
            f.write(f"2 {rid} {ts + lat} {lat}\n".encode() + resp + SEPARATOR)


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def replay_rate(path: Path, url: str, order: str) -> tuple[float, str, float]:
    """req/s achieved, requests that waited, CPU seconds of the replay process."""
    cpu0 = _child_cpu()
    r = subprocess.run(
        [
            *(REPLAYGATE, "replay", str(path), "--target", url, "--max", "-c", "64"),
            *("--order", order, "--no-progress", "--no-correlate"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-500:])
    m = re.search(r"rate ([\d.]+) req/s achieved", r.stderr)
    waited = re.search(r"order \w+: (\d+) requests waited", r.stderr)
    cpu = _child_cpu() - cpu0
    return (float(m.group(1)) if m else 0.0), (waited.group(1) if waited else "-"), cpu


def throughput(n: int, overlap: int, repeat: int) -> bool:
    with tempfile.TemporaryDirectory(prefix="rg-order-") as d, NginxServer(workers=1) as ng:
        path = Path(d) / "overlap.gor"
        write_overlapping(path, n, overlap)
        best: dict[str, float] = {"none": 0.0, "recorded": 0.0}
        cpu: dict[str, float] = {"none": float("inf"), "recorded": float("inf")}
        waited = "-"
        for _ in range(repeat):
            for order in ("none", "recorded"):
                rate, w, c = replay_rate(path, ng.url, order)
                best[order] = max(best[order], rate)
                cpu[order] = min(cpu[order], c / n * 1e6)
                if order == "recorded":
                    waited = w
        ratio = best["recorded"] / best["none"] if best["none"] else 0.0
        print(
            f"order throughput ({n} requests, each overlapping the next {overlap}, --max -c 64, "
            f"best of {repeat}):"
        )
        print(f"  --order none      {best['none']:>10,.0f} req/s  {cpu['none']:6.1f} CPU us/req")
        print(
            f"  --order recorded  {best['recorded']:>10,.0f} req/s  "
            f"{cpu['recorded']:6.1f} CPU us/req  ({waited} waited)"
        )
        print(f"  ratio recorded/none: {ratio:.3f}  (goal >= 0.90)")
        print(f"  CPU per request recorded/none: {cpu['recorded'] / cpu['none']:.3f}")
        return ratio >= 0.90


# -- CPU burner ---------------------------------------------------------------------------------
def _spin(stop: Any) -> None:
    while not stop.is_set():
        for _ in range(100_000):
            pass


@contextmanager
def burner(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    procs = [ctx.Process(target=_spin, args=(stop,)) for _ in range(os.cpu_count() or 2)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()


# -- soak: replay a stateful app N times ----------------------------------------------------------
def replay_to(recording: str, url: str, out: str, order: str) -> tuple[list[str], str]:
    r = subprocess.run(
        [
            *(REPLAYGATE, "replay", recording, "--target", url, "--max", "-o", out),
            *("--order", order, "--no-progress"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-500:])
    line = next((x.strip() for x in r.stderr.splitlines() if x.strip().startswith("order")), "")
    return status_differences(out), line


def soak(
    name: str,
    runs: int,
    order: str,
    fresh: Callable[[], Any],
    drive: Callable[[str], object],
) -> bool:
    """Record ``drive`` through the proxy in front of one copy, replay to ``runs`` fresh ones."""
    with tempfile.TemporaryDirectory(prefix="rg-order-soak-") as d:
        rec = str(Path(d) / "rec.gor")
        with fresh() as app:
            record_through_proxy(app.url, rec, drive)
        clean = 0
        for i in range(runs):
            out = str(Path(d) / f"out{i}.jsonl")
            with fresh() as app:
                t = time.monotonic()
                diffs, line = replay_to(rec, app.url, out, order)
                secs = time.monotonic() - t
            clean += not diffs
            print(
                f"  {name} run {i + 1}/{runs}: {len(diffs)} status differences, {secs:.1f} s"
                + (f"  [{line}]" if line else "")
                + (f"  e.g. {diffs[:3]}" if diffs else ""),
                flush=True,
            )
        print(f"{name}: {clean}/{runs} runs with zero status differences (--order {order})")
        return clean == runs


# -- Kinto --------------------------------------------------------------------------------------
KINTO_INI = """
[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.storage_url =
kinto.cache_backend = kinto.core.cache.memory
kinto.cache_url =
kinto.permission_backend = kinto.core.permission.memory
kinto.permission_url =
kinto.includes = kinto.plugins.accounts
multiauth.policies = account
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
kinto.account_create_principals = system.Everyone
kinto.bucket_create_principals = system.Authenticated
kinto.userid_hmac_secret = replaygate-bench-order-secret

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = %(port)d

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = WARN
formatter = generic

[formatter_generic]
format = %%(message)s
"""


def kinto_venv(cache: Path) -> Path:
    venv = cache / "kinto-venv"
    py = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "kinto"], check=True)
        (venv / ".installed").write_text("kinto\n")
    return venv


class Kinto:
    """A fresh Kinto (memory backend: empty on each start) on a free loopback port."""

    def __init__(self, venv: Path, workdir: Path) -> None:
        self.venv = venv
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Kinto:
        self.port = free_port()
        ini = self.workdir / f"kinto-{self.port}.ini"
        ini.write_text(KINTO_INI % {"port": self.port})
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "pserve"), str(ini)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port, timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def kinto_user(url: str, name: str, records: int, seen: list[int]) -> None:
    """One Kinto user: account, bucket (server-made id), collection, records (server-made
    ids) created, read, changed or deleted and read again; reconnects every 3 requests."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    auth = "Basic " + base64.b64encode(f"{name}:pw-{name}-secret".encode()).decode()
    n = 0

    def call(method: str, path: str, doc: Any = None, creds: bool = True) -> Any:
        nonlocal n
        n += 1
        headers = {"Content-Type": "application/json"}
        if creds:
            headers["Authorization"] = auth
        if n % 3 == 0:
            headers["Connection"] = "close"  # the client reconnects for the next one
        body = json.dumps(doc).encode() if doc is not None else None
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        seen.append(r.status)
        if headers.get("Connection") == "close":
            conn.close()
        return json.loads(data) if data else None

    try:
        call("PUT", f"/v1/accounts/{name}", {"data": {"password": f"pw-{name}-secret"}}, False)
        call("GET", "/v1/")
        bid = call("POST", "/v1/buckets", {"data": {}})["data"]["id"]
        coll = f"/v1/buckets/{bid}/collections/tasks"
        call("PUT", coll, {"data": {}})
        rids = []
        for i in range(records):
            rid = call("POST", f"{coll}/records", {"data": {"n": i, "who": name}})["data"]["id"]
            rids.append(rid)
            call("GET", f"{coll}/records/{rid}")
        for i, rid in enumerate(rids):
            if i % 2:
                call("PATCH", f"{coll}/records/{rid}", {"data": {"done": True}})
            else:
                call("DELETE", f"{coll}/records/{rid}")
            call("GET", f"{coll}/records/{rid}")
        call("GET", f"{coll}/records")
        call("GET", f"/v1/buckets/{bid}")
    finally:
        conn.close()


def drive_kinto(url: str, users: int = 6, records: int = 4) -> list[int]:
    seen: list[list[int]] = [[] for _ in range(users)]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            kinto_user(url, f"user{i}", records, seen[i])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise errors[0]
    return [s for x in seen for s in x]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench order")
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--overlap", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--soak", type=int, default=0, metavar="RUNS")
    ap.add_argument("--kinto", action="store_true")
    ap.add_argument("--burner", action="store_true")
    ap.add_argument("--order", default="recorded", choices=["none", "sessions", "recorded"])
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "replaygate-bench"))
    a = ap.parse_args(argv)
    ok = True
    if not a.soak and not a.kinto:
        ok = throughput(a.requests, a.overlap, a.repeat)
    runs = a.soak or 3
    with burner(a.burner):
        if a.soak and not a.kinto:
            ok &= soak(
                "stateful app",
                runs,
                a.order,
                StatefulApp,
                lambda url: drive_users(url, users=a.users, items=5),
            )
        if a.kinto:
            venv = kinto_venv(Path(a.cache))
            with tempfile.TemporaryDirectory(prefix="rg-kinto-") as d:
                ok &= soak(
                    "kinto",
                    runs,
                    a.order,
                    lambda: Kinto(venv, Path(d)),
                    lambda url: drive_kinto(url, users=a.users),
                )
    return 0 if ok else 1
