"""Recorded traffic files as a run's source: re-readable (``--loop``, worker processes),
with the stages applied on the way in."""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator, Sequence

from ..errors import InputError, ReplaygateError
from ..formats import format_of, open_reader
from ..formats.gor_lean import lean_requests
from ..model import Counters, Exchange
from ..pipeline import Stage, iter_through
from ._config import FileInput

__all__ = ["FileSource", "check_inputs", "count_requests", "find_cuts", "staged"]


def staged(
    source: Iterator[Exchange] | Sequence[Exchange], stages: Sequence[Stage], counters: Counters
) -> Iterator[Exchange]:
    """Push each exchange through ``stages`` (pipeline-style), yielding what comes out and
    counting it written. Middleware is drained at the end of the source but stays open so
    replayed responses still reach it; call :func:`~replaygate.pipeline.close_stages` after
    the replay."""
    for ex in iter_through(source, stages, counters):
        counters.written += 1
        yield ex


class FileSource:
    """Re-readable source over files (``--loop`` reads them again) with the stages applied."""

    def __init__(self, files: FileInput, stages: Sequence[Stage], counters: Counters) -> None:
        self.files = files
        self.stages = list(stages)
        self.counters = counters

    def raw(self) -> Iterator[Exchange]:
        """The inputs in order, each opened when the previous one is done."""
        opts = self.files.read_options(self.counters)
        for p in self.files.paths:
            yield from open_reader(p, opts)

    def lean_requests(self, *, sessions_ok: bool) -> Iterator[list[bytes | Exchange]] | None:
        """The requests as bytes, in batches (``replay --max``'s lean path), when no stage
        looks at them and every input qualifies (:func:`~replaygate.formats.gor_lean.scan`);
        ``sessions_ok``: inputs whose records carry connections or sessions qualify too."""
        if self.stages:
            return None
        return lean_requests(self.files.paths, self.files.read_options(self.counters), sessions_ok)

    def __iter__(self) -> Iterator[Exchange]:
        if not self.stages:
            return self.raw()
        return staged(self.raw(), self.stages, self.counters)


def check_inputs(paths: Sequence[str]) -> None:
    """Every input exists (``nats://`` inputs are streams): fail before writing anything."""
    for p in paths:
        if format_of(p) != "nats" and not os.path.exists(p):
            raise InputError("no such file", path=p)


def find_cuts(files: FileInput, counters: Counters) -> None:
    """Worker processes read the inputs with counters of their own: read the files once more
    here, after the run (no reading thread across the fork), so that a cut input is reported
    exactly as without workers. Errors were the workers' to report."""
    seen = Counters()
    paths = tuple(f for f in files.paths if format_of(f) != "nats")
    with contextlib.suppress(ReplaygateError):
        for _ in FileSource(FileInput(paths, *_read_args(files)), [], seen):
            pass
    counters.cuts.extend(seen.cuts)


def _read_args(f: FileInput) -> tuple[str | None, str | None, str | None, int | None, int | None]:
    return (f.log_format, f.host, f.tls_keylog, f.max_record_size, f.max_file_size)


def count_requests(paths: Sequence[str]) -> int | None:
    """Requests in plain ``.gor`` files, counted fast (for a progress ETA); else None."""
    from ..formats.gor import SEPARATOR

    total = 0
    for p in paths:
        if not p.endswith(".gor"):
            return None
        try:
            with open(p, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    continue
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    total += (1 if m[:2] == b"1 " else 0) + count_needle(m, SEPARATOR + b"1 ")
        except OSError:
            return None
    return total


def count_needle(m: mmap.mmap | bytes, needle: bytes, step: int = 64 << 20) -> int:
    """Occurrences of ``needle`` (which cannot overlap itself), ``step`` bytes at a time: a
    match across a chunk boundary is counted in the chunk where it starts."""
    n, pos, size = 0, 0, len(m)
    while pos < size:
        end = min(size, pos + step)
        n += m[pos : min(size, end + len(needle) - 1)].count(needle)
        pos = end
    return n
