"""Registry adapters for the ``.gor`` format (see :mod:`replaygate.formats.gor`).

``ReadOptions.extra["gor_window"]`` sets how many exchanges may wait for their response
(default 2000); responses that come later than that are counted as
``response_without_request``.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Exchange
from . import ReadOptions, WriteOptions, note_cut
from .gor import GorRecord, GorWriter, read_exchanges


def read(path: str, options: ReadOptions) -> Iterator[Exchange]:
    c = options.counters

    def truncated(offset: int) -> None:
        note_cut(c, path, offset)

    def orphan(rec: GorRecord) -> None:
        c.dropped["response_without_request"] += 1

    bad_seen = 0

    def bad(offset: int, reason: str) -> None:
        nonlocal bad_seen
        c.dropped["bad_record"] += 1
        bad_seen += 1
        if bad_seen <= 5:
            c.notes[f"{path} (offset {offset}): skipped: {reason}"] += 1

    window = options.extra.get("gor_window")
    return read_exchanges(
        path,
        window=int(window) if isinstance(window, int) and window > 0 else 2_000,
        on_truncated=truncated,
        on_orphan=orphan,
        on_bad=bad,
        max_record=options.max_record_size,
    )


class Writer(GorWriter):
    def __init__(self, path: str, options: WriteOptions) -> None:
        super().__init__(
            path,
            append=options.append,
            max_bytes=options.max_bytes,
            max_seconds=options.max_seconds,
            with_metadata=options.extra.get("with_metadata", True),
        )
