"""Captured frame -> :class:`~replaygate.protocol.segment.TcpSegment`, for every link type
users' captures come in. Sans-I/O and stateless (except the optional :class:`Defragmenter`).

Link types: 0 NULL and 108 LOOP (BSD loopback; the address family in either byte order),
1 Ethernet (802.1Q/802.1ad/QinQ tags at any depth, PPPoE sessions, MPLS, 802.3 LLC/SNAP),
101/12/14/228/229 raw IP, 113 LINUX_SLL, 276 LINUX_SLL2, 239 NFLOG (TLV walk to the payload),
9/50 PPP, 104 Cisco HDLC, 117 pflog.
IPv4 with options; IPv6 with extension headers (hop-by-hop, routing, fragment, destination
options, AH, mobility...). Tunnels that traffic mirroring and overlays put around packets
are opened: IP-in-IP, GRE (also ERSPAN II/III), VXLAN (UDP 4789/8472) and GENEVE (6081). Fragmented datagrams are counted and, when a
:class:`Defragmenter` is given, reassembled if the case is simple (no overlaps, all pieces).

Checksums are never checked: checksum offload makes wrong checksums normal in captures taken
on the sending host. A frame cut by the snap length yields its payload as far as present
(counted); the reassembler then sees the gap.

Why a frame was not turned into a segment is counted when ``counters`` is given: traffic
that is simply not TCP goes to ``counters.notes`` (``link.not_ip``, ``link.not_tcp``), TCP we
could not use (bad headers, fragments, unknown link types) to ``counters.dropped``.
"""

from __future__ import annotations

import socket
import struct
from collections import OrderedDict

from ..model import Counters
from .segment import TcpSegment

__all__ = ["SUPPORTED_LINKTYPES", "Defragmenter", "decode_frame"]

SUPPORTED_LINKTYPES = frozenset({0, 1, 9, 12, 14, 50, 101, 104, 108, 113, 117, 228, 229, 239, 276})

_u16 = struct.Struct("!H").unpack_from
_ip4 = struct.Struct("!HHHBB").unpack_from  # total length, id, frag, ttl, proto (at +2)
_ip6 = struct.Struct("!HB").unpack_from  # payload length, next header (at +4)
_tcp = struct.Struct("!HHIIBB").unpack_from
# the common case in one call: IPv4 (no options) + TCP, from the IP total length field on
_fast4 = struct.Struct("!HHHBBH4s4sHHIIBB").unpack_from
_le32 = struct.Struct("<I").unpack_from
_le16x2 = struct.Struct("<HH").unpack_from
_be16x2 = struct.Struct(">HH").unpack_from
_ntoa = socket.inet_ntoa
_ntop = socket.inet_ntop
_AF6 = socket.AF_INET6

_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
_IPV6_GENERIC_EXT = frozenset({0, 43, 60, 135, 139, 140})  # length in 8-octet units, +1
# BSD loopback address families: AF_INET is 2 everywhere; AF_INET6 differs by OS
_AF_INET6_VALUES = frozenset({10, 23, 24, 26, 28, 30})


# Address text by packed address: one str object per address, so its hash is computed once
# for every dict the assembler keeps per flow. Bounded: cleared when it grows past the limit.
_v4_names: dict[bytes, str] = {}
_NAMES_MAX = 1 << 16


def _v4_name(packed: bytes) -> str:
    if len(_v4_names) >= _NAMES_MAX:
        _v4_names.clear()
    name = _v4_names[packed] = _ntoa(packed)
    return name


def _drop(counters: Counters | None, reason: str) -> TcpSegment | None:
    if counters is not None:
        counters.dropped["link." + reason] += 1
    return None


def _note(counters: Counters | None, reason: str) -> TcpSegment | None:
    if counters is not None:
        counters.notes["link." + reason] += 1
    return None


def decode_frame(
    linktype: int,
    data: bytes,
    ts_ns: int,
    counters: Counters | None = None,
    defrag: Defragmenter | None = None,
) -> TcpSegment | None:
    """The TCP segment inside one captured frame, or ``None`` (counted by reason)."""
    n = len(data)
    # Fast path: Ethernet, IPv4 without options, unfragmented TCP, whole frame captured.
    if linktype == 1 and n >= 54 and data[12] == 8 and data[13] == 0 and data[14] == 0x45:
        total, _id, frag, _ttl, proto, _sum, s4, d4, sport, dport, seq, ack, doff, flags = _fast4(
            data, 16
        )
        if proto == 6 and not frag & 0x3FFF and 40 <= total <= n - 14:
            start = 34 + ((doff >> 4) << 2)
            end = 14 + total
            if 54 <= start <= end:
                src = _v4_names.get(s4) or _v4_name(s4)
                dst = _v4_names.get(d4) or _v4_name(d4)
                return TcpSegment(ts_ns, src, sport, dst, dport, seq, ack, flags, data[start:end])
    return _decode(linktype, data, ts_ns, counters, defrag, 0)


