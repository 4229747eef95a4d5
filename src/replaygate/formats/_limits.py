"""Size limits every reader enforces, so that no input (``/dev/zero`` named ``x.jsonl``, a
corrupt length, a file from a hostile source) can make a reader hang or run out of memory.

A record over its limit is a :class:`~replaygate.errors.FormatError` naming the file, the
offset where the record starts and the limit (exit 2): it is never silently skipped, since a
reader that skips oversized records of an endless stream would never end either.

=============================  ============  ==============================================
limit                          default       applies to
=============================  ============  ==============================================
``ReadOptions.max_record_size``  512 MiB     one ``.gor`` record, one ``.jsonl`` line
``ReadOptions.max_file_size``    2 GiB       a whole HAR document (read at once)
``GOR_MAX_HEADER_LINE``          1 MiB       a ``.gor`` record header line
``LOG_MAX_LINE``                 1 MiB       one access-log line
=============================  ============  ==============================================
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from ..errors import FormatError, OutputError

__all__ = [
    "DEFAULT_MAX_FILE",
    "DEFAULT_MAX_RECORD",
    "GOR_MAX_HEADER_LINE",
    "LOG_MAX_LINE",
    "bounded_lines",
    "human_size",
    "too_large",
    "writing",
]

DEFAULT_MAX_RECORD = 512 << 20
DEFAULT_MAX_FILE = 2 << 30
GOR_MAX_HEADER_LINE = 1 << 20
LOG_MAX_LINE = 1 << 20


def human_size(n: int) -> str:
    """``536870912`` -> ``"512MiB"`` (exact binary multiples only, else bytes)."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n} bytes"


def too_large(
    what: str, limit: int, path: str | None, offset: int, flag: str = "--max-record-size"
) -> FormatError:
    """The error for a record over its limit (one line: file, offset, limit, flag)."""
    return FormatError(
        f"{what} is longer than {human_size(limit)} (limit: {flag})", path=path, offset=offset
    )


def bounded_lines(
    f: IO[bytes], limit: int, path: str | None, what: str = "line", starts: bytes = b""
) -> Iterator[bytes]:
    """The lines of ``f`` (newline kept), each at most ``limit`` bytes; a longer one raises
    before more than ``limit + 1`` bytes of it are held in memory. With ``starts``, a line
    whose first byte is not one of them (nor blank) fails before it is read (``/dev/zero``
    named ``x.jsonl``), when the file can peek."""
    offset = 0
    readline = f.readline
    peek = getattr(f, "peek", None) if starts else None
    lineno = 0
    while True:
        lineno += 1
        if peek is not None:
            b = peek(1)[:1]
            if b and b not in starts and b not in b" \t\r\n":
                raise FormatError(
                    f"line {lineno}: not a {what} (starts with {b!r})", path=path, offset=offset
                )
        line = readline(limit + 1)
        if not line:
            return
        if len(line) > limit:
            raise too_large(what, limit, path, offset)
        yield line
        offset += len(line)


@contextmanager
def writing(path: str) -> Iterator[None]:
    """Writers' OS errors (disk full, file system gone read-only) become one
    :class:`~replaygate.errors.OutputError` naming the file, never a traceback."""
    try:
        yield
    except OSError as e:
        raise write_error(e, path) from None


def write_error(e: OSError, path: str) -> OutputError:
    """What :func:`writing` raises, for hot paths that catch OSError themselves (a
    ``with`` of a generator context manager costs thousands of instructions)."""
    return OutputError(f"cannot write: {e.strerror or e}", path=path)
