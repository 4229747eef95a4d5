"""Realistic captured frames for tests and benchmarks: IPv4/IPv6 packets, link-layer
headers of every type we decode, TCP segments, and whole keep-alive connections
(:func:`synth_flow`), ready for :class:`~replaygate.protocol.pcapfile.PcapWriter`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from ..protocol.pcapfile import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NFLOG,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)
from ..protocol.segment import ACK, FIN, PSH, SYN

__all__ = ["build_ip_packet", "build_tcp_frame", "frame_ip_packet", "synth_flow"]

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