def _decode(
    linktype: int, data: bytes, ts_ns: int, counters: Counters | None,
    defrag: Defragmenter | None, depth: int,
) -> TcpSegment | None:  # fmt: skip
    """The general path of :func:`decode_frame`; ``depth`` counts tunnel levels."""
    n = len(data)
    vlan: tuple[int, ...] = ()
    if linktype == 1:
        if n < 14:
            return _drop(counters, "short_frame")
        et = (data[12] << 8) | data[13]
        off = 14
        if et != 0x0800 and et != 0x86DD:
            if et in _VLAN_TPIDS:
                tags: list[int] = []
                while et in _VLAN_TPIDS:
                    if off + 4 > n:
                        return _drop(counters, "short_frame")
                    tags.append(((data[off] << 8) | data[off + 1]) & 0x0FFF)
                    et = (data[off + 2] << 8) | data[off + 3]
                    off += 4
                vlan = tuple(tags)
            if et == 0x8864:  # PPPoE session: 6-byte header, then the PPP protocol field
                if off + 8 > n:
                    return _drop(counters, "short_frame")
                if data[off + 6] & 1:  # protocol field compressed to one byte (RFC 1661 PFC)
                    proto = data[off + 6]
                    off += 7
                else:
                    proto = (data[off + 6] << 8) | data[off + 7]
                    off += 8
                if proto == 0x21:
                    et = 0x0800
                elif proto == 0x57:
                    et = 0x86DD
                else:
                    return _note(counters, "not_ip")
            elif et == 0x8847 or et == 0x8848:  # MPLS: pop labels to the bottom of stack
                while True:
                    if off + 4 > n:
                        return _drop(counters, "short_frame")
                    bottom = data[off + 2] & 1
                    off += 4
                    if bottom:
                        break
                et = 0
            elif et < 0x0600:  # 802.3 length field: only LLC/SNAP carries IP
                if data[off : off + 6] != b"\xaa\xaa\x03\x00\x00\x00" or off + 8 > n:
                    return _note(counters, "not_ip")
                et = (data[off + 6] << 8) | data[off + 7]
                off += 8
    elif linktype == 0 or linktype == 108:
        if n < 4:
            return _drop(counters, "short_frame")
        (fam,) = _le32(data, 0)
        if fam > 0xFFFF:
            fam = int.from_bytes(data[:4], "big")
        if fam == 2:
            et = 0x0800
        elif fam in _AF_INET6_VALUES:
            et = 0x86DD
        else:
            return _note(counters, "not_ip")
        off = 4
    elif linktype == 101 or linktype == 12 or linktype == 14 or linktype == 228 or linktype == 229:
        et = 0
        off = 0
    elif linktype == 113 or linktype == 276:  # Linux cooked: protocol first (SLL2) or last
        if n < (16 if linktype == 113 else 20):
            return _drop(counters, "short_frame")
        if linktype == 113:
            et, off = (data[14] << 8) | data[15], 16
        else:
            et, off = (data[0] << 8) | data[1], 20
        while et in _VLAN_TPIDS:  # a tag the kernel did not strip
            if off + 4 > n:
                return _drop(counters, "short_frame")
            vlan += (((data[off] << 8) | data[off + 1]) & 0x0FFF,)
            et = (data[off + 2] << 8) | data[off + 3]
            off += 4
    elif linktype == 239:
        off, n = _nflog_payload(data)
        if off < 0:
            if off == -1:
                return _note(counters, "nflog_without_payload")
            return _drop(counters, "bad_nflog")
        et = 0
    elif linktype == 9 or linktype == 50 or linktype == 104:  # PPP, PPP in HDLC, Cisco HDLC
        if n < 4:
            return _drop(counters, "short_frame")
        if data[0] == 0x0F or data[0] == 0x8F:  # Cisco HDLC: address, control, ethertype
            et = (data[2] << 8) | data[3]
            off = 4
        else:
            off = 2 if data[0] == 0xFF and data[1] == 0x03 else 0
            if data[off] & 1:  # protocol field compressed to one byte
                proto, off = data[off], off + 1
            else:
                proto, off = (data[off] << 8) | data[off + 1], off + 2
            et = 0x0800 if proto == 0x21 else 0x86DD if proto == 0x57 else -1
    elif linktype == 117:  # OpenBSD/FreeBSD pflog: a header of its own length, then IP
        if n < 4:
            return _drop(counters, "short_frame")
        off = (data[0] + 3) & ~3
        et = 0
    else:
        return _drop(counters, f"unsupported_linktype_{linktype}")

    if et == 0:  # raw IP: the version nibble decides
        if off >= n:
            return _drop(counters, "short_frame")
        v = data[off] >> 4
        et = 0x0800 if v == 4 else 0x86DD if v == 6 else -1
    if et == 0x0800:
        return _ipv4(data, off, n, ts_ns, vlan, counters, defrag, depth)
    if et == 0x86DD:
        return _ipv6(data, off, n, ts_ns, vlan, counters, defrag, depth)
    return _note(counters, "not_ip")


