"""The unit the link-layer decoders hand to TCP reassembly: one TCP segment.

Decoders (:mod:`replaygate.protocol.linklayer`) turn captured frames into ``TcpSegment``;
the reassembler (:mod:`replaygate.protocol.tcp`) and the traffic assembler
(:mod:`replaygate.protocol.assembler`) consume them. Sans-I/O: nothing here reads a socket.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACK", "FIN", "PSH", "RST", "SYN", "URG", "TcpSegment"]

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20


@dataclass(slots=True)
class TcpSegment:
    """One TCP segment as seen on the wire (checksums are never checked: offload is normal).

    ``src``/``dst`` are textual IP addresses (IPv6 without brackets); ``flags`` is the TCP
    flag byte (see the constants above); ``vlan`` the 802.1Q ids outermost first.
    """

    ts_ns: int
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes
    vlan: tuple[int, ...] = ()

    @property
    def syn(self) -> bool:
        return bool(self.flags & SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & RST)

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & ACK)
