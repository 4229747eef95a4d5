"""The public surface: ``__all__`` is sorted, complete and importable (like httpx's check)."""

from __future__ import annotations

import importlib
import pkgutil

import replaygate


def test_all_sorted_and_importable() -> None:
    names = [n for n in replaygate.__all__ if n != "__version__"]
    assert names == sorted(names, key=lambda s: (s[0].islower(), s))
    for n in replaygate.__all__:
        assert hasattr(replaygate, n), n


def test_every_module_imports() -> None:
    """Every module imports without side effects that fail (optional deps excepted)."""
    failures = []
    for mod in pkgutil.walk_packages(replaygate.__path__, "replaygate."):
        if mod.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError as e:  # an optional extra that is not installed
            if "mitmproxy" not in str(e) and "pcapy" not in str(e):
                failures.append(f"{mod.name}: {e}")
    assert not failures


def test_py_typed_shipped() -> None:
    import pathlib

    assert (pathlib.Path(replaygate.__file__).parent / "py.typed").exists()