def _nflog_payload(data: bytes) -> tuple[int, int]:
    """(start, end) of the NFULA_PAYLOAD value; start -1 when absent, -2 when malformed.

    TLV lengths and types are in the capturing host's byte order (libpcap's LINKTYPE_NFLOG
    notes); little-endian is tried first, big-endian when that does not fit.
    """
    n = len(data)
    if n < 4:
        return -2, 0
    for unpack in (_le16x2, _be16x2):
        pos = 4
        ok = True
        while pos + 4 <= n:
            tlen, ttype = unpack(data, pos)
            if tlen < 4 or pos + tlen > n:
                ok = False
                break
            if ttype & 0x7FFF == 9:
                return pos + 4, pos + tlen
            pos += (tlen + 3) & ~3
        if ok:
            return -1, 0
    return -2, 0


def _ipv4(
    data: bytes, off: int, n: int, ts_ns: int, vlan: tuple[int, ...],
    counters: Counters | None, defrag: Defragmenter | None, depth: int = 0,
) -> TcpSegment | None:  # fmt: skip
    if n - off < 20:
        return _drop(counters, "short_ip_header")
    b0 = data[off]
    ihl = (b0 & 0x0F) << 2
    if b0 >> 4 != 4 or ihl < 20 or off + ihl > n:
        return _drop(counters, "bad_ipv4_header")
    total, ident, frag, _ttl, proto = _ip4(data, off + 2)
    if proto != 6:
        if proto in _TUNNEL_PROTOS and depth < _MAX_TUNNEL_DEPTH:
            end = n if total == 0 else min(off + total, n)
            if frag & 0x3FFF:
                return _drop(counters, "tunnel_fragment")
            return _tunnel(proto, data, off + ihl, end, ts_ns, counters, defrag, depth)
        return _note(counters, "not_tcp")
    truncated = False
    if total == 0:  # TSO/GSO on the capturing host: the length is not filled in
        end = n
    elif total < ihl:
        return _drop(counters, "bad_ipv4_header")
    else:
        end = off + total
        if end > n:
            end = n
            truncated = True
    if frag & 0x3FFF:  # more fragments, or a non-zero offset
        if defrag is None:
            return _drop(counters, "ip_fragment")
        whole = defrag.add(
            data[off + 12 : off + 20] + ident.to_bytes(4, "big"), (frag & 0x1FFF) << 3,
            bool(frag & 0x2000), data[off + ihl : end], ts_ns, counters,
        )  # fmt: skip
        if whole is None:
            return None
        src = _ntoa(data[off + 12 : off + 16])
        dst = _ntoa(data[off + 16 : off + 20])
        return _tcp_segment(whole, 0, len(whole), False, ts_ns, src, dst, vlan, counters)
    src = _ntoa(data[off + 12 : off + 16])
    dst = _ntoa(data[off + 16 : off + 20])
    return _tcp_segment(data, off + ihl, end, truncated, ts_ns, src, dst, vlan, counters)


