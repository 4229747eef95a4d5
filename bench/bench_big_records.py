"""Big ``.gor`` records: reading must stay linear in the record size (#12).

``python -m bench big_records [--sizes=16,64,128] [--dir=PATH]``

For each size S (MiB) writes a ``.gor`` file holding one request of S MiB (a proxy recording
of a large upload), then in the same run times, in CPU seconds of this process:

* ours: :func:`~replaygate.formats.gor.read_records` of that file;
* reference: reading the same file in the same 1 MiB pieces without parsing (``read1``).

It prints MB/s of both, their ratio, and the growth of our time from the smallest size: with a
linear reader ``time(S) / time(smallest)`` stays close to ``S / smallest`` (the old reader
copied the pending buffer on every read: 16/64/128 MiB took 0.3/2.8/11.5 s, quadratic).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from replaygate.formats.gor import GorRecord, encode_record, read_records

__all__ = ["main"]


def _cpu(fn: object) -> float:
    assert callable(fn)
    t = time.process_time()
    fn()
    return time.process_time() - t


def _write(path: Path, mib: int) -> int:
    body = b"x" * (mib << 20)
    head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
    data = encode_record(GorRecord(1, "a" * 40, 1, None, head + body, {"v": "1"}))
    path.write_bytes(data)
    return len(data)


def _read_raw(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read1(1 << 20):
            pass


def _read_ours(path: Path) -> None:
    n = sum(1 for _ in read_records(path))
    if n != 1:
        raise SystemExit(f"bench big_records: read {n} records, wrote 1")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench big_records")
    ap.add_argument("--sizes", default="16,64,128", help="record sizes in MiB")
    ap.add_argument("--dir", default=None)
    args, _ = ap.parse_known_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        base: tuple[int, float] | None = None
        print(f"{'MiB':>6} {'ours MB/s':>10} {'raw MB/s':>10} {'ours/raw':>9} {'growth':>8}")
        for mib in sizes:
            p = Path(d) / f"r{mib}.gor"
            size = _write(p, mib)
            ours = max(_cpu(lambda p=p: _read_ours(p)), 1e-6)  # type: ignore[misc]
            raw = max(_cpu(lambda p=p: _read_raw(p)), 1e-6)  # type: ignore[misc]
            if base is None:
                base = (mib, ours)
            growth = (ours / base[1]) / (mib / base[0])  # 1.0 = perfectly linear
            print(
                f"{mib:>6} {size / ours / 1e6:>10.0f} {size / raw / 1e6:>10.0f} "
                f"{raw / ours:>9.2f} {growth:>8.2f}"
            )
            p.unlink()
    print("growth = (time / smallest time) / (size / smallest size): ~1 when linear")
    return 0
