"""pcap and pcapng records, sans-I/O: bytes in, :class:`Frame` out.

:class:`PcapParser` accepts the file in chunks of any size (a split can fall anywhere, even
inside the global header) and returns each complete captured frame with its link type, time
stamp in ns and file offset. It reads:

* classic pcap in both byte orders, with microsecond (``a1b2c3d4``) or nanosecond
  (``a1b23c4d``) time stamps, and the old "modified" pcap (``a1b2cd34``, 24-byte records);
* pcapng: several sections (each Section Header Block restarts the interface list and may
  change byte order), Interface Description Blocks with ``if_tsresol`` (10^-n and 2^-n) and
  ``if_tsoffset``, Enhanced, Simple and obsolete Packet Blocks, and Decryption Secrets
  Blocks (``editcap --inject-secrets``: their secrets are collected in
  :attr:`PcapParser.secrets`); every other block (name resolution, statistics, custom...) is
  skipped by its length.

Corrupt bytes raise :class:`~replaygate.errors.FormatError` with the file offset of the bad
record; a file that simply stops inside a record is not an error here: :meth:`PcapParser.close`
says where the cut is and :func:`iter_frames` reports it.

The rest of the module is the file side: :func:`iter_frames` streams a (possibly gzip/zstd
compressed) file through the parser, :class:`PcapWriter` writes classic nanosecond pcap, and
:func:`build_tcp_frame` / :func:`synth_flow` build realistic frames for tests and benchmarks.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import FormatError, InputError, TruncatedError
from ..model import Counters
from .segment import ACK, FIN, PSH, SYN

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
    "build_ip_packet",
    "build_tcp_frame",
    "frame_ip_packet",
    "iter_frame_batches",
    "iter_frames",
    "synth_flow",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_NFLOG = 239
LINKTYPE_LINUX_SLL2 = 276

_CHUNK = 1 << 20
# A record longer than this is corruption, not a packet (Wireshark's limit is 256 KiB for
# most link types; we allow far more, for TSO/GRO super-frames and odd writers).
_MAX_RECORD = 64 << 20

_GOR_HEAD = re.compile(rb"^[123] [0-9a-f]{16,64} \d{9,}")
_MAGIC_USEC = 0xA1B2C3D4
_MAGIC_NSEC = 0xA1B23C4D
_MAGIC_MODIFIED = 0xA1B2CD34  # Alexey Kuznetsov's patched libpcap: 8 extra bytes per record
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_PCAPNG_DSB = 10
SECRETS_TLS_KEYLOG = 0x544C534B  # "TLSK": an NSS key log, in a Decryption Secrets Block


@dataclass(slots=True)
class Frame:
    """One captured frame: link-layer bytes as captured (maybe cut at the snap length)."""

    linktype: int
    ts_ns: int
    data: bytes
    orig_len: int
    offset: int  # file offset of the record, for error messages


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    # time stamp units -> ns: ts_ns = ts * mul // div + offset_ns
    mul: int = 1000
    div: int = 1
    offset_ns: int = 0


# Other capture formats people name .cap/.pcap, and what to do about them.
_EDITCAP = "convert it with `editcap -F pcapng IN OUT.pcapng`"
_FOREIGN_MAGICS = (
    (b"GMBU", f"a Microsoft Network Monitor 2 capture: {_EDITCAP}"),
    (b"RTSS", f"a Microsoft Network Monitor 1 capture: {_EDITCAP}"),
    (b"snoop\0\0\0", f"a Solaris snoop capture: {_EDITCAP}"),
    (b"XCP\0", f"a NetXRay/Sniffer capture: {_EDITCAP}"),
    (b"TRSNIFF", f"a Sniffer capture: {_EDITCAP}"),
)


def _not_pcap(offset: int = 0, head: bytes = b"") -> FormatError:
    """The one-line error for bytes that are no capture we read, with a hint when the
    start says what they are."""
    hint = ""
    for magic, what in _FOREIGN_MAGICS:
        if head.startswith(magic):
            hint = f" (it looks like {what})"
            break
    else:
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:64]
        if text.startswith((b"{", b"[")):
            hint = " (it looks like JSON: a HAR file should be named .har)"
        elif _GOR_HEAD.match(text):
            hint = " (it looks like a GoReplay recording: name it .gor)"
        elif (
            text[:8].isascii()
            and text[:8].strip()
            and all(32 <= c < 127 or c in b"\r\n\t" for c in text)
        ):
            hint = " (it is text)"
    return FormatError("not a pcap or pcapng file" + hint, offset=offset)


class PcapParser:
    """Incremental pcap/pcapng parser. ``feed`` returns the frames completed so far.

    After the last ``feed``, :meth:`close` returns the file offset of a trailing partial
    record (``None`` when the input ended on a record boundary).
    """

    def __init__(self) -> None:
        self._buf = b""
        self._base = 0  # file offset of _buf[0]
        self._kind = ""  # "" (not yet known), "pcap" or "pcapng"
        # classic pcap
        self._rec = struct.Struct("<IIII")
        self._rec_len = 16
        self._linktype = 0
        self._ts_mul = 1000
        self._snaplen = 0
        # pcapng
        self._e = "<"
        self._ifaces: list[_Interface] = []
        self._error: FormatError | None = None
        self.frames = 0
        # (secrets type, data) of each Decryption Secrets Block not yet taken by the caller
        self.secrets: list[tuple[int, bytes]] = []

    @property
    def kind(self) -> str:
        """``"pcap"``, ``"pcapng"`` or ``""`` before the file header was read."""
        return self._kind

    # -- driving -------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data``. Bad bytes raise FormatError (with the offset of the
        bad record); when good frames came before them in the same call, those are returned
        first and the error is raised by the next ``feed`` or ``close``."""
        if self._error is not None:
            raise self._error
        buf = self._buf + data if self._buf else bytes(data)
        if not self._kind:
            if len(buf) < 4:
                self._buf = buf
                return []
            self._start(buf)
            if not self._kind:  # header not complete yet
                self._buf = buf
                return []
            if self._kind == "pcap":
                buf = buf[24:]
                self._base += 24
        out: list[Frame] = []
        feed = self._feed_pcap if self._kind == "pcap" else self._feed_pcapng
        try:
            pos = feed(buf, out)
        except FormatError as e:
            self.frames += len(out)
            if not out:
                raise
            self._error = e  # hand out the good frames first
            self._buf = b""
            return out
        self._buf = buf[pos:]
        self._base += pos
        self.frames += len(out)
        return out

    @property
    def error(self) -> FormatError | None:
        """The deferred error, once bad bytes were seen after good frames."""
        return self._error

    def close(self) -> int | None:
        if self._error is not None:
            raise self._error
        return self._base if self._buf else None

    # -- file header -----------------------------------------------------------------------
    def _start(self, buf: bytes) -> None:
        (magic_le,) = struct.unpack_from("<I", buf, 0)
        (magic_be,) = struct.unpack_from(">I", buf, 0)
        if magic_le == _PCAPNG_SHB:
            self._kind = "pcapng"  # the SHB is parsed as a block (byte order checked there)
            return
        for magic, e in ((magic_le, "<"), (magic_be, ">")):
            if magic in (_MAGIC_USEC, _MAGIC_NSEC, _MAGIC_MODIFIED):
                if len(buf) < 24:
                    return
                _vmaj, _vmin, _zone, _sig, snaplen, network = struct.unpack_from(
                    e + "HHiIII", buf, 4
                )
                self._linktype = network & 0x03FFFFFF  # upper bits: FCS info (libpcap LT_LINKTYPE)
                self._ts_mul = 1 if magic == _MAGIC_NSEC else 1000
                self._rec = struct.Struct(e + "IIII")
                self._rec_len = 24 if magic == _MAGIC_MODIFIED else 16
                self._snaplen = snaplen
                self._kind = "pcap"
                return
        raise _not_pcap(0, bytes(buf[:64]))

    # -- classic pcap ----------------------------------------------------------------------
    def _feed_pcap(self, buf: bytes, out: list[Frame]) -> int:
        unpack = self._rec.unpack_from
        rec_len = self._rec_len
        linktype = self._linktype
        mul = self._ts_mul
        base = self._base
        n = len(buf)
        pos = 0
        append = out.append
        while pos + rec_len <= n:
            sec, frac, incl, orig = unpack(buf, pos)
            end = pos + rec_len + incl
            if incl > _MAX_RECORD:
                raise FormatError(
                    f"pcap record claims {incl} captured bytes (corrupt file)", offset=base + pos
                )
            if end > n:
                break
            append(
                Frame(linktype, sec * 1_000_000_000 + frac * mul, buf[pos + rec_len : end],
                      orig, base + pos)
            )  # fmt: skip
            pos = end
        return pos

    # -- pcapng ------------------------------------------------------------------------------
    def _feed_pcapng(self, buf: bytes, out: list[Frame]) -> int:
        n = len(buf)
        pos = 0
        base = self._base
        while pos + 12 <= n:
            (btype_le,) = struct.unpack_from("<I", buf, pos)
            if btype_le == _PCAPNG_SHB:
                # The byte order of the section is given by the BOM inside this very block.
                (bom,) = struct.unpack_from("<I", buf, pos + 8)
                if bom == _PCAPNG_BOM:
                    self._e = "<"
                elif bom == 0x4D3C2B1A:
                    self._e = ">"
                else:
                    raise (
                        _not_pcap(base + pos)
                        if base + pos == 0
                        else FormatError("pcapng section header with a bad byte-order magic",
                                         offset=base + pos)
                    )  # fmt: skip
            e = self._e
            btype, blen = struct.unpack_from(e + "II", buf, pos)
            if blen < 12 or blen % 4 or blen > _MAX_RECORD:
                raise FormatError(f"pcapng block with bad length {blen}", offset=base + pos)
            end = pos + blen
            if end > n:
                break
            (trailer,) = struct.unpack_from(e + "I", buf, end - 4)
            if trailer != blen:
                raise FormatError(
                    f"pcapng block length {blen} does not match its trailer {trailer}",
                    offset=base + pos,
                )
            if btype == 6:  # Enhanced Packet Block
                if blen < 32:
                    raise FormatError("pcapng packet block too short", offset=base + pos)
                ifid, ts_hi, ts_lo, caplen, orig = struct.unpack_from(e + "IIIII", buf, pos + 8)
                if caplen > blen - 32:
                    raise FormatError(
                        f"pcapng packet block captured length {caplen} exceeds the block",
                        offset=base + pos,
                    )
                iface = self._iface(ifid, base + pos)
                ts = (ts_hi << 32) | ts_lo
                out.append(
                    Frame(iface.linktype, ts * iface.mul // iface.div + iface.offset_ns,
                          buf[pos + 28 : pos + 28 + caplen], orig, base + pos)
                )  # fmt: skip
            elif btype == 3:  # Simple Packet Block: interface 0, no time stamp
                if blen < 16:
                    raise FormatError("pcapng simple packet block too short", offset=base + pos)
                (orig,) = struct.unpack_from(e + "I", buf, pos + 8)
                iface = self._iface(0, base + pos)
                caplen = min(orig, blen - 16, iface.snaplen or orig)
                out.append(Frame(iface.linktype, 0, buf[pos + 12 : pos + 12 + caplen], orig,
                                 base + pos))  # fmt: skip
            elif btype == 1:  # Interface Description Block
                self._parse_idb(buf, pos, blen, base + pos)
            elif btype == _PCAPNG_DSB:
                if blen < 20:
                    raise FormatError("pcapng decryption secrets block too short",
                                      offset=base + pos)  # fmt: skip
                stype, slen = struct.unpack_from(e + "II", buf, pos + 8)
                if slen > blen - 20:
                    raise FormatError(
                        f"pcapng decryption secrets length {slen} exceeds the block",
                        offset=base + pos,
                    )
                self.secrets.append((stype, bytes(buf[pos + 16 : pos + 16 + slen])))
            elif btype == 2:  # obsolete Packet Block
                if blen < 32:
                    raise FormatError("pcapng packet block too short", offset=base + pos)
                ifid, _drops, ts_hi, ts_lo, caplen, orig = struct.unpack_from(
                    e + "HHIIII", buf, pos + 8
                )
                if caplen > blen - 32:
                    raise FormatError(
                        f"pcapng packet block captured length {caplen} exceeds the block",
                        offset=base + pos,
                    )
                iface = self._iface(ifid, base + pos)
                ts = (ts_hi << 32) | ts_lo
                out.append(
                    Frame(iface.linktype, ts * iface.mul // iface.div + iface.offset_ns,
                          buf[pos + 28 : pos + 28 + caplen], orig, base + pos)
                )  # fmt: skip
            elif btype == _PCAPNG_SHB:
                if blen < 28:
                    raise FormatError("pcapng section header too short", offset=base + pos)
                (major,) = struct.unpack_from(e + "H", buf, pos + 12)
                if major != 1:
                    raise FormatError(f"pcapng version {major} is not supported", offset=base + pos)
                self._ifaces = []
            # anything else (NRB 4, ISB 5, custom 0xBAD/0x40000BAD, ...) is skipped
            pos = end
        return pos

    def _iface(self, ifid: int, offset: int) -> _Interface:
        try:
            return self._ifaces[ifid]
        except IndexError:
            raise FormatError(
                f"pcapng packet for interface {ifid}, which was never described", offset=offset
            ) from None

    def _parse_idb(self, buf: bytes, pos: int, blen: int, offset: int) -> None:
        e = self._e
        if blen < 20:
            raise FormatError("pcapng interface block too short", offset=offset)
        linktype, _res, snaplen = struct.unpack_from(e + "HHI", buf, pos + 8)
        iface = _Interface(linktype, snaplen)
        opt = pos + 16
        end = pos + blen - 4
        while opt + 4 <= end:
            code, olen = struct.unpack_from(e + "HH", buf, opt)
            val = opt + 4
            if code == 0 or val + olen > end:
                break
            if code == 9 and olen >= 1:  # if_tsresol
                r = buf[val]
                if r & 0x80:
                    iface.mul, iface.div = 1_000_000_000, 1 << (r & 0x7F)
                else:
                    exp = r & 0x7F
                    if exp <= 9:
                        iface.mul, iface.div = 10 ** (9 - exp), 1
                    else:
                        iface.mul, iface.div = 1, 10 ** (exp - 9)
            elif code == 14 and olen >= 8:  # if_tsoffset, seconds
                (secs,) = struct.unpack_from(e + "q", buf, val)
                iface.offset_ns = secs * 1_000_000_000
            opt = val + ((olen + 3) & ~3)
        self._ifaces.append(iface)


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------


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
        self._f.write(struct.pack("<IHHiIII", _MAGIC_NSEC, 2, 4, 0, 0, snaplen, linktype))
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


