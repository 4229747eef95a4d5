"""The guard of the optional compiled build (protocol/_accel.py): compiled modules are used
only when all of them are there and built from the current sources; otherwise the sources."""

from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path

import pytest

import replaygate.protocol
from replaygate.protocol import _accel

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _tree(tmp_path: Path, *, extensions: bool = True) -> Path:
    for name in _accel.COMPILED_MODULES:
        (tmp_path / f"{name}.py").write_text(f"# {name}\n")
        if extensions:
            (tmp_path / f"{name}{SUFFIX}").write_bytes(b"")
    if extensions:
        (tmp_path / f"_accel__mypyc{SUFFIX}").write_bytes(b"")
    return tmp_path


def test_current_only_with_a_matching_manifest(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    assert not _accel.compiled_is_current(str(d))  # no manifest: built from what?
    _accel.write_manifest(str(d))
    assert _accel.compiled_is_current(str(d))
    (d / "tcp.py").write_text("# edited after the build\n")
    assert not _accel.compiled_is_current(str(d))
    _accel.write_manifest(str(d))
    (d / f"assembler{SUFFIX}").unlink()  # a partial build
    assert not _accel.compiled_is_current(str(d))


def test_stale_or_unwanted_build_loads_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sys, "meta_path", [f for f in sys.meta_path if f.__class__.__name__ != "_SourceFinder"]
    )
    d = _tree(tmp_path)
    _accel.write_manifest(str(d))
    monkeypatch.setenv("REPLAYGATE_PURE_PYTHON", "1")
    assert _accel.select_build(str(d)) is False
    finder = sys.meta_path[0]
    spec = finder.find_spec("replaygate.protocol.tcp", None)  # type: ignore[call-arg]
    assert spec is not None and spec.origin == str(d / "tcp.py")
    assert finder.find_spec("replaygate.protocol.tls", None) is None  # type: ignore[call-arg]
    monkeypatch.delenv("REPLAYGATE_PURE_PYTHON")
    monkeypatch.setattr(sys, "meta_path", sys.meta_path[1:])
    assert _accel.select_build(str(d)) is True


def test_without_extensions_nothing_changes(tmp_path: Path) -> None:
    before = list(sys.meta_path)
    assert _accel.select_build(str(_tree(tmp_path, extensions=False))) is False
    assert sys.meta_path == before


def test_the_running_build_is_reported() -> None:
    import replaygate.protocol.http1 as http1

    assert replaygate.protocol.compiled == (not http1.__file__.endswith(".py"))
