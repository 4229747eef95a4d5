"""Fuzz targets and their runner.

Every ``tests/fuzz/fuzz_<area>.py`` module defines ``TARGETS: dict[str, Callable[[bytes],
None]]``; a target may raise only :class:`replaygate.errors.ReplaygateError` subclasses. A module
may also define ``SEEDS: dict[str, list[bytes]]`` (target name -> example inputs) that the runner
mutates, which finds deep bugs much sooner than uniformly random bytes.

``python -m tests.fuzz [--minutes N] [name ...]`` runs them (see ``__main__``);
``tests/fuzz/test_targets.py`` runs each with a few hundred examples in normal pytest.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

from hypothesis import strategies as st

__all__ = ["Target", "discover", "fuzz_input"]

Target = Callable[[bytes], None]


class _Discovered:
    """A registered target: its name, module, function and seeds."""

    __slots__ = ("func", "module", "name", "seeds")

    def __init__(self, name: str, module: str, func: Target, seeds: list[bytes]) -> None:
        self.name = name
        self.module = module
        self.func = func
        self.seeds = seeds

    def __repr__(self) -> str:
        return f"<target {self.name} from {self.module}>"


def discover() -> dict[str, _Discovered]:
    """Import every ``fuzz_*`` module next to this file and collect its ``TARGETS``."""
    here = Path(__file__).parent
    found: dict[str, _Discovered] = {}
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("fuzz_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        targets: dict[str, Target] = getattr(mod, "TARGETS", {})
        seeds: dict[str, list[bytes]] = getattr(mod, "SEEDS", {})
        for name, func in targets.items():
            if name in found:
                raise RuntimeError(f"fuzz target {name!r} defined twice ({info.name})")
            found[name] = _Discovered(name, info.name, func, list(seeds.get(name, [])))
    return found


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few random edits: flips, inserts, deletes, splices of other seeds."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == 2:
            end = draw(st.integers(pos, min(len(data), pos + 64)))
            del data[pos:end]
        elif op == 3:
            other = draw(st.sampled_from(seeds))
            a = draw(st.integers(0, len(other)))
            b = draw(st.integers(a, len(other)))
            data[pos:pos] = other[a:b]
        else:
            token = draw(
                st.sampled_from(
                    [b"\r\n", b"\n", b"\r\n\r\n", b"0\r\n\r\n", b":", b" ", b"\x00", b"\xff"]
                )
            )
            data[pos:pos] = token
    return bytes(data)


def fuzz_input(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, or mutated seeds when the target has any."""
    raw = st.binary(max_size=4096)
    if not seeds:
        return raw
    return st.one_of(raw, _mutated(seeds), _mutated(seeds))