# ----------------------------------------------------------------------------------------------
# Frame builders (tests, benchmarks, fixtures)
# ----------------------------------------------------------------------------------------------

_MAC_A = bytes.fromhex("020000000001")
_MAC_B = bytes.fromhex("020000000002")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _tcp_header(sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
    return struct.pack(
        "!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0
    )


def build_ip_packet(
    *, src: str, dst: str, proto: int, payload: bytes, ident: int = 0, ttl: int = 64
) -> bytes:
    """An IPv4 (header checksum filled in) or IPv6 packet, chosen by the address family."""
    if ":" in src:
        return (
            struct.pack("!IHBB", 6 << 28, len(payload), proto, ttl)
            + socket.inet_pton(socket.AF_INET6, src)
            + socket.inet_pton(socket.AF_INET6, dst)
            + payload
        )
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, ttl, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    csum = _checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def frame_ip_packet(
    ip: bytes, *, linktype: int = 1, vlan: tuple[int, ...] = (), pppoe: bool = False
) -> bytes:
    """Wrap an IP packet in a link-layer header of ``linktype``.

    Ethernet may carry VLAN tags (outermost first; the outer ones get the 802.1ad TPID
    0x88a8 when there are several) and a PPPoE session header.
    """
    v6 = (ip[0] >> 4) == 6
    ethertype = 0x86DD if v6 else 0x0800
    if linktype == LINKTYPE_ETHERNET:
        tags = b""
        for i, vid in enumerate(vlan):
            tpid = 0x88A8 if i < len(vlan) - 1 else 0x8100
            tags += struct.pack("!HH", tpid, vid & 0x0FFF)
        if pppoe:
            body = struct.pack("!BBHHH", 0x11, 0, 0x1234, len(ip) + 2, 0x0057 if v6 else 0x0021)
            return _MAC_B + _MAC_A + tags + b"\x88\x64" + body + ip
        return _MAC_B + _MAC_A + tags + struct.pack("!H", ethertype) + ip
    if linktype in (LINKTYPE_RAW, 12, 14, 228, 229):
        return ip
    if linktype in (9, 50):  # PPP in HDLC-like framing
        return b"\xff\x03" + (b"\x00\x57" if v6 else b"\x00\x21") + ip
    if linktype == 104:  # Cisco HDLC
        return b"\x0f\x00" + struct.pack("!H", ethertype) + ip
    if linktype == 117:  # pflog: 61-byte header (length byte first), padded to 64
        return bytes([61, 24 if v6 else 2]) + b"\0" * 62 + ip  # (BSD's AF_INET6)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        fam = 30 if v6 else 2
        # NULL is in the capturing host's byte order (little-endian here); LOOP is big-endian
        return struct.pack("<I" if linktype == LINKTYPE_NULL else ">I", fam) + ip
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack("!HHH8sH", 0, 1, 6, _MAC_A + b"\0\0", ethertype) + ip
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, 0, 6, _MAC_A + b"\0\0") + ip
    if linktype == LINKTYPE_NFLOG:
        prefix = struct.pack("<HH", 8, 1) + struct.pack("!HBB", ethertype, 0, 0)  # packet hdr
        tlv_len = 4 + len(ip)
        payload_tlv = struct.pack("<HH", tlv_len, 9) + ip + b"\0" * ((-tlv_len) % 4)
        return struct.pack("!BBH", 10 if v6 else 2, 0, 0) + prefix + payload_tlv
    raise ValueError(f"no frame builder for link type {linktype}")


