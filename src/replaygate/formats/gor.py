"""GoReplay's ``.gor`` file format: replaygate's own recording format.

A file is a sequence of records::

    <type> <id> <timestamp_ns> <latency_ns>[ <extra>...]\\n
    <raw HTTP bytes>
    \\n🐵🙈🙉\\n

``type`` is 1 (request), 2 (original response) or 3 (replayed response). Old GoReplay files
have only three header fields (no latency). GoReplay splits the header line on spaces and
reads the first fields only, so replaygate carries its own metadata as extra ``rg.<key>=<value>``
fields (values percent-encoded, never containing a space); GoReplay ignores them and
replaygate reads them back. Version of this metadata: ``rg.v=1``; older versions are upgraded
on reading by the converters in :mod:`._gor_compat`.

Like GoReplay (``input_file.go``: split on spaces, at least three fields, ``meta[2]`` is the
timestamp, ``-1`` is "no latency") a reader must ignore fields it does not know; the test
suite checks our files against a transcription of that reader. Latencies differ by writer:
see :func:`._gor_exchange._exchange_from_records`.

Reading is sans-I/O (:class:`GorRecordParser` in :mod:`._gor_records`: bytes in, records out)
with the thin file wrappers of this module around it. A file cut short reads back every
complete record; the cut is reported with its offset through ``on_truncated`` (or raised as
:class:`TruncatedError` in strict mode). A malformed record after good ones is skipped through
``on_bad``; a file that does not start like a ``.gor`` file (or a ``.gz``/``.zst`` name on
bytes that are not) is a FormatError. Exchanges map to records in :mod:`._gor_exchange`.
"""

from __future__ import annotations

import gzip
import io
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, cast

from .._clock import SYSTEM_CLOCK, Clock
from ..errors import FormatError, InputError, TruncatedError
from ..model import ConnectionId, Exchange
from ._gor_exchange import META_VERSION as META_VERSION
from ._gor_exchange import WholeEncoder, _exchange_parts, whole_encoder
from ._gor_exchange import _exchange_from_records as _exchange_from_records
from ._gor_exchange import exchange_bytes as exchange_bytes
from ._gor_exchange import exchange_records as exchange_records
from ._gor_records import _SAFE as _SAFE
from ._gor_records import SEPARATOR as SEPARATOR
from ._gor_records import GorRecord as GorRecord
from ._gor_records import GorRecordParser as GorRecordParser
from ._gor_records import _quote as _quote
from ._gor_records import encode_record as encode_record
from ._gor_records import parse_bytes as parse_bytes
from ._limits import DEFAULT_MAX_RECORD, write_error, writing

__all__ = [
    "SEPARATOR",
    "GorRecord",
    "GorRecordParser",
    "GorWriter",
    "encode_record",
    "exchange_bytes",
    "exchange_records",
    "open_binary",
    "read_exchanges",
    "read_records",
]

_CHUNK = 1 << 20


def open_binary(path: str | os.PathLike[str], mode: str = "rb") -> BinaryIO:
    """Open a file, transparently (de)compressing by extension: ``.gz`` gzip, ``.zst`` zstd."""
    p = os.fspath(path)
    try:
        if p.endswith(".gz"):
            if "r" in mode:
                return gzip.open(p, mode)  # type: ignore[return-value]
            # level 6 like gzip(1)'s default; 9 costs twice the time for ~1% smaller files
            return gzip.open(p, mode, compresslevel=6)  # type: ignore[return-value]
        if p.endswith(".zst"):
            import zstandard

            raw = open(p, mode)  # noqa: SIM115 - closed by the zstd stream
            if "r" in mode:
                from ._zstd import ZstdReader

                return cast(BinaryIO, ZstdReader(raw))  # reports a stream cut inside a frame
            return zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=True)
        return open(p, mode)  # type: ignore[return-value]
    except FileNotFoundError:
        raise InputError("no such file", path=p) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=p) from None
    except PermissionError:
        raise InputError("permission denied", path=p) from None


