"""Request records of ``.gor`` files as bytes, without building exchanges (``replay --max``).

A request-only recording (GoReplay's request files, or ``.gor`` files holding type-1 records
only) replayed at full speed with nothing that looks at exchanges (no stages, hooks, outputs
or reports) needs each request's bytes and nothing more. :func:`request_batches` yields them
a chunk at a time: a record whose header is GoReplay's plain ``1 <id> <ts> [<latency>]`` comes
out as its payload bytes; any other record (replaygate's ``rg.*`` metadata, an unusual
header) comes out as the :class:`~replaygate.model.Exchange` the full reader would build.

What is counted is what the full reader (:mod:`._gor_io`) counts for the same file: a record
cut at the end (``truncated_record`` with its offset), malformed records after good ones
(``bad_record``, the first five noted), a record over ``--max-record-size`` (FormatError), a
file that is not ``.gor`` at all (FormatError).

:func:`scan` says whether a file qualifies: uncompressed, and every record a request (type 1).
It searches the file's bytes for record headers (a record separator never occurs inside a
record), so it costs a pass over the file in C, no Python per record.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import FormatError
from ..model import Exchange
from . import ReadOptions, note_cut
from ._gor_exchange import _exchange_from_records
from ._gor_records import SEPARATOR, _looks_like_header, _parse_header
from ._limits import GOR_MAX_HEADER_LINE, human_size, too_large

__all__ = ["RequestScan", "lean_requests", "request_batches", "scan"]

_CHUNK = 1 << 20
_FLAG = "--max-record-size"
_SEP_LEN = len(SEPARATOR)
_NEXT_REQUEST = SEPARATOR + b"1 "  # a separator followed by a request record


@dataclass(frozen=True)
class RequestScan:
    """What :func:`scan` found in a file that qualifies."""

    sessions: bool  # some record may carry a connection or session (rg.conn / rg.sess)


def scan(path: str) -> RequestScan | None:
    """A :class:`RequestScan` when ``path`` is an uncompressed ``.gor`` file whose records
    are all requests, else None (compressed, other records, unreadable: use the full reader)."""
    if not path.endswith(".gor"):
        return None
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return RequestScan(sessions=False)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                if m[:2] != b"1 ":
                    return None
                records = _count(m, SEPARATOR)
                requests = _count(m, _NEXT_REQUEST)
                last = m.rfind(SEPARATOR)
                if last < 0 or m[last + _SEP_LEN :].strip(b"\r\n"):
                    records += 1  # a record (perhaps cut) after the last separator
                if requests + 1 != records:  # the first record has no separator before it
                    return None
                sessions = m.find(b" rg.conn=") >= 0 or m.find(b" rg.sess=") >= 0
                return RequestScan(sessions=sessions)
    except (OSError, ValueError):
        return None


def _count(m: mmap.mmap, needle: bytes, step: int = 64 << 20) -> int:
    """Occurrences of ``needle`` (which cannot overlap itself), ``step`` bytes at a time."""
    n, pos, size = 0, 0, len(m)
    while pos < size:
        end = min(size, pos + step)
        n += m[pos : min(size, end + len(needle) - 1)].count(needle)
        pos = end
    return n


_INT64_MAX = b"9223372036854775807"


def _plain(parts: list[bytes]) -> bool:
    """A header split on spaces is GoReplay's own request header ``1 <id> <ts>
    [<latency>]`` with numbers the full reader takes as they are: the payload is all it
    would use."""
    n = len(parts)
    if n != 4 and n != 3:
        return False
    ts = parts[2]
    if not ts.isdigit() or (len(ts) > 18 and (len(ts) > 19 or ts > _INT64_MAX)):
        return False
    if n == 3:
        return True
    lat = parts[3]
    return lat == b"-1" or (
        lat.isdigit() and (len(lat) < 19 or (len(lat) == 19 and lat <= _INT64_MAX))
    )


def request_batches(path: str, options: ReadOptions) -> Iterator[list[bytes | Exchange]]:
    """The requests of a file :func:`scan` accepted, a chunk at a time, in file order."""
    counters = options.counters
    max_record = options.max_record_size
    bad_seen = 0
    records = 0
    base = 0  # file offset of buf[0]
    buf = bytearray()  # the incomplete record at the end of what was read
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            if buf:  # a record across reads: append, search only the new part (linear)
                old = len(buf)
                buf += chunk
                if buf.find(SEPARATOR, max(0, old - _SEP_LEN + 1)) < 0:
                    _check_pending(buf, base, max_record, path, records)
                    continue
                data = bytes(buf)
            else:
                data = chunk
            out: list[bytes | Exchange] = []
            append = out.append
            pieces = data.split(SEPARATOR)
            rest = pieces.pop()  # after the last separator: the start of the next record
            if len(data) > max_record:  # else no record here can be over the limit
                start = 0
                for piece in pieces:
                    if len(piece) > max_record:
                        raise too_large("record", max_record, path, base + start, _FLAG)
                    start += len(piece) + _SEP_LEN
            # the usual records (GoReplay's own request header): nothing but the payload
            for piece in pieces:
                header, _, payload = piece.partition(b"\n")
                fields = header.split(b" ")
                n = len(fields)
                ts = fields[2] if n > 2 else b""
                if not (
                    fields[0] == b"1"  # a request: GoReplay's own header, nothing else
                    and (n == 3 or (n == 4 and fields[3] == b"-1"))
                    and ts.isdigit()
                    and (len(ts) < 19 or (len(ts) == 19 and ts <= _INT64_MAX))
                ) and not (fields[0] == b"1" and _plain(fields)):
                    break
                append(payload)
            done = len(out)
            records += done
            if done < len(pieces):  # from the first other record on, one at a time
                start = sum(len(p) for p in pieces[:done]) + done * _SEP_LEN
                for piece in pieces[done:]:
                    size = len(piece)
                    header, _, payload = piece.partition(b"\n")
                    fields = header.split(b" ")
                    if fields[0] == b"1" and _plain(fields):
                        append(payload)
                        records += 1
                    elif header.strip():
                        offset = base + start
                        try:
                            rec = _parse_header(header, offset, path)
                        except FormatError as e:
                            if not records:
                                raise
                            counters.dropped["bad_record"] += 1
                            bad_seen += 1
                            if bad_seen <= 5:
                                counters.notes[
                                    f"{path} (offset {offset}): skipped: {e.message}"
                                ] += 1
                        else:
                            rec.payload = payload
                            records += 1
                            if rec.type == 1:
                                append(_exchange_from_records(rec, []))
                            else:  # the file changed since the scan: never replayed as a request
                                counters.dropped["response_without_request"] += 1
                    start += size + _SEP_LEN
            start = len(data) - len(rest)  # the complete records' bytes and separators
            buf = bytearray(rest)
            base += start
            _check_pending(buf, base, max_record, path, records)
            if out:
                yield out
    if bytes(buf).strip(b"\r\n"):
        if not records and not _looks_like_header(bytes(buf)):
            raise FormatError(
                "not a .gor file: no record separator and no record header found",
                path=path,
                offset=base,
            )
        note_cut(counters, path, base)


def _check_pending(buf: bytearray, base: int, max_record: int, path: str, records: int) -> None:
    """The incomplete record at the end of what was read must stay within the limits."""
    n = len(buf)
    if n > max_record:
        raise too_large("record", max_record, path, base, _FLAG)
    if n > GOR_MAX_HEADER_LINE and buf.find(b"\n", 0, GOR_MAX_HEADER_LINE) < 0:
        raise FormatError(
            f"record header line is longer than {human_size(GOR_MAX_HEADER_LINE)}"
            + ("" if records else ": not a .gor file"),
            path=path,
            offset=base,
        )


def lean_requests(
    paths: Sequence[str], options: ReadOptions, sessions_ok: bool
) -> Iterator[list[bytes | Exchange]] | None:
    """Every input's requests in batches, one file after the other, when every input
    qualifies (:func:`scan`; with ``sessions_ok`` False, none may carry a connection or a
    session); else None."""
    for p in paths:
        found = scan(p)
        if found is None or (found.sessions and not sessions_ok):
            return None

    def chained() -> Iterator[list[bytes | Exchange]]:
        for p in paths:
            yield from request_batches(p, options)

    return chained()
