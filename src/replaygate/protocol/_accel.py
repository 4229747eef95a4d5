"""The optional compiled build of the capture hot path, and the guard that keeps it honest.

``make accel`` compiles :data:`COMPILED_MODULES` with mypyc (C extensions next to the sources;
the pure-Python modules stay and are the reference) and records a hash of each source in
``_accel_manifest.json``. When ``replaygate.protocol`` is imported, :func:`select_build`
uses the extensions only if every one of them is present and was built from the sources as
they are now; otherwise (a source edited since, a partial build, or ``REPLAYGATE_PURE_PYTHON=1``
in the environment) an import hook loads the ``.py`` files instead, so an old build never
runs new code silently. ``replaygate.protocol.compiled`` says which one runs.

:func:`write_manifest` records the sources the extensions were built from (``make accel``).
This module imports nothing from the package: ``setup.py`` reads the module list from it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["COMPILED_MODULES", "GROUP", "select_build", "write_manifest"]

# The capture path from frame to exchange: link layer, TCP reassembly, HTTP/1 parsing.
COMPILED_MODULES = (
    "_assembler_config",
    "_http1_edges",
    "_http1_fast",
    "_http1_grammar",
    "_http1_messages",
    "_http1_state",
    "assembler",
    "http1",
    "linklayer",
    "segment",
    "tcp",
)
GROUP = "replaygate.protocol._accel"  # mypyc's shared library: _accel__mypyc.<suffix>
PACKAGE = "replaygate.protocol"
MANIFEST = "_accel_manifest.json"
_DIR = os.path.dirname(os.path.abspath(__file__))


def _source_hashes(directory: str) -> dict[str, str]:
    out = {}
    for name in COMPILED_MODULES:
        with open(os.path.join(directory, name + ".py"), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def _extension(directory: str, name: str, files: Sequence[str]) -> str | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if name + suffix in files:
            return name + suffix
    return None


def compiled_is_current(directory: str = _DIR) -> bool:
    """Are all the extensions there, loadable by this interpreter, and built from the
    sources as they are now?"""
    files = os.listdir(directory)
    names = [*COMPILED_MODULES, GROUP.rsplit(".", 1)[1] + "__mypyc"]
    if any(_extension(directory, n, files) is None for n in names):
        return False
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return False
    return bool(recorded == _source_hashes(directory))


def _has_extensions(directory: str) -> bool:
    files = os.listdir(directory)
    return any(_extension(directory, n, files) is not None for n in COMPILED_MODULES)


class _SourceFinder:
    """Import hook: the pure-Python module for each compiled name (extensions win over
    sources in Python's own finder, so they must be stepped around explicitly)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.names = {f"{PACKAGE}.{n}": n for n in COMPILED_MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        short = self.names.get(fullname)
        if short is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, os.path.join(self.directory, short + ".py")
        )


def select_build(directory: str = _DIR) -> bool:
    """Called once by ``replaygate.protocol``: True when the compiled modules will be used."""
    if not _has_extensions(directory):
        return False
    if os.environ.get("REPLAYGATE_PURE_PYTHON", "") not in ("", "0") or not compiled_is_current(
        directory
    ):
        if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _SourceFinder(directory))
        return False
    return True


def write_manifest(directory: str = _DIR) -> str:
    path = os.path.join(directory, MANIFEST)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_source_hashes(directory), f, indent=1, sort_keys=True)
    return path
