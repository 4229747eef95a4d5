"""Recorders never destroy an earlier recording by accident.

``capture -o``, ``proxy -o`` and ``shadow -o`` refuse an output that already holds data unless told what to
do with it: ``--force`` overwrites it, ``--append`` adds to it (formats made of independent
records only: ``.gor`` and ``.jsonl``, compressed or not). Why refuse rather than overwrite
like ``tcpdump -w``: a recorder is usually started again with the same command line after a
stop, and the data it would overwrite is exactly the traffic that cannot be captured twice.
``convert`` is a converter (``cp``-like, its input is still there) and keeps overwriting.
An empty file holds nothing to lose and is reused silently.
"""

from __future__ import annotations

import glob
import os

from ..errors import ConfigError, InputError
from ..formats import format_of

__all__ = ["check_output"]

_ROTATED_EXTS = (".gor.gz", ".gor.zst", ".gz", ".zst")


def _rotated_names(path: str) -> list[str]:
    """The files ``--max-bytes/--max-seconds`` would write: name_0.gor, name_1.gor, ..."""
    for ext in _ROTATED_EXTS:
        if path.endswith(ext):
            base = path[: -len(ext)]
            break
    else:
        base, ext = os.path.splitext(path)
    return sorted(glob.glob(glob.escape(base) + "_[0-9]*" + glob.escape(ext)))


def _holds_data(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def check_output(path: str, *, force: bool, append: bool, rotating: bool) -> None:
    """Raise a one-line error unless writing ``path`` is safe and what the user asked for."""
    if force and append:
        raise ConfigError("--append and --force: give one (add to the file, or replace it)")
    fmt = format_of(path)
    if fmt == "nats":
        if append or force:
            raise ConfigError("--append/--force: a nats:// stream is always appended to")
        return
    if append and fmt not in ("gor", "jsonl"):
        raise ConfigError(
            f"--append: {fmt} files cannot be appended to (one JSON document); "
            "record to a new file, or use .gor/.jsonl"
        )
    if append and rotating:
        raise ConfigError(
            "--append: not with --max-bytes/--max-seconds (rotation starts new files)"
        )
    if force or append:
        return
    existing = [p for p in ([path] + (_rotated_names(path) if rotating else [])) if _holds_data(p)]
    if existing:
        raise InputError(
            "output exists and is not empty; refusing to overwrite a recording "
            "(--force to overwrite, --append to add to it, or choose a new name)",
            path=existing[0],
        )