def _ipv6(
    data: bytes, off: int, n: int, ts_ns: int, vlan: tuple[int, ...],
    counters: Counters | None, defrag: Defragmenter | None, depth: int = 0,
) -> TcpSegment | None:  # fmt: skip
    if n - off < 40:
        return _drop(counters, "short_ip_header")
    if data[off] >> 4 != 6:
        return _drop(counters, "bad_ipv6_header")
    plen, nh = _ip6(data, off + 4)
    truncated = False
    if plen == 0:  # jumbogram or TSO: take what is there
        end = n
    else:
        end = off + 40 + plen
        if end > n:
            end = n
            truncated = True
    p = off + 40
    frag_info: tuple[int, bool, bytes] | None = None
    while nh != 6:
        if nh in _IPV6_GENERIC_EXT:
            if p + 2 > end:
                return _drop(counters, "bad_ipv6_header")
            nh, hl = data[p], (data[p + 1] + 1) << 3
            p += hl
        elif nh == 44:  # fragment header
            if p + 8 > end:
                return _drop(counters, "bad_ipv6_header")
            fo = _u16(data, p + 2)[0]
            if fo & 0xFFF9:  # an actual fragment (not an "atomic" one)
                frag_info = (fo & 0xFFF8, bool(fo & 1), data[p + 4 : p + 8])
            nh = data[p]
            p += 8
            if frag_info is not None:
                break
        elif nh == 51:  # AH: length in 4-octet units, +2
            if p + 2 > end:
                return _drop(counters, "bad_ipv6_header")
            nh, hl = data[p], (data[p + 1] + 2) << 2
            p += hl
        elif nh in _TUNNEL_PROTOS and depth < _MAX_TUNNEL_DEPTH:
            return _tunnel(nh, data, p, end, ts_ns, counters, defrag, depth)
        else:  # 59 (no next header), UDP, ICMPv6, ...
            return _note(counters, "not_tcp")
        if p > end:
            return _drop(counters, "bad_ipv6_header")
    src = _ntop(_AF6, data[off + 8 : off + 24])
    dst = _ntop(_AF6, data[off + 24 : off + 40])
    if frag_info is not None:
        if nh != 6:  # the fragment header names the protocol of every piece
            return _note(counters, "not_tcp")
        if defrag is None:
            return _drop(counters, "ip_fragment")
        whole = defrag.add(
            data[off + 8 : off + 40] + frag_info[2], frag_info[0], frag_info[1],
            data[p:end], ts_ns, counters,
        )  # fmt: skip
        if whole is None:
            return None
        return _tcp_segment(whole, 0, len(whole), False, ts_ns, src, dst, vlan, counters)
    return _tcp_segment(data, p, end, truncated, ts_ns, src, dst, vlan, counters)


_TUNNEL_PROTOS = frozenset({4, 17, 41, 47})  # IPIP, UDP (VXLAN, GENEVE), IPv6-in-IP, GRE
_MAX_TUNNEL_DEPTH = 3
_VXLAN_PORTS = frozenset({4789, 8472})  # IANA, and the Linux kernel's historical default
_GENEVE_PORT = 6081


def _tunnel(
    proto: int, data: bytes, p: int, end: int, ts_ns: int, counters: Counters | None,
    defrag: Defragmenter | None, depth: int,
) -> TcpSegment | None:  # fmt: skip
    """Decapsulate the tunnels traffic mirrors use (AWS/GCP mirroring: VXLAN; ERSPAN: GRE;
    overlay networks: VXLAN/GENEVE; IP-in-IP), so their inner TCP is extracted too."""
    depth += 1
    if proto == 4:
        return _ipv4(data, p, end, ts_ns, (), counters, defrag, depth)
    if proto == 41:
        return _ipv6(data, p, end, ts_ns, (), counters, defrag, depth)
    if proto == 17:
        if end - p < 16:
            return _note(counters, "not_tcp")
        dport = _u16(data, p + 2)[0]
        if dport in _VXLAN_PORTS and data[p + 8] & 0x08:  # VXLAN: I flag, then Ethernet
            return _decode(1, data[p + 16 : end], ts_ns, counters, defrag, depth)
        if dport == _GENEVE_PORT and data[p + 8] >> 6 == 0:
            opt = (data[p + 8] & 0x3F) << 2
            ptype = _u16(data, p + 10)[0]
            inner = p + 16 + opt
            if ptype == 0x6558:
                return _decode(1, data[inner:end], ts_ns, counters, defrag, depth)
            if ptype in (0x0800, 0x86DD):
                return _decode(101, data[inner:end], ts_ns, counters, defrag, depth)
        return _note(counters, "not_tcp")
    # GRE (RFC 2784/2890): flags, version 0, protocol type; optional checksum, key, sequence
    if end - p < 4:
        return _drop(counters, "bad_gre_header")
    flags, ptype = _u16(data, p)[0], _u16(data, p + 2)[0]
    if flags & 0x0007:  # version 1 is PPTP's enhanced GRE: PPP inside, not handled
        return _note(counters, "not_ip")
    hl = 4 + 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
    inner = p + hl
    if ptype == 0x88BE:  # ERSPAN type II: 8-byte header, then Ethernet
        inner += 8
        ptype = 0x6558
    elif ptype == 0x22EB:  # ERSPAN type III: 12 bytes (+8 with the O flag), then Ethernet
        if inner + 12 > end:
            return _drop(counters, "bad_gre_header")
        inner += 12 + (8 if data[inner + 11] & 0x01 else 0)
        ptype = 0x6558
    if inner > end:
        return _drop(counters, "bad_gre_header")
    if ptype == 0x6558:
        return _decode(1, data[inner:end], ts_ns, counters, defrag, depth)
    if ptype in (0x0800, 0x86DD):
        return _decode(101, data[inner:end], ts_ns, counters, defrag, depth)
    return _note(counters, "not_ip")