def read_records(
    path: str | os.PathLike[str],
    *,
    on_truncated: Callable[[int], None] | None = None,
    strict: bool = False,
    on_bad: Callable[[int, str], None] | None = None,
    max_record: int = DEFAULT_MAX_RECORD,
) -> Iterator[GorRecord]:
    """Yield every complete record of a ``.gor`` file (optionally compressed).

    A malformed record header after the first good record is passed to ``on_bad(offset,
    reason)`` and skipped (raised as FormatError when ``on_bad`` is None). A record longer
    than ``max_record`` bytes is a FormatError."""
    p = os.fspath(path)
    parser = GorRecordParser(p, on_bad=on_bad, max_record=max_record)
    with open_binary(p) as f:
        # read1: a damaged compressed stream still yields everything before the damage
        read = getattr(f, "read1", f.read)
        try:
            while True:
                chunk = read(_CHUNK)
                if not chunk:
                    break
                yield from parser.feed(chunk)
        except (EOFError, OSError) as e:  # gzip/zstd stream cut short or not compressed
            if isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError):
                raise
            _damaged(p, parser, e, strict, on_truncated)
            return
        except Exception as e:
            if type(e).__name__ != "ZstdError":
                raise
            _damaged(p, parser, e, strict, on_truncated)
            return
    cut = parser.close()
    if cut is not None:
        if strict:
            raise TruncatedError(
                "file ends inside a record (no separator); earlier records were read",
                path=p,
                offset=cut,
            )
        if on_truncated is not None:
            on_truncated(cut)


def _damaged(
    path: str,
    parser: GorRecordParser,
    err: BaseException,
    strict: bool,
    on_truncated: Callable[[int], None] | None,
) -> None:
    """A compressed stream failed: not compressed at all (nothing read yet), or cut/damaged
    after ``parser._base`` bytes of uncompressed data (everything before was yielded)."""
    kind = "zstd" if path.endswith(".zst") else "gzip"
    nothing = not parser.records and not parser._base and not parser._buf
    if nothing and not isinstance(err, EOFError):
        raise FormatError(f"not a {kind} stream: {err}", path=path) from None
    if strict:
        raise TruncatedError(f"{kind} stream is cut or damaged: {err}", path=path) from None
    if on_truncated is not None:
        on_truncated(parser._base)


def read_exchanges(
    path: str | os.PathLike[str],
    *,
    window: int = 2_000,
    on_truncated: Callable[[int], None] | None = None,
    on_orphan: Callable[[GorRecord], None] | None = None,
    on_bad: Callable[[int, str], None] | None = None,
    max_record: int = DEFAULT_MAX_RECORD,
) -> Iterator[Exchange]:
    """Group records by id into exchanges, in the order their requests appear.

    Responses may follow their request at any distance; an exchange is released once it holds
    its original response (and its replayed one, if the file has shown any), or when more than
    ``window`` newer exchanges are pending (bounded memory), or at the end of the file. Responses whose request never
    appears are passed to ``on_orphan``.
    """
    # FIFO of exchanges being assembled, keyed by arrival number (ids can repeat when files
    # are concatenated); ``latest`` maps an id to its newest pending entry.
    pending: OrderedDict[int, list[Any]] = OrderedDict()
    latest: dict[str, int] = {}
    seen_types: set[int] = set()
    counter = 0

    def ready(item: list[Any]) -> bool:
        req, others = item
        if req is None or not others:  # no response yet: never ready (see below)
            return False
        have = {r.type for r in others if r.extra.get("interim") != "1"}
        # A response may arrive at any distance, so a request alone is never "ready"; it is
        # released by the window (request-only files) or at the end of the file. Whether the
        # file holds replayed (type 3) records is only known once one was seen: until a later
        # exchange shows up, the front one waits for its type 3 too.
        if 2 not in have:
            return False
        return 3 in have or (3 not in seen_types and len(pending) > 1)

    def pop_front(key: int, item: list[Any]) -> Exchange | None:
        """Take the front exchange out: built, or None for orphan responses (reported)."""
        del pending[key]
        req, others = item
        rid = req.id if req is not None else others[0].id
        if latest.get(rid) == key:
            del latest[rid]
        if req is None:
            for o in others:
                if on_orphan is not None:
                    on_orphan(o)
            return None
        return _exchange_from_records(req, others)

    for rec in read_records(path, on_truncated=on_truncated, on_bad=on_bad, max_record=max_record):
        seen_types.add(rec.type)
        key = latest.get(rec.id)
        item = pending.get(key) if key is not None else None
        if rec.type == 1 and item is not None and item[0] is None:
            item[0] = rec  # its responses came first
        elif rec.type == 1 or item is None:
            counter += 1
            key = counter
            latest[rec.id] = key
            pending[key] = [rec, []] if rec.type == 1 else [None, [rec]]
        else:
            item[1].append(rec)
        # Only a change to the oldest pending exchange (or the window filling up) can let
        # exchanges out, so most records cost no scan at all.
        if len(pending) > window or next(iter(pending)) == key:
            while pending:  # release the front while it is ready or the window is full
                front = next(iter(pending))
                item = pending[front]
                if len(pending) <= window and not ready(item):
                    break
                ex = pop_front(front, item)
                if ex is not None:
                    yield ex
    while pending:
        front = next(iter(pending))
        ex = pop_front(front, pending[front])
        if ex is not None:
            yield ex


