"""Fuzz runner: ``python -m tests.fuzz [--minutes N] [--list] [name ...]``.

Runs every registered target (or the named ones; a name may also be a module such as
``fuzz_protocol``) for N minutes each with hypothesis (no deadline, fresh randomness each run,
no example database), counting iterations. A target that raises anything but a
``ReplaygateError`` is a crash: the shrunk input is saved under ``.fuzz-crashes/`` and the
runner exits 1. atheris is used instead when it is importable (one subprocess per target).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

from replaygate.errors import ReplaygateError

from . import _Discovered, discover, fuzz_input

CRASH_DIR = Path(".fuzz-crashes")
_ROUND = 2000  # examples per hypothesis run; runs repeat until the time is spent


def _save_crash(name: str, data: bytes, tb: str) -> Path:
    CRASH_DIR.mkdir(exist_ok=True)
    digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()[:16]
    path = CRASH_DIR / f"{name}-{digest}.bin"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(tb)
    return path


def run_hypothesis(target: _Discovered, seconds: float) -> tuple[int, Path | None]:
    """Fuzz ``target`` for ``seconds``; returns (iterations, crash file or None)."""
    count = 0
    last_crash: list[tuple[bytes, str]] = []
    deadline = time.monotonic() + seconds

    @settings(
        max_examples=_ROUND,
        deadline=None,
        derandomize=False,
        database=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(fuzz_input(target.seeds))
    def loop(data: bytes) -> None:
        nonlocal count
        if time.monotonic() > deadline:
            return  # the rest of this round is skipped cheaply
        count += 1
        try:
            target.func(data)
        except ReplaygateError:
            pass
        except Exception:
            last_crash.append((data, traceback.format_exc()))
            raise

    while time.monotonic() < deadline:
        try:
            loop()  # one round; each round draws fresh random inputs
        except Exception:
            if not last_crash:
                raise
            data, tb = last_crash[-1]  # the last failing call is hypothesis's shrunk example
            return count, _save_crash(target.name, data, tb)
    return count, None


def run_atheris(target: _Discovered, seconds: float) -> tuple[int, Path | None]:
    """Fuzz with atheris in a subprocess (atheris owns its process and exits at the end)."""
    CRASH_DIR.mkdir(exist_ok=True)
    code = (
        "import sys, atheris\n"
        "with atheris.instrument_imports(include=['replaygate']):\n"
        "    from tests.fuzz import discover\n"
        f"    t = discover()[{target.name!r}]\n"
        "from replaygate.errors import ReplaygateError\n"
        "def one(data):\n"
        "    try:\n"
        "        t.func(data)\n"
        "    except ReplaygateError:\n"
        "        pass\n"
        "atheris.Setup(sys.argv, one)\n"
        "atheris.Fuzz()\n"
    )
    args = [
        sys.executable,
        "-c",
        code,
        f"-max_total_time={int(seconds)}",
        f"-artifact_prefix={CRASH_DIR}/{target.name}-",
        "-print_final_stats=1",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    runs = 0
    for line in proc.stderr.splitlines():
        if line.startswith("stat::number_of_executed_units:"):
            runs = int(line.split(":")[-1])
    if proc.returncode != 0:
        crashes = sorted(CRASH_DIR.glob(f"{target.name}-crash-*"))
        sys.stderr.write(proc.stderr[-4000:])
        return runs, crashes[-1] if crashes else CRASH_DIR
    return runs, None


def _has_atheris() -> bool:
    return importlib.util.find_spec("atheris") is not None


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0, help="time per target (default 1)")
    ap.add_argument("--list", action="store_true", help="list the registered targets and exit")
    ap.add_argument(
        "--engine", choices=("auto", "hypothesis", "atheris"), default="auto", help="fuzzer"
    )
    ap.add_argument("names", nargs="*", help="targets or fuzz_* modules (default: all)")
    opts = ap.parse_args(argv)
    targets = discover()
    if opts.list:
        for t in targets.values():
            print(f"{t.name}\t{t.module}\t{len(t.seeds)} seeds")
        return 0
    chosen = list(targets.values())
    if opts.names:
        unknown = [n for n in opts.names if n not in targets and not _is_module(n, targets)]
        if unknown:
            print(f"fuzz: unknown target(s) {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        chosen = [t for t in chosen if t.name in opts.names or t.module in opts.names]
    engine = opts.engine
    if engine == "auto":
        engine = "atheris" if _has_atheris() else "hypothesis"
    seconds = opts.minutes * 60
    rc = 0
    print(f"fuzz: {len(chosen)} target(s), {opts.minutes:g} min each, engine {engine}", flush=True)
    for t in chosen:
        start = time.monotonic()
        runner = run_atheris if engine == "atheris" else run_hypothesis
        iterations, crash = runner(t, seconds)
        took = time.monotonic() - start
        status = "ok" if crash is None else f"CRASH saved to {crash}"
        if crash is not None and crash.with_suffix(".txt").is_file():
            last = crash.with_suffix(".txt").read_text().strip().splitlines()[-1:]
            status += f" ({last[0] if last else 'see traceback file'})"
        print(f"{t.name}: {iterations} iterations in {took:.0f} s: {status}", flush=True)
        if crash is not None:
            rc = 1
    return rc


def _is_module(name: str, targets: dict[str, _Discovered]) -> bool:
    return any(t.module == name for t in targets.values())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