def _tcp_segment(
    data: bytes, toff: int, end: int, truncated: bool, ts_ns: int, src: str, dst: str,
    vlan: tuple[int, ...], counters: Counters | None,
) -> TcpSegment | None:  # fmt: skip
    if end - toff < 20:
        return _drop(counters, "truncated_tcp_header" if truncated else "bad_tcp_header")
    sport, dport, seq, ack, doff, flags = _tcp(data, toff)
    start = toff + ((doff >> 4) << 2)
    if start < toff + 20:
        return _drop(counters, "bad_tcp_header")
    if start > end:
        return _drop(counters, "truncated_tcp_header" if truncated else "bad_tcp_header")
    if truncated and counters is not None:
        counters.notes["link.truncated_frame"] += 1
    return TcpSegment(ts_ns, src, sport, dst, dport, seq, ack, flags, data[start:end], vlan)


class Defragmenter:
    """Reassemble fragmented IP datagrams when the case is simple: every piece present, no
    overlaps. Bounded: at most ``max_datagrams`` pending (oldest evicted) and each pending
    datagram forgotten ``timeout_ns`` of packet time after its first piece (counted)."""

    def __init__(self, max_datagrams: int = 1024, timeout_ns: int = 30_000_000_000) -> None:
        self.max_datagrams = max_datagrams
        self.timeout_ns = timeout_ns
        # key -> (first ts, {offset: bytes}, total length or -1)
        self._pending: OrderedDict[bytes, tuple[int, dict[int, bytes], list[int]]] = OrderedDict()

    def add(
        self, key: bytes, offset: int, more: bool, payload: bytes, ts_ns: int,
        counters: Counters | None,
    ) -> bytes | None:  # fmt: skip
        """Add one fragment; returns the whole IP payload once complete, else ``None``."""
        if counters is not None:
            counters.notes["link.ip_fragment"] += 1
        self._expire(ts_ns, counters)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self.max_datagrams:
                self._pending.popitem(last=False)
                _drop(counters, "ip_fragment_evicted")
            entry = (ts_ns, {}, [-1])
            self._pending[key] = entry
        _, pieces, total = entry
        pieces[offset] = payload
        if not more:
            total[0] = offset + len(payload)
        if total[0] < 0:
            return None
        pos = 0
        for o in sorted(pieces):
            if o != pos:
                if o < pos:  # overlap: not simple; give up on this datagram
                    del self._pending[key]
                    _drop(counters, "ip_fragment_overlap")
                    return None
                return None  # still a hole
            pos = o + len(pieces[o])
        if pos != total[0]:
            return None
        del self._pending[key]
        if counters is not None:
            counters.notes["link.ip_reassembled"] += 1
        return b"".join(pieces[o] for o in sorted(pieces))

    def _expire(self, now_ns: int, counters: Counters | None) -> None:
        pending = self._pending
        while pending:
            key, (first, _, _) = next(iter(pending.items()))
            if now_ns - first <= self.timeout_ns:
                break
            del pending[key]
            _drop(counters, "ip_fragment_incomplete")

    def __len__(self) -> int:
        return len(self._pending)
