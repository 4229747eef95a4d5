"""decode_frame: byte tables for every link type and IP variant, the odd cases real captures
have (padding, options, TSO, snap length, fragments), and arbitrary bytes."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.pipeline import Counters
from replaygate.protocol.linklayer import SUPPORTED_LINKTYPES, Defragmenter, decode_frame
from replaygate.protocol.segment import ACK, PSH, SYN, TcpSegment
from replaygate.testing.frames import build_ip_packet, build_tcp_frame, frame_ip_packet

TS = 1_700_000_000_000_000_000
PAYLOAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
V4 = ("192.0.2.1", "198.51.100.7")
V6 = ("2001:db8::1", "2001:db8:0:0:1::2")


def tcp(
    sport: int = 5555, dport: int = 80, seq: int = 100, ack: int = 7, flags: int = ACK | PSH,
    payload: bytes = PAYLOAD, options: bytes = b"",
) -> bytes:  # fmt: skip
    doff = (20 + len(options)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, 1024, 0xBEEF, 0)
    return hdr + options + payload


def check(seg: TcpSegment | None, src: str, dst: str, payload: bytes = PAYLOAD) -> TcpSegment:
    assert seg is not None
    assert (seg.src, seg.dst, seg.sport, seg.dport) == (src, dst, 5555, 80)
    assert (seg.seq, seg.ack, seg.flags) == (100, 7, ACK | PSH)
    assert seg.payload == payload
    assert seg.ts_ns == TS
    return seg


def expected_addr(a: str) -> str:
    return (
        socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, a)) if ":" in a else a
    )


LINK_CASES = [
    (1, (), False),
    (1, (5,), False),
    (1, (0,), False),  # VLAN 0: a priority tag (zeek's http-vlan-0.pcap)
    (1, (100, 200), False),  # QinQ: 802.1ad outside, 802.1Q inside
    (1, (1, 2, 3), False),
    (1, (), True),  # PPPoE session
    (1, (42,), True),
    (0, (), False),
    (108, (), False),
    (101, (), False),
    (12, (), False),
    (14, (), False),
    (113, (), False),
    (276, (), False),
    (239, (), False),
    (9, (), False),
    (50, (), False),
    (104, (), False),
    (117, (), False),
    (228, (), False),
    (229, (), False),
]


@pytest.mark.parametrize("addrs", [V4, V6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize(("linktype", "vlan", "pppoe"), LINK_CASES)
def test_every_link_type_and_ip_version(
    linktype: int, vlan: tuple[int, ...], pppoe: bool, addrs: tuple[str, str]
) -> None:
    ip = build_ip_packet(src=addrs[0], dst=addrs[1], proto=6, payload=tcp())
    frame = frame_ip_packet(ip, linktype=linktype, vlan=vlan, pppoe=pppoe)
    c = Counters()
    seg = check(
        decode_frame(linktype, frame, TS, c), expected_addr(addrs[0]), expected_addr(addrs[1])
    )
    assert seg.vlan == vlan
    assert not c.dropped and not c.notes


@pytest.mark.parametrize("fam", [2, 10, 24, 28, 30])
@pytest.mark.parametrize("order", ["<", ">"])
def test_bsd_loopback_family_in_either_byte_order(fam: int, order: str) -> None:
    v6 = fam != 2
    src, dst = ("::1", "::1") if v6 else ("127.0.0.1", "127.0.0.1")
    ip = build_ip_packet(src=src, dst=dst, proto=6, payload=tcp())
    for lt in (0, 108):
        check(decode_frame(lt, struct.pack(order + "I", fam) + ip, TS), src, dst)


def test_ethernet_padding_is_not_payload() -> None:
    frame = build_tcp_frame(src=V4[0], dst=V4[1], sport=5555, dport=80, seq=1, flags=ACK)
    assert len(frame) == 54
    seg = decode_frame(1, frame + b"\0" * 6, TS)  # padded to the 60-byte minimum
    assert seg is not None and seg.payload == b""


def test_ipv4_options_and_tcp_options() -> None:
    opts = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL
    t = tcp(options=b"\x02\x04\x05\xb4" + b"\x01" * 4)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x46, 0, 24 + len(t), 1, 0x4000, 64, 6, 0,
        socket.inet_aton(V4[0]), socket.inet_aton(V4[1]),
    )  # fmt: skip
    check(decode_frame(101, hdr + opts + t, TS), *V4)


def test_ipv4_total_length_zero_from_tso_takes_the_frame() -> None:
    ip = bytearray(build_ip_packet(src=V4[0], dst=V4[1], proto=6, payload=tcp()))
    ip[2:4] = b"\0\0"
    check(decode_frame(101, bytes(ip), TS), *V4)


@pytest.mark.parametrize("addrs", [V4, V6], ids=["ipv4", "ipv6"])
def test_snaplen_cut_keeps_partial_payload_and_counts(addrs: tuple[str, str]) -> None:
    frame = frame_ip_packet(build_ip_packet(src=addrs[0], dst=addrs[1], proto=6, payload=tcp()))
    c = Counters()
    seg = decode_frame(1, frame[:-10], TS, c)
    assert seg is not None and seg.payload == PAYLOAD[:-10]
    assert c.notes["link.truncated_frame"] == 1
    c = Counters()
    assert decode_frame(1, frame[: 14 + (20 if addrs is V4 else 40) + 10], TS, c) is None
    assert c.dropped["link.truncated_tcp_header"] == 1


@pytest.mark.parametrize(
    ("frame", "where", "reason"),
    [
        (b"\x00" * 10, "dropped", "short_frame"),
        (b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28, "notes", "not_ip"),  # ARP
        (b"\x00" * 12 + b"\x81\x00\x00\x05", "dropped", "short_frame"),
        (b"\x00" * 12 + b"\x08\x00" + b"\x45" + b"\x00" * 5, "dropped", "short_ip_header"),
        (b"\x00" * 12 + b"\x08\x00" + b"\x43" + b"\x00" * 19, "dropped", "bad_ipv4_header"),
        (b"\x00" * 12 + b"\x86\xdd" + b"\x40" + b"\x00" * 39, "dropped", "bad_ipv6_header"),
        (b"\x00" * 12 + b"\x88\x64" + b"\x11\x00\x00\x01\x00\x04\xc0\x21", "notes", "not_ip"),
        (b"\x00" * 12 + b"\x00\x40" + b"\x42\x42\x03" + b"\x00" * 40, "notes", "not_ip"),
    ],
)
def test_undecodable_frames_are_counted_by_reason(frame: bytes, where: str, reason: str) -> None:
    c = Counters()
    assert decode_frame(1, frame, TS, c) is None
    assert getattr(c, where) == {"link." + reason: 1}


def test_non_tcp_ip_is_a_note_not_a_drop() -> None:
    for addrs in (V4, V6):
        udp = build_ip_packet(src=addrs[0], dst=addrs[1], proto=17, payload=b"\0" * 12)
        c = Counters()
        assert decode_frame(101, udp, TS, c) is None
        assert c.notes == {"link.not_tcp": 1} and not c.dropped


def test_unknown_link_type_is_dropped_with_its_number() -> None:
    c = Counters()
    assert decode_frame(147, b"\0" * 64, TS, c) is None
    assert c.dropped == {"link.unsupported_linktype_147": 1}
    assert decode_frame(147, b"", TS) is None  # no counters: still fine


def test_ppp_without_address_and_control_and_compressed_protocol() -> None:
    ip = inner_ip_v4 = build_ip_packet(src=V4[0], dst=V4[1], proto=6, payload=tcp())
    check(decode_frame(9, b"\x00\x21" + ip, TS), *V4)
    check(decode_frame(9, b"\x21" + inner_ip_v4, TS), *V4)
    c = Counters()
    assert decode_frame(9, b"\xff\x03\xc0\x21" + b"\0" * 20, TS, c) is None  # LCP
    assert c.notes == {"link.not_ip": 1}


def test_pppoe_compressed_protocol_field() -> None:
    ip = build_ip_packet(src=V4[0], dst=V4[1], proto=6, payload=tcp())
    frame = (
        b"\x02" * 12 + b"\x88\x64" + struct.pack("!BBHH", 0x11, 0, 1, len(ip) + 1) + b"\x21" + ip
    )
    check(decode_frame(1, frame, TS), *V4)


def test_mpls_and_llc_snap() -> None:
    ip = build_ip_packet(src=V4[0], dst=V4[1], proto=6, payload=tcp())
    labels = struct.pack("!I", (16 << 12) | 64) + struct.pack("!I", (17 << 12) | 0x100 | 64)
    check(decode_frame(1, b"\x02" * 12 + b"\x88\x47" + labels + ip, TS), *V4)
    snap = b"\xaa\xaa\x03\x00\x00\x00\x08\x00"
    check(decode_frame(1, b"\x02" * 12 + struct.pack("!H", len(snap + ip)) + snap + ip, TS), *V4)


def test_linux_sll_and_sll2_with_vlan_protocol() -> None:
    ip = build_ip_packet(src=V4[0], dst=V4[1], proto=6, payload=tcp())
    tag = struct.pack("!HH", 9, 0x0800)
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\0" * 8, 0x8100) + tag
    assert check(decode_frame(113, sll + ip, TS), *V4).vlan == (9,)
    sll2 = struct.pack("!HHIHBB8s", 0x8100, 0, 1, 1, 0, 6, b"\0" * 8) + tag
    assert check(decode_frame(276, sll2 + ip, TS), *V4).vlan == (9,)
    c = Counters()
    assert decode_frame(276, sll2[:20] + b"\x00\x09", TS, c) is None
    assert c.dropped == {"link.short_frame": 1}


def test_loopback_with_an_unknown_family_is_not_ip() -> None:
    c = Counters()
    assert decode_frame(0, struct.pack("<I", 7) + b"\0" * 40, TS, c) is None
    assert c.notes == {"link.not_ip": 1}


def test_nflog_big_endian_tlvs_and_missing_payload() -> None:
    ip = build_ip_packet(src=V4[0], dst=V4[1], proto=6, payload=tcp())
    tlv_hw = struct.pack(">HH", 8, 1) + b"\x08\x00\x00\x00"
    n = 4 + len(ip)
    tlv_payload = struct.pack(">HH", n, 9) + ip + b"\0" * ((-n) % 4)
    check(decode_frame(239, b"\x02\x00\x00\x00" + tlv_hw + tlv_payload, TS), *V4)
    c = Counters()
    assert (
        decode_frame(239, b"\x02\x00\x00\x00" + struct.pack("<HH", 8, 1) + b"\0" * 4, TS, c) is None
    )
    assert c.notes == {"link.nflog_without_payload": 1}
    c = Counters()
    assert decode_frame(239, b"\x02\x00\x00\x00" + struct.pack("<HH", 2, 9), TS, c) is None
    assert c.dropped == {"link.bad_nflog": 1}


def v6_packet(chain: list[tuple[int, bytes]], last_nh: int, payload: bytes) -> bytes:
    """IPv6 with extension headers: ``chain`` is [(header type, header bytes without next)]."""
    types = [t for t, _ in chain] + [last_nh]
    body = b""
    for i, (_t, rest) in enumerate(chain):
        body += bytes([types[i + 1]]) + rest
    body += payload
    return (
        struct.pack("!IHBB", 6 << 28, len(body), types[0], 64)
        + socket.inet_pton(socket.AF_INET6, V6[0])
        + socket.inet_pton(socket.AF_INET6, V6[1])
        + body
    )


HOP = (0, b"\x00" + b"\x01\x04\x00\x00\x00\x00")  # 8 bytes: PadN
DST = (60, b"\x01" + b"\x00" * 14)  # 16 bytes
ROUTING = (43, b"\x00\x00\x00" + b"\x00" * 4)  # type 0, segments left 0
AH = (51, b"\x04" + b"\x00" * 2 + b"\x00" * 20)  # (4 + 2) * 4 = 24 bytes
ATOMIC_FRAG = (44, b"\x00" + b"\x00\x00" + b"\x00\x00\x00\x01")


@pytest.mark.parametrize(
    "chain",
    [[HOP], [DST], [ROUTING], [AH], [ATOMIC_FRAG], [HOP, ROUTING, AH, DST], [HOP, ATOMIC_FRAG]],
    ids=["hop", "dst", "routing", "ah", "atomic-frag", "all", "hop+frag"],
)
def test_ipv6_extension_headers(chain: list[tuple[int, bytes]]) -> None:
    pkt = v6_packet(chain, 6, tcp())
    check(decode_frame(101, pkt, TS), expected_addr(V6[0]), expected_addr(V6[1]))


def test_ipv6_no_next_header_and_udp() -> None:
    for nh in (59, 17, 58):
        c = Counters()
        assert decode_frame(101, v6_packet([HOP], nh, b"\0" * 8), TS, c) is None
        assert c.notes == {"link.not_tcp": 1}


def ipv4_fragments(payload: bytes, sizes: list[int], ident: int = 77) -> list[bytes]:
    out = []
    pos = 0
    for i, size in enumerate(sizes):
        part = payload[pos : pos + size]
        more = i < len(sizes) - 1
        hdr = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(part), ident, (0x2000 if more else 0) | (pos >> 3),
            64, 6, 0, socket.inet_aton(V4[0]), socket.inet_aton(V4[1]),
        )  # fmt: skip
        out.append(hdr + part)
        pos += size
    return out


def test_ipv4_fragments_counted_without_defragmenter() -> None:
    frags = ipv4_fragments(tcp(), [24, 24])
    c = Counters()
    assert all(decode_frame(101, f, TS, c) is None for f in frags)
    assert c.dropped == {"link.ip_fragment": 2}


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
def test_ipv4_simple_fragments_are_reassembled_in_any_order(order: list[int]) -> None:
    frags = ipv4_fragments(tcp(), [16, 16, 100])
    d = Defragmenter()
    c = Counters()
    segs = [decode_frame(101, frags[i], TS, c, d) for i in order]
    assert segs[:2] == [None, None]
    check(segs[2], *V4)
    assert c.notes["link.ip_reassembled"] == 1 and len(d) == 0


def test_ipv4_overlapping_fragments_are_dropped() -> None:
    a, b = ipv4_fragments(tcp(), [16, 100])
    bad = bytearray(b)
    struct.pack_into("!H", bad, 6, 1)  # offset 8 instead of 16: overlaps the first piece
    d = Defragmenter()
    c = Counters()
    assert decode_frame(101, a, TS, c, d) is None
    assert decode_frame(101, bytes(bad), TS, c, d) is None
    assert c.dropped["link.ip_fragment_overlap"] == 1 and len(d) == 0


def test_fragment_expiry_and_bound() -> None:
    d = Defragmenter(max_datagrams=2, timeout_ns=1_000)
    c = Counters()
    for ident in (1, 2, 3):
        decode_frame(101, ipv4_fragments(tcp(), [16, 100], ident)[0], TS, c, d)
    assert len(d) == 2 and c.dropped["link.ip_fragment_evicted"] == 1
    decode_frame(101, ipv4_fragments(tcp(), [16, 100], 9)[0], TS + 10_000, c, d)
    assert len(d) == 1 and c.dropped["link.ip_fragment_incomplete"] == 2


def test_ipv6_fragments_reassembled() -> None:
    whole = tcp()
    ident = b"\x00\x00\x12\x34"
    f1 = v6_packet([(44, b"\x00" + struct.pack("!H", 0 | 1) + ident)], 6, whole[:16])
    f2 = v6_packet([(44, b"\x00" + struct.pack("!H", 16) + ident)], 6, whole[16:])
    c = Counters()
    assert decode_frame(101, f1, TS, c) is None and c.dropped == {"link.ip_fragment": 1}
    d = Defragmenter()
    assert decode_frame(101, f2, TS, None, d) is None
    check(decode_frame(101, f1, TS, None, d), expected_addr(V6[0]), expected_addr(V6[1]))


def test_syn_flags_and_ports_survive() -> None:
    frame = build_tcp_frame(src=V4[0], dst=V4[1], sport=1, dport=65535, seq=2**32 - 1, flags=SYN)
    seg = decode_frame(1, frame, TS)
    assert seg is not None and seg.syn and not seg.has_ack
    assert (seg.sport, seg.dport, seg.seq) == (1, 65535, 2**32 - 1)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SUPPORTED_LINKTYPES | {147})), st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(linktype: int, data: bytes) -> None:
    c = Counters()
    seg = decode_frame(linktype, data, TS, c, Defragmenter())
    assert seg is None or isinstance(seg, TcpSegment)
    if seg is None:
        assert sum(c.dropped.values()) + sum(c.notes.values()) >= 1


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(LINK_CASES) - 1), st.integers(0, 120), st.binary(max_size=8))
def test_cut_or_damaged_real_frames_never_raise(case: int, cut: int, junk: bytes) -> None:
    linktype, vlan, pppoe = LINK_CASES[case]
    ip = build_ip_packet(src=V6[0], dst=V6[1], proto=6, payload=tcp())
    frame = frame_ip_packet(ip, linktype=linktype, vlan=vlan, pppoe=pppoe)
    _damage(linktype, frame, cut, junk)


def _damage(linktype: int, frame: bytes, cut: int, junk: bytes) -> None:
    pos = min(cut, len(frame))
    for data in (frame[:pos], frame[:pos] + junk + frame[pos + len(junk) :]):
        decode_frame(linktype, data, TS, Counters(), Defragmenter())


# -- tunnels (traffic mirroring, overlays) -----------------------------------------------------

OUTER = ("203.0.113.1", "203.0.113.2")


def inner_ip(addrs: tuple[str, str] = V4) -> bytes:
    return build_ip_packet(src=addrs[0], dst=addrs[1], proto=6, payload=tcp())


def inner_eth(addrs: tuple[str, str] = V4, vlan: tuple[int, ...] = ()) -> bytes:
    return frame_ip_packet(inner_ip(addrs), vlan=vlan)


def udp(dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload


GRE_CASES = {
    "ipip": (4, inner_ip()),
    "6in4": (41, inner_ip(V6)),
    "gre-ip": (47, struct.pack("!HH", 0, 0x0800) + inner_ip()),
    "gre-key-seq-csum": (47, struct.pack("!HH", 0xB000, 0x0800) + b"\0" * 12 + inner_ip()),
    "gre-ethernet": (47, struct.pack("!HH", 0x2000, 0x6558) + b"\0\0\0\x07" + inner_eth()),
    "erspan-ii": (
        47,
        struct.pack("!HH", 0x1000, 0x88BE) + b"\0" * 4 + b"\x10" + b"\0" * 7 + inner_eth(vlan=(3,)),
    ),
    "erspan-iii": (47, struct.pack("!HH", 0x1000, 0x22EB) + b"\0" * 4 + b"\0" * 12 + inner_eth()),
    "vxlan": (17, udp(4789, b"\x08\0\0\0\0\x01\x02\0" + inner_eth())),
    "vxlan-linux-port": (17, udp(8472, b"\x08\0\0\0\0\x01\x02\0" + inner_eth(V6))),
    "geneve-ethernet": (17, udp(6081, b"\x01\x00\x65\x58\0\0\x01\0" + b"\0" * 4 + inner_eth())),
    "geneve-ip": (17, udp(6081, b"\x00\x00\x08\x00\0\0\x01\0" + inner_ip())),
}


@pytest.mark.parametrize("name", sorted(GRE_CASES))
@pytest.mark.parametrize("outer", [OUTER, ("2001:db8:ff::1", "2001:db8:ff::2")], ids=["v4", "v6"])
def test_tunnels_are_opened(name: str, outer: tuple[str, str]) -> None:
    proto, payload = GRE_CASES[name]
    frame = frame_ip_packet(
        build_ip_packet(src=outer[0], dst=outer[1], proto=proto, payload=payload)
    )
    inner = V6 if name in ("6in4", "vxlan-linux-port") else V4
    seg = check(
        decode_frame(1, frame, TS, Counters()), expected_addr(inner[0]), expected_addr(inner[1])
    )
    assert seg.vlan == ((3,) if name == "erspan-ii" else ())


def test_plain_udp_and_nested_tunnels_beyond_the_limit_are_not_tcp() -> None:
    c = Counters()
    dns = build_ip_packet(src=OUTER[0], dst=OUTER[1], proto=17, payload=udp(53, b"\0" * 20))
    assert decode_frame(101, dns, TS, c) is None
    pkt = inner_ip()
    for _ in range(5):  # IP-in-IP five deep: more than anyone mirrors
        pkt = build_ip_packet(src=OUTER[0], dst=OUTER[1], proto=4, payload=pkt)
    assert decode_frame(101, pkt, TS, c) is None
    assert c.notes == {"link.not_tcp": 2} and not c.dropped
    pkt = inner_ip()
    for _ in range(3):
        pkt = build_ip_packet(src=OUTER[0], dst=OUTER[1], proto=4, payload=pkt)
    check(decode_frame(101, pkt, TS), *V4)


def test_bad_gre_and_pptp_gre() -> None:
    c = Counters()
    short = build_ip_packet(src=OUTER[0], dst=OUTER[1], proto=47, payload=b"\0\0")
    pptp = build_ip_packet(
        src=OUTER[0], dst=OUTER[1], proto=47, payload=b"\x30\x81\x88\x0b" + b"\0" * 12
    )
    assert decode_frame(101, short, TS, c) is None
    assert decode_frame(101, pptp, TS, c) is None
    assert c.dropped == {"link.bad_gre_header": 1} and c.notes == {"link.not_ip": 1}


def test_ipv6_udp_fragments_are_not_tcp_and_not_held() -> None:
    ident = b"\x00\x00\x00\x09"
    later = v6_packet([(44, b"\x00" + struct.pack("!H", 16) + ident)], 17, b"\0" * 16)
    d = Defragmenter()
    c = Counters()
    assert decode_frame(101, later, TS, c, d) is None
    assert len(d) == 0 and c.notes == {"link.not_tcp": 1}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(GRE_CASES)), st.integers(0, 160), st.binary(max_size=8))
def test_cut_or_damaged_tunnel_frames_never_raise(name: str, cut: int, junk: bytes) -> None:
    proto, payload = GRE_CASES[name]
    _damage(1, frame_ip_packet(build_ip_packet(src=OUTER[0], dst=OUTER[1], proto=proto,
                                               payload=payload)), cut, junk)  # fmt: skip