class GorWriter:
    """A sink writing exchanges to a ``.gor`` file (compressed by extension).

    With ``max_bytes`` or ``max_seconds`` the file rotates: ``name.gor`` becomes
    ``name_0.gor``, ``name_1.gor``, ... (GoReplay's naming), each a complete, readable file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        append: bool = False,
        max_bytes: int | None = None,
        max_seconds: float | None = None,
        with_metadata: bool = True,
        clock: Clock | Callable[[], float] | None = None,
    ) -> None:

        self.path = os.fspath(path)
        self._append = append
        self._max_bytes = max_bytes
        self._max_seconds = max_seconds
        self._meta = with_metadata
        # --max-seconds is measured on it: a Clock (its monotonic()) or a bare function
        c = SYSTEM_CLOCK if clock is None else clock
        self._clock: Callable[[], float] = c if callable(c) else c.monotonic
        self._index = 0
        self._f: BinaryIO | None = None
        self._written = 0
        self._opened_at = 0.0
        self.files: list[str] = []
        self.records = 0

    def _name(self) -> str:
        if self._max_bytes is None and self._max_seconds is None:
            return self.path
        base, ext = _split_ext(self.path)
        return f"{base}_{self._index}{ext}"

    def _open(self) -> BinaryIO:
        name = self._name()
        d = os.path.dirname(name)
        if d and not os.path.isdir(d):
            raise InputError("directory does not exist", path=d)
        try:
            f = open_binary(name, "ab" if self._append else "wb")
        except InputError:
            raise
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror}", path=name) from None
        self.files.append(name)
        self._written = 0
        self._opened_at = self._clock()
        return f

    def _rotate_if_needed(self) -> None:
        if self._f is None:
            self._f = self._open()
            return
        if (self._max_bytes is not None and self._written >= self._max_bytes) or (
            self._max_seconds is not None and self._clock() - self._opened_at >= self._max_seconds
        ):
            self._f.close()
            self._index += 1
            self._f = self._open()

    def write_record(self, rec: GorRecord) -> None:
        self._rotate_if_needed()
        assert self._f is not None
        if not self._meta:
            rec = GorRecord(rec.type, rec.id, rec.ts_ns, rec.latency_ns, rec.payload)
        data = encode_record(rec)
        with writing(self._f_name):
            self._f.write(data)
        self._written += len(data)
        self.records += 1

    def write(self, ex: Exchange) -> None:
        parts = _exchange_parts(ex, self._meta)
        if self._max_bytes is None and self._max_seconds is None:
            if self._f is None:
                self._f = self._open()
            data = b"".join(parts)
            self._f.write(data)
            self._written += len(data)
            self.records += len(parts) // 3
            return
        for i in range(0, len(parts), 3):  # a rotating file may switch between records
            self._rotate_if_needed()
            assert self._f is not None
            data = b"".join(parts[i : i + 3])
            self._f.write(data)
            self._written += len(data)
            self.records += 1

    # -- encoded on the producer's thread, written in batches (live recorders) ---------------
    def encode(self, ex: Exchange) -> list[bytes]:
        """``ex`` as the byte strings of its records (header line, payload, separator each),
        for :meth:`write_encoded`. A live recorder encodes on its own (event loop) thread,
        where it is cheap and needs no handoff, and gives its writer thread whole batches:
        the payloads are the recorded ``bytes`` themselves (no copy until the kernel's)."""
        return _exchange_parts(ex, self._meta)

    def whole_encoder(self, conn: ConnectionId | None, meta: Mapping[str, str]) -> WholeEncoder:
        """:func:`._gor_exchange.whole_encoder` with this writer's metadata setting: encodes
        a connection's plain exchanges for :meth:`write_encoded` without an Exchange."""
        return whole_encoder(conn, meta, self._meta)

    def write_encoded(self, batch: Sequence[list[bytes]]) -> None:
        """Write exchanges encoded by :meth:`encode`, in order: the same bytes as
        :meth:`write` of each. A plain file gets them in a few ``writev`` calls (the
        interpreter lock is released while the kernel copies); a rotating file may switch
        between records, as :meth:`write` does."""
        if self._max_bytes is not None or self._max_seconds is not None:
            for parts in batch:
                for i in range(0, len(parts), 3):
                    self._rotate_if_needed()
                    assert self._f is not None
                    data = b"".join(parts[i : i + 3])
                    with writing(self._f_name):
                        self._f.write(data)
                    self._written += len(data)
                    self.records += 1
            return
        if self._f is None:
            self._f = self._open()
        flat = [b for parts in batch for b in parts]
        try:
            if _WRITEV and isinstance(self._f, io.BufferedWriter):
                self._f.flush()  # whatever write() left buffered goes first
                n = _writev_all(self._f.fileno(), flat)
            else:  # compressed: the compressor wants one buffer
                data = b"".join(flat)
                self._f.write(data)
                n = len(data)
        except OSError as e:
            raise write_error(e, self._f_name) from None
        self._written += n
        self.records += len(flat) // 3

    @property
    def _f_name(self) -> str:
        return self.files[-1] if self.files else self.path

    def flush(self) -> None:
        if self._f is not None:
            try:
                self._f.flush()
            except OSError as e:
                raise write_error(e, self._f_name) from None

    def close(self) -> None:
        if self._f is None:
            self._f = self._open()  # an empty run still leaves an (empty) file
        with writing(self._f_name):
            self._f.close()


_IOV_MAX = 1024  # buffers per writev call (Linux's UIO_MAXIOV)
_WRITEV = hasattr(os, "writev")  # POSIX; elsewhere one joined write


def _writev_all(fd: int, bufs: list[bytes]) -> int:
    """Write every buffer, in order, with as few ``writev`` calls as the kernel allows;
    returns the byte count. A short write (a signal, a full pipe) continues where it
    stopped."""
    total = 0
    for i in range(0, len(bufs), _IOV_MAX):
        chunk = bufs[i : i + _IOV_MAX]
        want = sum(map(len, chunk))
        total += want
        n = os.writev(fd, chunk)
        if n != want:
            _write_rest(fd, chunk, n, want)
    return total


def _write_rest(fd: int, chunk: list[bytes], n: int, want: int) -> None:
    """The rest of ``chunk`` after a ``writev`` that wrote its first ``n`` bytes of ``want``."""
    rest: list[bytes | memoryview] = list(chunk)
    want -= n
    while want:
        while n >= len(rest[0]):  # drop what was written whole, cut the first one left
            n -= len(rest.pop(0))
        rest[0] = memoryview(rest[0])[n:]
        n = os.writev(fd, rest)
        want -= n


def _split_ext(path: str) -> tuple[str, str]:
    for ext in (".gor.gz", ".gor.zst", ".gz", ".zst"):
        if path.endswith(ext):
            return path[: -len(ext)], ext
    base, ext = os.path.splitext(path)
    return base, ext


def write_bytes(exchanges: list[Exchange]) -> bytes:
    """Serialize exchanges to ``.gor`` bytes in memory."""
    return b"".join(exchange_bytes(ex) for ex in exchanges)
