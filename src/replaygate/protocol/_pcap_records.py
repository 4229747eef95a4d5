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
says where the cut is and :func:`~replaygate.protocol.pcapfile.iter_frames` reports it.

The file side (reading, decompressing, writing) is :mod:`replaygate.protocol.pcapfile`, which
re-exports everything here; frame builders for tests are in :mod:`replaygate.testing.frames`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ..errors import FormatError

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NFLOG",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "MAGIC_NSEC",
    "SECRETS_TLS_KEYLOG",
    "Frame",
    "PcapParser",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_NFLOG = 239
LINKTYPE_LINUX_SLL2 = 276

# A record longer than this is corruption, not a packet (Wireshark's limit is 256 KiB for
# most link types; we allow far more, for TSO/GRO super-frames and odd writers).
_MAX_RECORD = 64 << 20

_GOR_HEAD = re.compile(rb"^[123] [0-9a-f]{16,64} \d{9,}")
_MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
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
            if magic in (_MAGIC_USEC, MAGIC_NSEC, _MAGIC_MODIFIED):
                if len(buf) < 24:
                    return
                _vmaj, _vmin, _zone, _sig, snaplen, network = struct.unpack_from(
                    e + "HHiIII", buf, 4
                )
                self._linktype = network & 0x03FFFFFF  # upper bits: FCS info (libpcap LT_LINKTYPE)
                self._ts_mul = 1 if magic == MAGIC_NSEC else 1000
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
                out.append(self._packet(buf, pos, blen, base, ifid, ts_hi, ts_lo, caplen, orig))
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
                out.append(self._packet(buf, pos, blen, base, ifid, ts_hi, ts_lo, caplen, orig))
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

    def _packet(
        self, buf: bytes, pos: int, blen: int, base: int,
        ifid: int, ts_hi: int, ts_lo: int, caplen: int, orig: int,
    ) -> Frame:  # fmt: skip
        """The frame of an Enhanced (type 6) or obsolete (type 2) Packet Block at ``pos``:
        their fixed fields differ, but both put the packet data 28 bytes in and leave 32
        bytes of the block for fields and trailer."""
        if caplen > blen - 32:
            raise FormatError(
                f"pcapng packet block captured length {caplen} exceeds the block",
                offset=base + pos,
            )
        iface = self._iface(ifid, base + pos)
        ts = (ts_hi << 32) | ts_lo
        return Frame(iface.linktype, ts * iface.mul // iface.div + iface.offset_ns,
                     buf[pos + 28 : pos + 28 + caplen], orig, base + pos)  # fmt: skip

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
