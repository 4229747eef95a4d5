"""Run benchmarks: ``python -m bench`` (all) or ``python -m bench parse replay`` (some).

Every benchmark module ``bench/bench_<name>.py`` has ``main(argv: list[str]) -> int`` and
prints ratios against a reference measured in the same run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")]
    flags = [a for a in argv if a.startswith("-")]
    names = names or available()
    rc = 0
    for name in names:
        if name not in available():
            print(f"bench: unknown benchmark {name!r} (known: {', '.join(available())})")
            return 2
        print(f"=== bench {name}", flush=True)
        mod = importlib.import_module(f"bench.bench_{name}")
        rc |= int(mod.main(flags))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
