"""The demo script: production + candidate + baseline copy, record, replay, compare, report.

Steps (each printed): start three copies of :mod:`replaygate.demo.app`; send varied traffic
through the recording proxy in front of production, written to ``capture.gor``; replay the
capture at full speed to the candidate with the second production copy as baseline
(``replayed.gor`` keeps both); compare and judge with the demo's ``replaygate.toml``; write
``report.html``, ``report.json``, ``report.md`` and ``report.xml``.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import load_config
from ..formats import open_reader, open_writer
from ..runner import FileInput, Output, Reports, Run, RunConfig, Watch
from .app import DemoApp, Variant, order_id, users

__all__ = ["DEMO_CONFIG", "DemoResult", "run_demo"]

# The demo's replaygate.toml: defaults, except a wider latency margin, because the demo runs
# next to whatever else shares the machine and its planted slowdown is 250 ms.
DEMO_CONFIG = """\
# replaygate configuration used by `replaygate demo` (defaults are documented in docs/compare.md)
[compare]
samples = 3

[gate]
max_diff_rate = "1%"
max_endpoint_diff_rate = "5%"
max_new_5xx_rate = "0%"
max_p99_ratio = 1.5
min_p99_delta_ms = 60
latency_min_samples = 20
"""


@dataclass
class DemoResult:
    summary: dict[str, Any]
    reports: list[str]
    out_dir: Path
    captured: int
    elapsed_s: float

    @property
    def passed(self) -> bool:
        return bool(self.summary["verdict"] == "pass")


def _traffic(seed: int, n: int) -> list[tuple[str, str, bytes | None, dict[str, str]]]:
    rnd = random.Random(seed)
    out: list[tuple[str, str, bytes | None, dict[str, str]]] = []
    uids = users()
    for _ in range(n):
        r = rnd.random()
        h = {"Accept": "application/json", "User-Agent": "demo-client/1.0"}
        if r < 0.28:
            out.append(("GET", f"/api/users/{rnd.choice(uids)}", None, h))
        elif r < 0.30:
            out.append(("GET", f"/api/users/{rnd.randint(900, 999)}", None, h))  # 404s
        elif r < 0.40:
            out.append(("GET", f"/api/users/{rnd.choice(uids)}/orders", None, h))
        elif r < 0.60:
            out.append(("GET", f"/api/orders/{order_id(rnd.randint(1, 120))}", None, h))
        elif r < 0.75:
            q = rnd.choice(["lamp", "desk", "ch", "mug", "o", "zzz"])
            out.append(("GET", f"/api/search?q={q}&page={rnd.randint(1, 3)}", None, h))
        elif r < 0.80:
            items = [
                {"sku": f"SKU-{rnd.randint(1, 50):03d}", "qty": rnd.randint(1, 3)}
                for _ in range(rnd.randint(1, 4))
            ]
            body = json.dumps({"items": items}).encode()
            out.append(("POST", "/api/orders", body, {**h, "Content-Type": "application/json"}))
        elif r < 0.90:
            out.append(
                ("GET", "/", None, {"Accept": "text/html", "Accept-Encoding": "gzip, deflate"})
            )
        elif r < 0.95:
            out.append(("GET", "/static/app.css", None, {"Accept": "text/css"}))
        else:
            out.append(("GET", "/health", None, {}))
    return out


def _send_all(
    port: int, reqs: list[tuple[str, str, bytes | None, dict[str, str]]], clients: int
) -> None:
    errors: list[BaseException] = []

    def worker(part: list[tuple[str, str, bytes | None, dict[str, str]]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for method, path, body, headers in part:
                conn.request(method, path, body=body, headers=headers)
                conn.getresponse().read()
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(reqs[i::clients],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"demo traffic failed: {errors[0]!r}")


def run_demo(
    out_dir: str | Path = "replaygate-demo",
    *,
    requests: int = 400,
    seed: int = 7,
    echo: Callable[[str], None] = print,
    search_delay_s: float = 0.25,
) -> DemoResult:
    from ..replay import ReplayConfig
    from ..sources.proxy import ProxyConfig, ProxyServer

    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "replaygate.toml"
    cfg_path.write_text(DEMO_CONFIG)
    config = load_config(cfg_path)
    capture = out / "capture.gor"
    replayed = out / "replayed.gor"
    with (
        DemoApp(Variant.PRODUCTION) as prod,
        DemoApp(Variant.PRODUCTION) as prod_copy,
        DemoApp(Variant.CANDIDATE, search_delay_s=search_delay_s) as cand,
    ):
        echo(f"[1/4] production {prod.url}, baseline copy {prod_copy.url}, candidate {cand.url}")
        proxy = ProxyServer(
            ProxyConfig(listen="127.0.0.1:0", upstream=prod.url), open_writer(capture)
        )
        proxy.start()
        try:
            _send_all(proxy.port, _traffic(seed, requests), clients=4)
        finally:
            proxy.stop()
        captured = sum(1 for _ in open_reader(capture))
        echo(f"[2/4] recorded {captured} exchanges through the recording proxy -> {capture}")
        # the apps run in this process: watch its CPU/RSS/threads and the candidate's metrics
        run = Run(
            RunConfig(
                FileInput((str(capture),)),
                toml=config,
                replay=ReplayConfig(
                    targets=[cand.url], baseline=prod_copy.url, max_speed=True, concurrency=8
                ),
                correlate=False,
                output=Output(str(replayed)),
                reports=Reports(
                    json=out / "report.json",
                    junit=out / "report.xml",
                    markdown=out / "report.md",
                    html=out / "report.html",
                ),
                watch=Watch(cand.url + "/metrics", os.getpid(), interval_s=0.5),
                compare_sources=(str(capture),),
            )
        )
        stats = run.run().replay
        assert stats is not None
        echo(
            f"[3/4] replayed {stats.exchanges} exchanges to the candidate and the baseline copy -> {replayed}"
        )
    # every captured exchange must have been replayed: a replay cut short must not pass
    verdict, reports = run.report(min_replayed=captured)
    summary = verdict.summary()
    echo(f"[4/4] compared and judged in {time.monotonic() - t0:.1f} s")
    return DemoResult(summary, reports, out, captured, time.monotonic() - t0)
