"""Detect a zstd stream cut short. ``zstandard``'s stream reader returns end-of-file in the
middle of a frame without a word, so a ``.gor.zst`` cut by ``kill -9`` would look complete.
:class:`FrameScanner` follows the frame structure (RFC 8878 §3.1: frame headers, block
headers, checksums, skippable frames) of the compressed bytes as they pass, without
decompressing, so the reader can tell at the end whether the last frame was complete.
"""

from __future__ import annotations

from typing import IO, BinaryIO, cast

__all__ = ["FrameScanner", "TrackedRaw"]

_MAGIC = 0xFD2FB528
_SKIPPABLE = 0x184D2A50  # .. 0x184D2A5F


class FrameScanner:
    """Sans-I/O: ``feed`` compressed bytes; ``at_boundary`` says whether they end between
    frames. ``bad`` is set (and scanning stops) on bytes that are not zstd frames; the
    decompressor reports those itself."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0  # bytes of the current block/skippable frame still to pass
        self._state = "magic"  # magic | fhd | blocks | checksum
        self._checksum = False
        self._need = 0  # header bytes still needed in state fhd
        self.bad = False

    @property
    def at_boundary(self) -> bool:
        return self.bad or (self._state == "magic" and not self._buf and not self._skip)

    def feed(self, data: bytes) -> None:
        if self.bad:
            return
        pos = 0
        n = len(data)
        while pos < n:
            if self._skip:
                step = min(self._skip, n - pos)
                self._skip -= step
                pos += step
                continue
            want = self._want()
            take = min(want - len(self._buf), n - pos)
            self._buf += data[pos : pos + take]
            pos += take
            if len(self._buf) == want:
                self._advance()
                if self.bad:
                    return

    def _want(self) -> int:
        if self._state == "magic":
            return 4 if len(self._buf) < 4 or self._is_skippable() is False else 8
        if self._state == "fhd":
            return self._need
        if self._state == "blocks":
            return 3
        return 4  # checksum

    def _is_skippable(self) -> bool:
        return int.from_bytes(self._buf[:4], "little") & 0xFFFFFFF0 == _SKIPPABLE

    def _advance(self) -> None:
        b = self._buf
        if self._state == "magic":
            magic = int.from_bytes(b[:4], "little")
            if magic & 0xFFFFFFF0 == _SKIPPABLE:
                if len(b) < 8:
                    return  # _want() now asks for the size field
                self._skip = int.from_bytes(b[4:8], "little")
                b.clear()
                return
            if magic != _MAGIC:
                self.bad = True
                return
            b.clear()
            self._state, self._need = "fhd", 1
            return
        if self._state == "fhd":
            if self._need == 1 and len(b) == 1:
                fhd = b[0]
                fcs_flag, single = fhd >> 6, (fhd >> 5) & 1
                did = (0, 1, 2, 4)[fhd & 3]
                fcs = (1 if single else 0, 2, 4, 8)[fcs_flag]
                self._checksum = bool(fhd & 4)
                rest = (0 if single else 1) + did + fcs
                if rest:
                    self._need = 1 + rest
                    return
            b.clear()
            self._state = "blocks"
            return
        if self._state == "blocks":
            h = int.from_bytes(b[:3], "little")
            last, kind, size = h & 1, (h >> 1) & 3, h >> 3
            b.clear()
            if kind == 3:
                self.bad = True
                return
            self._skip = 1 if kind == 1 else size  # RLE blocks hold one byte
            if last:
                self._state = "checksum" if self._checksum else "magic"
            return
        b.clear()  # checksum
        self._state = "magic"


class TrackedRaw:
    """A file object that shows the bytes read through it to a :class:`FrameScanner`."""

    def __init__(self, raw: BinaryIO, scanner: FrameScanner) -> None:
        self._raw = raw
        self.scanner = scanner
        self.eof = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self.scanner.feed(data)
        elif size != 0:
            self.eof = True
        return data

    def close(self) -> None:
        self._raw.close()


class ZstdReader:
    """Read a zstd file across frames; raises EOFError when the file ends inside a frame."""

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._tracked = TrackedRaw(cast(BinaryIO, raw), FrameScanner())
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], self._tracked), read_across_frames=True, closefd=False
        )

    def read(self, size: int = -1) -> bytes:
        data = self._reader.read(size)
        if not data and size != 0 and not self._tracked.scanner.at_boundary:
            raise EOFError("zstd stream cut short inside a frame")
        return data

    read1 = read

    def close(self) -> None:
        self._reader.close()  # type: ignore[no-untyped-call]
        self._tracked.close()

    def __enter__(self) -> ZstdReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