def build_tcp_frame(
    *,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int = 0,
    flags: int,
    payload: bytes = b"",
    linktype: int = 1,
    vlan: tuple[int, ...] = (),
    pppoe: bool = False,
    ident: int = 0,
) -> bytes:
    """One TCP segment as a captured frame (IPv4 or IPv6 by address; TCP checksum left 0,
    as with checksum offload)."""
    tcp = _tcp_header(sport, dport, seq, ack, flags) + payload
    ip = build_ip_packet(src=src, dst=dst, proto=6, payload=tcp, ident=ident)
    return frame_ip_packet(ip, linktype=linktype, vlan=vlan, pppoe=pppoe)


def synth_flow(
    pairs: Sequence[tuple[bytes, bytes]],
    *,
    client: tuple[str, int] = ("10.0.0.1", 40000),
    server: tuple[str, int] = ("10.0.0.2", 80),
    start_ns: int = 1_700_000_000_000_000_000,
    mss: int = 1460,
    linktype: int = 1,
    vlan: tuple[int, ...] = (),
    handshake: bool = True,
    close: bool = True,
    acks: bool = True,
    step_ns: int = 10_000,
    isn: tuple[int, int] = (1000, 50000),
) -> list[tuple[int, bytes]]:
    """Frames of one keep-alive TCP connection carrying ``pairs`` of (request, response) bytes.

    A three-way handshake, each message cut into ``mss``-sized segments, one pure ACK from the
    receiver after each message, and a FIN exchange at the end; time advances by ``step_ns``
    per frame. Returns ``[(ts_ns, frame), ...]`` ready for :class:`PcapWriter`.
    """
    (csrc, cport), (ssrc, sport) = client, server
    cseq, sseq = isn
    out: list[tuple[int, bytes]] = []
    ts = start_ns

    def emit(from_client: bool, seq: int, ack: int, flags: int, payload: bytes = b"") -> None:
        nonlocal ts
        if from_client:
            f = build_tcp_frame(
                src=csrc,
                dst=ssrc,
                sport=cport,
                dport=sport,
                seq=seq,
                ack=ack,
                flags=flags,
                payload=payload,
                linktype=linktype,
                vlan=vlan,
            )
        else:
            f = build_tcp_frame(
                src=ssrc,
                dst=csrc,
                sport=sport,
                dport=cport,
                seq=seq,
                ack=ack,
                flags=flags,
                payload=payload,
                linktype=linktype,
                vlan=vlan,
            )
        out.append((ts, f))  # fmt: skip
        ts += step_ns

    if handshake:
        emit(True, cseq, 0, SYN)
        emit(False, sseq, cseq + 1, SYN | ACK)
        cseq += 1
        sseq += 1
        emit(True, cseq, sseq, ACK)
    for req, resp in pairs:
        for i in range(0, len(req), mss):
            part = req[i : i + mss]
            emit(True, cseq, sseq, ACK | PSH, part)
            cseq += len(part)
        if acks and req:
            emit(False, sseq, cseq, ACK)
        for i in range(0, len(resp), mss):
            part = resp[i : i + mss]
            emit(False, sseq, cseq, ACK | PSH, part)
            sseq += len(part)
        if acks and resp:
            emit(True, cseq, sseq, ACK)
    if close:
        emit(True, cseq, sseq, FIN | ACK)
        cseq += 1
        emit(False, sseq, cseq, FIN | ACK)
        sseq += 1
        emit(True, cseq, sseq, ACK)
    return out
