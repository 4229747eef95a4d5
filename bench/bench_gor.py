""".gor benchmark: write and read GoReplay files (plain, .gz, .zst) against cat/gzip/zstd.

``python -m bench gor [--exchanges=N] [--dir=PATH] [--keep] [--no-compressed]``

Builds N exchanges (default 200 000; request + response, bodies 100 B .. 2 KiB, realistic
headers) from a pool of distinct messages with unique ids, then in the same run times:

* write: :class:`~replaygate.formats.gor.GorWriter` (records + our rg.* metadata) to
  ``bench.gor``, ``bench.gor.gz``, ``bench.gor.zst``;
* read records: :func:`~replaygate.formats.gor.read_records` (the format layer);
* read exchanges: the registry reader (records grouped into exchanges, what convert uses);
* references on the same files: ``cat f > /dev/null``, ``gzip -dc``, ``zstd -dc`` (reading),
  and ``gzip -c`` / ``zstd -3 -c`` of the plain file (compressing).

MB/s are of the *uncompressed* .gor bytes, so ratios compare work on the same data, and are
computed from **CPU time** (ours: process time; the tools: their children's user + sys time),
because on a shared machine wall time mostly measures the neighbours. The counts read back
must equal what was written, or the run fails.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from replaygate.formats import ReadOptions, open_reader
from replaygate.formats.gor import GorWriter, read_records
from replaygate.model import ConnectionId, Exchange
from replaygate.testing import make_exchange

__all__ = ["main"]

_POOL = 20_000


def _pool(rng: random.Random) -> list[Exchange]:
    out = []
    for i in range(_POOL):
        method = "POST" if i % 7 == 0 else "GET"
        body = rng.randbytes(rng.randint(50, 400)).hex().encode() if method == "POST" else b""
        resp = (
            "{"
            + ",".join(f'"k{j}":{rng.randint(0, 10**6)}' for j in range(rng.randint(3, 40)))
            + "}"
        ).encode()
        ex = make_exchange(
            method,
            f"/api/v1/items/{rng.randint(1, 10**6)}?page={i % 50}&sort=name",
            request_body=body,
            response_body=resp,
            request_headers=[
                ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0"),
                ("Accept", "application/json"),
                ("Cookie", f"session={rng.randbytes(16).hex()}"),
            ],
            response_headers=[("Content-Type", "application/json"), ("Server", "nginx/1.24.0")],
            conn=ConnectionId("10.0.0.1", 30000 + i, "10.0.0.2", 80),
            ts_ns=1_700_000_000_000_000_000 + i * 1_000_000,
        )
        out.append(ex)
    return out


def _exchanges(pool: list[Exchange], n: int) -> list[Exchange]:
    out = []
    for i in range(n):
        p = pool[i % len(pool)]
        out.append(Exchange(id=f"{i:040x}", request=p.request, response=p.response, conn=p.conn))
    return out


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    """CPU seconds of this process (8 engineers share 2 cores: wall time is noise)."""
    t = time.process_time()
    rv = fn()
    return time.process_time() - t, rv


def _shell(cmd: str) -> float:
    """CPU seconds (user + sys) the command's processes used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, shell=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return max(1e-6, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def _write(path: Path, exs: list[Exchange]) -> int:
    w = GorWriter(path)
    for ex in exs:
        w.write(ex)
    w.close()
    return w.records


def _count_records(path: Path) -> int:
    return sum(1 for _ in read_records(path, strict=True))


def _count_exchanges(path: Path) -> int:
    opts = ReadOptions()
    n = sum(1 for _ in open_reader(path, opts))
    if opts.counters.dropped:
        raise SystemExit(f"bench gor: reader dropped {dict(opts.counters.dropped)}")
    return n


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench gor")
    ap.add_argument("--exchanges", type=int, default=200_000)
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--no-compressed", action="store_true", help="plain .gor only")
    args, _ = ap.parse_known_args(argv)
    n = args.exchanges
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="rg-bench-gor-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, {n} exchanges")
    exs = _exchanges(_pool(random.Random(7)), n)
    plain = root / "bench.gor"
    ok = True
    try:
        dt, recs = _timed(lambda: _write(plain, exs))
        size_mb = plain.stat().st_size / 1e6
        print(f"file: {size_mb:.1f} MB uncompressed, {recs} records")
        rows: list[tuple[str, float, float | None, str]] = []
        t_copy = _shell(f"cat {plain} > {root / 'copy.gor'}")
        rows.append(("write .gor", size_mb / dt, size_mb / t_copy, "cat > file"))
        t_cat = min(_shell(f"cat {plain} > /dev/null") for _ in range(2))
        dt_r, nr = _timed(lambda: _count_records(plain))
        dt_x, nx = _timed(lambda: _count_exchanges(plain))
        ok &= nr == recs and nx == n
        rows.append(("read records .gor", size_mb / dt_r, size_mb / t_cat, "cat"))
        rows.append(("read exchanges .gor", size_mb / dt_x, size_mb / t_cat, "cat"))
        if not args.no_compressed:
            for ext, comp, decomp in (
                (".gor.gz", f"gzip -6 -c {plain} > /dev/null", "gzip -dc {f} > /dev/null"),
                (".gor.zst", f"zstd -q -3 -c {plain} > /dev/null", "zstd -q -dc {f} > /dev/null"),
            ):
                tool = comp.split()[0]
                if shutil.which(tool) is None:
                    print(f"skip {ext}: {tool} not installed")
                    continue
                f = root / f"bench{ext}"
                dt, _ = _timed(lambda f=f: _write(f, exs))
                t_comp = _shell(comp)
                rows.append((f"write {ext}", size_mb / dt, size_mb / t_comp, f"{tool} -c"))
                t_dec = min(_shell(decomp.format(f=f)) for _ in range(2))
                dt_r, nr = _timed(lambda f=f: _count_records(f))
                dt_x, nx = _timed(lambda f=f: _count_exchanges(f))
                ok &= nr == recs and nx == n
                rows.append((f"read records {ext}", size_mb / dt_r, size_mb / t_dec, f"{tool} -dc"))
                rows.append(
                    (f"read exchanges {ext}", size_mb / dt_x, size_mb / t_dec, f"{tool} -dc")
                )
        print(f"{'operation':<26}{'replaygate MB/s':>16}{'reference MB/s':>16}  ratio")
        for name, ours, ref, tool in rows:
            if ref is None:
                print(f"{name:<26}{ours:>16.1f}{'-':>16}")
            else:
                print(f"{name:<26}{ours:>16.1f}{ref:>16.1f}  {ours / ref:.2f}x of {tool}")
        ex_rate = n / dt_x if dt_x else 0.0
        print(f"(last read: {ex_rate:,.0f} exchanges/s)")
        if not ok:
            print("bench gor: FAILED: counts read back differ from what was written")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
