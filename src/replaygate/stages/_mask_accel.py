"""The optional compiled pseudonym core (``_mask_core.c``), and the guard that keeps it honest.

``make accel`` builds ``_mask_core`` (a small C extension: SHA-256, HMAC, the checksum test
and the format-preserving generation of :mod:`._mask_fp`, the base64 runs of
:mod:`._detectors`, the string map of :mod:`._mask_json`) with :func:`source_hash` compiled in. :func:`load_core` returns it only
when that hash is the hash of :data:`CORE_SOURCES` as they are now (an edited source never runs an old build) and
``REPLAYGATE_PURE_PYTHON`` is unset or ``0``; otherwise None, and :mod:`._mask_fp` runs its
pure-Python functions, which give the same pseudonyms byte for byte (property tests compare
the two). This module imports nothing from the package: ``setup.py`` runs it.
"""

from __future__ import annotations

import hashlib
import os
from types import ModuleType

__all__ = ["CORE_SOURCES", "load_core", "source_hash"]

#: the files the compiled core is built from or implements
CORE_SOURCES = (
    "_mask_core.c",
    "_mask_leaf.h",
    "_mask_jsonc.h",
    "_mask_fp.py",
    "_detectors.py",
    "_mask_json.py",
)
_DIR = os.path.dirname(os.path.abspath(__file__))


def source_hash(directory: str = _DIR) -> str:
    h = hashlib.sha256()
    for name in CORE_SOURCES:
        with open(os.path.join(directory, name), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def load_core(directory: str = _DIR) -> ModuleType | None:
    """The compiled core when it is there, wanted and built from the current sources."""
    if os.environ.get("REPLAYGATE_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from . import _mask_core
    except ImportError:
        return None
    try:
        current = source_hash(directory)
    except OSError:  # installed without the sources: nothing to be older than
        return _mask_core
    if getattr(_mask_core, "SOURCE_HASH", None) != current:
        return None
    return _mask_core
