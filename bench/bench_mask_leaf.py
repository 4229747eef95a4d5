"""The leaf classifier of the compiled JSON masker (``CORE.LeafConfig.classify``, see
``_mask_leaf.h``) over the strings of ``python -m bench mask`` bodies (secrets everywhere),
against the Python scanner it saves (``list(TextScanner.findings(s))``) and against an empty
C method call on the same strings (``str.isascii``: the call's own cost).

Reported: CPU ns per string (best of N, ``time.process_time``), how many strings were decided
(not UNKNOWN), and the ratios.

    python -m bench mask_leaf             # the strings of 200 bodies, best of 5
    python -m bench mask_leaf --full      # 2 000 bodies
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from replaygate.stages._mask_fp import CORE
from replaygate.stages.mask import MaskConfig

from .bench_mask import _doc


def _strings(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for v in node.values():
            _strings(v, out)
    elif isinstance(node, list):
        for v in node:
            _strings(v, out)


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench mask_leaf")
    ap.add_argument("--full", action="store_true", help="2 000 bodies")
    args = ap.parse_args(argv)
    if CORE is None:
        print("mask_leaf: the compiled core is not built (make accel) or not in use: skipped")
        return 0
    rng = random.Random(7)
    strings: list[str] = []
    for _ in range(2000 if args.full else 200):
        _strings(orjson.loads(_doc(rng, True)), strings)
    sc = MaskConfig().rules().scanner
    leaf = CORE.LeafConfig(tuple(sc.detectors), tuple(sc.words), sc.has_fields, sc.field_names)
    classify = leaf.classify
    findings = sc.findings
    n = len(strings)
    unknown = sum(classify(s) == 3 for s in strings)
    unknown_whole = sum(classify(s, True) == 3 for s in strings)

    t_call = _best(lambda: [s.isascii() for s in strings], 5)
    t_leaf = _best(lambda: [classify(s) for s in strings], 5)
    t_whole = _best(lambda: [classify(s, True) for s in strings], 5)
    t_py = _best(lambda: [list(findings(s)) for s in strings], 3)

    def ns(t: float) -> float:
        return t / n * 1e9

    print(f"{n} strings, undecided: {unknown} (findings), {unknown_whole} (whole)")
    print(f"{'empty C method call (str.isascii)':44s} {ns(t_call):8.0f} ns/string")
    print(f"{'classify(s)':44s} {ns(t_leaf):8.0f} ns/string  (- call: {ns(t_leaf - t_call):.0f})")
    print(
        f"{'classify(s, True)':44s} {ns(t_whole):8.0f} ns/string  (- call: {ns(t_whole - t_call):.0f})"
    )
    print(f"{'reference list(TextScanner.findings(s))':44s} {ns(t_py):8.0f} ns/string")
    print(f"ratio findings / classify: {t_py / t_leaf:.1f}x")
    return 0
