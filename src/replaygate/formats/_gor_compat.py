"""Upgrades of replaygate's metadata in ``.gor`` files (the ``rg.*`` header fields).

The model is mitmproxy's ``io/compat.py``: the writer stamps the current version
(``rg.v=<META_VERSION>`` on each request record), and a change to the meaning or names of the
fields comes with a ``convert_N_M`` function that rewrites one exchange's records from version
N to M. The reader runs the chain from a file's version up to the current one, so the rest of
the reader only ever knows the current fields. Rules:

* A record without ``rg.v`` was written by GoReplay (or carries no metadata): nothing of ours
  to upgrade; the latency conventions of GoReplay's own files are the reader's business.
* Version 1 is the first and current one: every replaygate ``.gor`` written so far.
* A version newer than this replaygate (or not a number) is read as far as its fields are
  known, like GoReplay reads our files: fields are added, never renamed, within a version.
* Every version keeps a fixture in ``tests/formats/golden`` that must read back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CONVERTERS", "META_VERSION", "upgrade"]

META_VERSION = 1

# version N -> convert_N_(N+1)(request fields, fields of the exchange's other records); each
# rewrites the dictionaries in place and the chain sets rg.v. Empty while version 1 is current.
Converter = Callable[[dict[str, str], list[dict[str, str]]], None]
CONVERTERS: dict[int, Converter] = {}


def upgrade(request: dict[str, str], others: list[dict[str, str]]) -> None:
    """Bring one exchange's ``rg.*`` fields from the version it was written in to the current
    one (in place). Called only when ``rg.v`` is present and not the current version."""
    try:
        version = int(request["v"])
    except (KeyError, ValueError):
        return
    if version >= META_VERSION:
        return
    while version < META_VERSION:
        convert = CONVERTERS.get(version)
        if convert is not None:  # none: the fields meant the same in both versions
            convert(request, others)
        version += 1
    request["v"] = str(META_VERSION)
