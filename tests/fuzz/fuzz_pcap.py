"""Fuzz targets for captures: pcap/pcapng records, link-layer decoding and the whole pcap
reader (file -> frames -> segments -> exchanges). Each may raise only ReplaygateError."""

from __future__ import annotations

import atexit
import os
import shutil
import struct
import tempfile
from collections.abc import Callable

from replaygate.formats import ReadOptions
from replaygate.pipeline import Counters
from replaygate.protocol.linklayer import Defragmenter, decode_frame
from replaygate.protocol.pcapfile import PcapParser, PcapWriter
from replaygate.testing.frames import build_ip_packet, frame_ip_packet, synth_flow

__all__ = ["SEEDS", "TARGETS"]

_LINKTYPES = (0, 1, 12, 14, 101, 108, 113, 228, 229, 239, 276)


def _pcap_bytes(frames: list[tuple[int, bytes]], linktype: int = 1) -> bytes:
    import io

    buf = io.BytesIO()
    w = PcapWriter(buf, linktype=linktype)
    w.write_many(frames)
    w.close()
    return buf.getvalue()


def _pcapng_bytes(frames: list[tuple[int, bytes]]) -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * ((-len(body)) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHB3x", 9, 1, 9) + b"\0" * 4)
    for ts, data in frames:
        out += block(
            6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data
        )
    return out


_FLOW = synth_flow(
    [
        (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        (
            b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ),
    ],
    mss=40,
)


def pcap_parser(data: bytes) -> None:
    """Raw bytes as a whole file, fed in two pieces."""
    p = PcapParser()
    half = len(data) // 2
    p.feed(data[:half])
    p.feed(data[half:])
    p.close()


def decode(data: bytes) -> None:
    """First byte picks the link type; the rest is the frame."""
    if not data:
        return
    lt = _LINKTYPES[data[0] % len(_LINKTYPES)]
    decode_frame(lt, data[1:], 0, Counters(), Defragmenter())


_TMP = tempfile.mkdtemp(prefix="rg-fuzz-pcap-")
atexit.register(shutil.rmtree, _TMP, True)


def pcap_read(data: bytes) -> None:
    """The whole reader: bytes as a file on disk, through ``formats.pcap.read``."""
    from replaygate.formats.pcap import read

    path = os.path.join(_TMP, f"f{os.getpid()}.pcap")
    with open(path, "wb") as f:
        f.write(data)
    for ex in read(path, ReadOptions(counters=Counters())):
        ex.summary()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "pcap_parser": pcap_parser,
    "linklayer_decode": decode,
    "pcap_read": pcap_read,
}
SEEDS: dict[str, list[bytes]] = {
    "pcap_parser": [_pcap_bytes(_FLOW[:6]), _pcapng_bytes(_FLOW[:6])],
    "linklayer_decode": [
        bytes([_LINKTYPES.index(lt)]) + frame_ip_packet(f[14:], linktype=lt)
        for lt in (1, 0, 113, 276, 239)
        for _, f in _FLOW[3:5]
    ]
    + [  # tunnels: IP-in-IP, GRE, VXLAN around the same segment
        bytes([_LINKTYPES.index(101)])
        + build_ip_packet(src="192.0.2.1", dst="192.0.2.2", proto=proto, payload=inner)
        for proto, inner in (
            (4, _FLOW[3][1][14:]),
            (47, b"\x00\x00\x65\x58" + _FLOW[3][1]),
            (17, b"\x9c\x40\x12\xb5\x00\x00\x00\x00\x08\0\0\0\0\0\x01\0" + _FLOW[4][1]),
        )
    ],
    "pcap_read": [_pcap_bytes(_FLOW), _pcapng_bytes(_FLOW)],
}
