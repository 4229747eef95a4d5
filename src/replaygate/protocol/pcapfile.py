"""pcap and pcapng files: :func:`iter_frames` streams a (possibly gzip/zstd compressed) file
through the sans-I/O :class:`PcapParser` (in :mod:`replaygate.protocol._pcap_records`, re-exported
here), and :class:`PcapWriter` writes classic nanosecond pcap.

Frame builders for tests and benchmarks (``build_tcp_frame``, ``synth_flow``...) are in
:mod:`replaygate.testing.frames`.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

from ..errors import FormatError, InputError, TruncatedError
from ..model import Counters
from ._pcap_records import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NFLOG,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    MAGIC_NSEC,
    SECRETS_TLS_KEYLOG,
    Frame,
    PcapParser,
)

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NFLOG",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "SECRETS_TLS_KEYLOG",
    "Frame",
    "PcapParser",
    "PcapWriter",
    "iter_frame_batches",
    "iter_frames",
]

_CHUNK = 1 << 20


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")  # closed by the caller
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a capture file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    except OSError as e:
        raise InputError(f"cannot open: {e.strerror or e}", path=path) from None


class _Chunks:
    """The decompressed bytes of a file, chunk by chunk; gzip (several members too) or zstd
    by magic, whatever the extension says. ``cut`` is set when a compressed stream ends
    before its end marker; what decompressed up to there is still handed out."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cut = False
        self.kind = ""

    def __iter__(self) -> Iterator[bytes]:
        path = self.path
        with _open(path) as f:
            try:
                first = f.read(_CHUNK)
            except OSError as e:
                raise InputError(f"cannot read: {e.strerror or e}", path=path) from None
            if first[:2] == b"\x1f\x8b":
                self.kind = "gzip"
                yield from self._gzip(f, first)
            elif first[:4] == b"\x28\xb5\x2f\xfd":
                self.kind = "zstd"
                yield from self._zstd(f, first)
            else:
                # (a file named .gz that is not compressed is read as it is: the magic counts)
                chunk = first
                while chunk:
                    yield chunk
                    chunk = f.read(_CHUNK)

    def _gzip(self, f: BinaryIO, first: bytes) -> Iterator[bytes]:
        d = zlib.decompressobj(31)
        raw = first
        consumed = 0
        while raw:
            try:
                out = d.decompress(raw)
                while d.eof and d.unused_data:  # concatenated gzip members
                    rest = d.unused_data
                    d = zlib.decompressobj(31)
                    out += d.decompress(rest)
            except zlib.error as e:
                raise FormatError(f"corrupt gzip data ({e})", path=self.path,
                                  offset=consumed) from None  # fmt: skip
            consumed += len(raw)
            if out:
                yield out
            raw = f.read(_CHUNK)
        tail = d.flush()
        if tail:
            yield tail
        if not d.eof:
            self.cut = True

    def _zstd(self, f: BinaryIO, first: bytes) -> Iterator[bytes]:
        import zstandard

        d = zstandard.ZstdDecompressor().decompressobj()
        raw = first
        consumed = 0
        while raw:
            try:
                out = d.decompress(raw)
                while d.eof and d.unused_data:
                    rest = d.unused_data
                    d = zstandard.ZstdDecompressor().decompressobj()
                    out += d.decompress(rest)
            except zstandard.ZstdError as e:
                raise FormatError(f"corrupt zstd data ({e})", path=self.path,
                                  offset=consumed) from None  # fmt: skip
            consumed += len(raw)
            if out:
                yield out
            raw = f.read(_CHUNK)
        if not d.eof:
            self.cut = True


def iter_frames(path: str, counters: Counters | None = None) -> Iterator[Frame]:
    """Every frame of a pcap/pcapng file (plain, gzip or zstd), streamed in 1 MiB chunks.

    A file cut short (a capture still being written, a crash) yields every complete frame;
    the cut is counted (``counters.dropped['pcap.truncated_record']``, with its offset in
    ``counters.notes['pcap.truncated_at_offset']``). Without ``counters`` the cut is raised as
    a :class:`~replaygate.errors.TruncatedError` after the last frame, so it is never silent.
    """
    for batch in iter_frame_batches(path, counters):
        yield from batch


def iter_frame_batches(
    path: str,
    counters: Counters | None = None,
    on_secrets: Callable[[int, bytes], None] | None = None,
) -> Iterator[list[Frame]]:
    """:func:`iter_frames` a chunk at a time (lists of frames), for loops that batch work.

    ``on_secrets(type, data)`` is called for each pcapng Decryption Secrets Block before the
    frames read with it are yielded (a DSB precedes the packets it decrypts)."""
    path = os.fspath(path)
    source = _Chunks(path)
    parser = PcapParser()
    total = 0
    for chunk in source:
        total += len(chunk)
        try:
            frames = parser.feed(chunk)
        except FormatError as e:
            raise FormatError(e.message, path=path, offset=e.offset) from None
        if parser.secrets:
            if on_secrets is not None:
                for stype, data in parser.secrets:
                    on_secrets(stype, data)
            parser.secrets.clear()
        if frames:
            yield frames
        if parser.error is not None:
            err = parser.error
            raise FormatError(err.message, path=path, offset=err.offset) from None
    if source.cut and not parser.kind:
        raise TruncatedError(
            f"{source.kind} data cut short before the capture's file header",
            path=path, offset=0,
        )  # fmt: skip
    if total == 0:
        raise FormatError("empty file, not a pcap or pcapng file", path=path, offset=0)
    cut = parser.close()
    if cut is None and not source.cut:
        return
    if not parser.kind:
        raise FormatError("file too short for a pcap or pcapng header", path=path, offset=0)
    where = cut if cut is not None else total
    if counters is None:
        raise TruncatedError(
            f"capture file ends inside a record after {parser.frames} frames", path=path,
            offset=where,
        )  # fmt: skip
    counters.dropped["pcap.truncated_record"] += 1
    counters.notes["pcap.truncated_at_offset"] = where


class PcapWriter:
    """Write classic pcap with nanosecond time stamps (for fixtures and benchmarks); a path
    ending in ``.gz`` is gzip-compressed. A file object given is flushed, not closed."""

    def __init__(
        self, path_or_file: str | os.PathLike[str] | BinaryIO, linktype: int = 1,
        snaplen: int = 262144,
    ) -> None:  # fmt: skip
        if isinstance(path_or_file, (str, os.PathLike)):
            p = os.fspath(path_or_file)
            self._f: BinaryIO = gzip.open(p, "wb") if p.endswith(".gz") else open(p, "wb")  # type: ignore[assignment]  # noqa: SIM115
            self._own = True
        else:
            self._f = path_or_file
            self._own = False
        self._f.write(struct.pack("<IHHiIII", MAGIC_NSEC, 2, 4, 0, 0, snaplen, linktype))
        self._hdr = struct.Struct("<IIII")

    def write(self, ts_ns: int, data: bytes, orig_len: int | None = None) -> None:
        sec, ns = divmod(ts_ns, 1_000_000_000)
        self._f.write(self._hdr.pack(sec, ns, len(data), len(data) if orig_len is None
                                     else orig_len) + data)  # fmt: skip

    def write_many(self, frames: Sequence[tuple[int, bytes]]) -> None:
        pack = self._hdr.pack
        parts: list[bytes] = []
        for ts_ns, data in frames:
            sec, ns = divmod(ts_ns, 1_000_000_000)
            parts.append(pack(sec, ns, len(data), len(data)))
            parts.append(data)
        self._f.write(b"".join(parts))

    def close(self) -> None:
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
