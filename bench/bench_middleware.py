"""Middleware round-trip overhead: exchanges through a GoReplay-protocol child process.

For 1 KB and 1 MB request bodies, runs the same exchanges through

* ``noop``: an in-process stage that returns its input (the pipeline's own cost),
* ``plugin``: a Python plugin whose ``request`` hook returns its input (the in-process API),
* ``filter`` / ``rewrite``: the built-in URL+method filter and URL+header rewrite, for scale,
* ``cat``: the smallest protocol-correct middleware (echoes lines without decoding them), so
  the figure is replaygate's side: hex encoding, pipes, reassembly,
* ``echo.py``: GoReplay's Python echo example (decodes, logs to stderr, re-encodes),

and prints (best of 3 runs) µs per exchange and per message (request + response = 2 messages), messages/s and
payload MB/s, plus the ratio to ``noop`` measured in the same run.

    python -m bench middleware            # short run (< 1 min)
    python -m bench middleware --full     # 5x more exchanges
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from replaygate.model import Exchange
from replaygate.pipeline import Stage, run_pipeline
from replaygate.stages.filter import FilterConfig, FilterStage
from replaygate.stages.middleware import MiddlewareConfig, MiddlewareStage
from replaygate.stages.plugins import PluginStage
from replaygate.stages.rewrite import RewriteConfig, RewriteStage
from replaygate.testing import MemorySink, make_exchange

ROOT = Path(__file__).resolve().parents[1]


class _Noop:
    name = "noop"

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        return (ex,)

    def close(self) -> Iterable[Exchange]:
        return ()


class _KeepAll:
    def request(self, ex: Exchange) -> Exchange:
        return ex


def _filter() -> Stage:
    return FilterStage(FilterConfig(allow_url=["^/upload/"], deny_method=["DELETE"]))


def _rewrite() -> Stage:
    return RewriteStage(
        RewriteConfig(rewrite_url=["^/upload/:/v2/upload/"], set_header=["X-Env: staging"])
    )


def _traffic(n: int, size: int) -> list[Exchange]:
    body = os.urandom(size)
    return [
        make_exchange("POST", f"/upload/{i}", request_body=body, response_body=b'{"ok": true}')
        for i in range(n)
    ]


def _best(make: Callable[[], Stage], exs: list[Exchange], repeat: int) -> float:
    """Best of ``repeat`` runs: on a shared machine the minimum is the least disturbed."""
    times = []
    for _ in range(repeat):
        fresh = [Exchange(id=e.id, request=e.request, response=e.response) for e in exs]
        times.append(_run(make(), fresh))  # fresh exchanges: rewrites must have work to do
    return min(times)


def _run(stage: Stage, exs: list[Exchange]) -> float:
    sink = MemorySink()
    t0 = time.perf_counter()
    c = run_pipeline(exs, [stage], sink)
    dt = time.perf_counter() - t0
    if c.written != len(exs):
        raise SystemExit(f"bench middleware: {stage.name} wrote {c.written} of {len(exs)}")
    return dt


def main(argv: list[str]) -> int:
    full = "--full" in argv
    scale = 5 if full else 1
    repeat = 3  # best of 3
    echo_py = f"{sys.executable} {ROOT / 'examples/middleware/echo.py'}"
    cases = [(1024, 10_000 * scale), (1 << 20, 40 * scale)]
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; {'full' if full else 'short'} run"
    )
    header = f"{'body':>6} {'middleware':>10} {'exch':>6} {'us/exch':>9} {'us/msg':>8} {'msg/s':>9} {'MB/s':>8} {'x noop':>7}"
    print(header)
    for size, n in cases:
        exs = _traffic(n, size)
        payload = sum(len(e.request.raw) + len(e.response.raw) for e in exs if e.response)
        base = _best(_Noop, exs, repeat)
        rows = [
            ("noop", base),
            ("plugin", _best(lambda: PluginStage(_KeepAll(), "bench"), exs, repeat)),
            # the built-in stages, for scale (they keep every exchange here)
            ("filter", _best(lambda: _filter(), exs, repeat)),
            ("rewrite", _best(lambda: _rewrite(), exs, repeat)),
        ]
        for label, cmd in (("cat", "cat"), ("echo.py", echo_py)):
            # echo.py logs three lines per message on stderr (passed through to ours): the
            # bench keeps the passthrough running but sends it to /dev/null
            saved = sys.stderr
            with open(os.devnull, "w") as devnull:
                sys.stderr = devnull
                try:
                    # linger 0: bulk input never lingers except on its first exchange, which
                    # would add up to 50 ms of child start-up to short runs
                    make = lambda c=cmd: MiddlewareStage(MiddlewareConfig(command=c, linger=0))  # noqa: E731
                    rows.append((label, _best(make, exs, repeat)))
                finally:
                    sys.stderr = saved
        for label, dt in rows:
            print(
                f"{_size(size):>6} {label:>10} {n:>6} {dt / n * 1e6:>9.1f} {dt / (2 * n) * 1e6:>8.1f}"
                f" {2 * n / dt:>9.0f} {payload / dt / 1e6:>8.1f} {dt / base:>7.1f}"
            )
    return 0


def _size(n: int) -> str:
    return f"{n >> 20}MB" if n >= 1 << 20 else f"{n >> 10}KB"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
