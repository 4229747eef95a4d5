"""pcap / pcapng records: parse tables, both byte orders, time stamp resolutions, every split
point, cut-short and junk files, and the file side (gzip, zstd, one-line errors)."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import FormatError, InputError, TruncatedError
from replaygate.pipeline import Counters
from replaygate.protocol.pcapfile import Frame, PcapParser, PcapWriter, iter_frames
from replaygate.protocol.segment import ACK, PSH
from replaygate.testing.frames import build_tcp_frame, synth_flow

T0 = 1_700_000_000_123_456_789


# -- builders for files in every variant -------------------------------------------------------


def classic(
    frames: list[tuple[int, bytes]],
    *,
    endian: str = "<",
    nsec: bool = False,
    linktype: int = 1,
    modified: bool = False,
) -> bytes:
    magic = 0xA1B2CD34 if modified else 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for ts, data in frames:
        sec, ns = divmod(ts, 1_000_000_000)
        frac = ns if nsec else ns // 1000
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), len(data) + 7))
        if modified:
            out.append(b"\0" * 8)
        out.append(data)
    return b"".join(out)


def block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += b"\0" * ((-len(body)) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def option(code: int, value: bytes, e: str = "<") -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def shb(e: str = "<", major: int = 1) -> bytes:
    return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, major, 0, -1), e)


def idb(linktype: int = 1, e: str = "<", tsresol: int | None = None, tsoffset: int = 0) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), e)
    if tsoffset:
        opts += option(14, struct.pack(e + "q", tsoffset), e)
    if opts:
        opts += option(0, b"", e)
    return block(1, struct.pack(e + "HHI", linktype, 0, 262144) + opts, e)


def epb(ifid: int, ts: int, data: bytes, e: str = "<", orig: int | None = None) -> bytes:
    body = struct.pack(
        e + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data) if orig is None else orig
    )
    return block(6, body + data, e)


FRAME_A = build_tcp_frame(
    src="10.1.1.1", dst="10.1.1.2", sport=1234, dport=80, seq=1, flags=ACK, payload=b"GET /"
)
FRAME_B = build_tcp_frame(
    src="fe80::1", dst="fe80::2", sport=1234, dport=80, seq=7, flags=ACK | PSH, payload=b"x" * 99
)


def parse_all(data: bytes) -> tuple[list[Frame], int | None]:
    p = PcapParser()
    frames = p.feed(data)
    return frames, p.close()


# -- classic pcap ------------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nsec", [False, True])
def test_classic_both_byte_orders_and_resolutions(endian: str, nsec: bool) -> None:
    data = classic([(T0, FRAME_A), (T0 + 5_000, FRAME_B)], endian=endian, nsec=nsec, linktype=1)
    frames, cut = parse_all(data)
    assert cut is None
    assert [f.data for f in frames] == [FRAME_A, FRAME_B]
    expect0 = T0 if nsec else T0 // 1000 * 1000
    assert frames[0].ts_ns == expect0
    assert frames[1].ts_ns - frames[0].ts_ns == 5000 if nsec else True
    assert frames[0].offset == 24
    assert frames[1].offset == 24 + 16 + len(FRAME_A)
    assert frames[0].orig_len == len(FRAME_A) + 7
    assert {f.linktype for f in frames} == {1}


def test_classic_linktype_ignores_fcs_bits_and_modified_format() -> None:
    data = bytearray(classic([(T0, FRAME_A)], linktype=113))
    struct.pack_into("<I", data, 20, 113 | 0x10000000 | 0x04000000)
    frames, _ = parse_all(bytes(data))
    assert frames[0].linktype == 113
    frames, cut = parse_all(classic([(T0, FRAME_A), (T0, FRAME_B)], modified=True))
    assert [f.data for f in frames] == [FRAME_A, FRAME_B] and cut is None


def test_header_only_file_has_no_frames() -> None:
    assert parse_all(classic([])) == ([], None)


def test_every_split_point_classic_and_pcapng() -> None:
    files = [
        classic([(T0, FRAME_A), (T0 + 1, FRAME_B)], nsec=True),
        shb() + idb(tsresol=9) + epb(0, T0, FRAME_A) + block(5, b"\0" * 20) + epb(0, T0, FRAME_B),
    ]
    for data in files:
        whole, _ = parse_all(data)
        for i in range(len(data) + 1):
            p = PcapParser()
            got = p.feed(data[:i]) + p.feed(data[i:])
            assert p.close() is None
            assert got == whole, i


def test_byte_at_a_time_feed() -> None:
    data = classic([(T0, FRAME_A), (T0 + 1, FRAME_B)], endian=">")
    p = PcapParser()
    got: list[Frame] = []
    for i in range(len(data)):
        got += p.feed(data[i : i + 1])
    assert [f.data for f in got] == [FRAME_A, FRAME_B]


@pytest.mark.parametrize("cut", [3, 10, 24 + 5, 24 + 16 + 3])
def test_cut_short_reports_offset_of_partial_record(cut: int) -> None:
    data = classic([(T0, FRAME_A), (T0, FRAME_B)])
    frames, where = parse_all(data[: len(data) - len(FRAME_B) - 16 + 0][:0] + data[:cut])
    assert frames == []
    assert where == (0 if cut < 24 else 24)
    frames, where = parse_all(data[:-3])
    assert [f.data for f in frames] == [FRAME_A]
    assert where == 24 + 16 + len(FRAME_A)


@pytest.mark.parametrize(
    "junk",
    [b"hello world, this is text\n", b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 64, b"\xff\xfe\xfd\xfc"],
)
def test_junk_is_not_a_pcap_at_offset_zero(junk: bytes) -> None:
    with pytest.raises(FormatError) as ei:
        PcapParser().feed(junk)
    assert "not a pcap or pcapng file" in str(ei.value)
    assert ei.value.offset == 0


@pytest.mark.parametrize(
    ("head", "hint"),
    [
        (b'\xef\xbb\xbf{"log": {"version": "1.2"}}', "HAR file should be named .har"),
        (b"1 " + b"ab" * 20 + b" 1568139746437296000\nGET / HTTP/1.1\r\n", "name it .gor"),
        (b"GMBU\x00\x02" + b"\0" * 40, "Network Monitor 2"),
        (b"snoop\0\0\0\0\0\0\x02\0\0\0\x04", "snoop"),
        (b"hello\n", "it is text"),
    ],
)
def test_not_a_pcap_says_what_it_looks_like(head: bytes, hint: str) -> None:
    with pytest.raises(FormatError, match="not a pcap or pcapng file") as ei:
        PcapParser().feed(head)
    assert hint in str(ei.value)


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap not installed")
@pytest.mark.parametrize(("fmt", "hint"), [("netmon2", "Network Monitor 2"), ("snoop", "snoop")])
def test_other_capture_formats_get_a_conversion_hint(tmp_path: Path, fmt: str, hint: str) -> None:
    src = write(tmp_path / "a.pcap", classic([(T0, FRAME_A)]))
    out = tmp_path / "a.cap"
    subprocess.run(["editcap", "-F", fmt, src, str(out)], check=True, capture_output=True,
                   timeout=60)  # fmt: skip
    with pytest.raises(FormatError, match=hint) as ei:
        list(iter_frames(str(out)))
    assert "editcap -F pcapng" in str(ei.value)


def test_absurd_record_length_is_corruption_with_offset() -> None:
    data = bytearray(classic([(T0, FRAME_A), (T0, FRAME_B)]))
    rec2 = 24 + 16 + len(FRAME_A)
    struct.pack_into("<I", data, rec2 + 8, 0xFFFFFF00)
    p = PcapParser()
    # the good frame before the bad record comes out first; the error follows
    assert [f.data for f in p.feed(bytes(data))] == [FRAME_A]
    assert p.error is not None and p.error.offset == rec2
    with pytest.raises(FormatError) as ei:
        p.close()
    assert ei.value.offset == rec2
    with pytest.raises(FormatError):
        p.feed(b"more")
    with pytest.raises(FormatError) as ei:
        PcapParser().feed(bytes(data[:24]) + bytes(data[rec2:]))  # nothing good: at once
    assert ei.value.offset == 24


# -- pcapng ------------------------------------------------------------------------------------


@pytest.mark.parametrize("e", ["<", ">"])
def test_pcapng_both_byte_orders_skip_unknown_blocks(e: str) -> None:
    data = (
        shb(e)
        + idb(1, e)
        + block(4, b"\0" * 8, e)  # name resolution
        + epb(0, T0 // 1000, FRAME_A, e)
        + block(5, b"\0" * 24, e)  # interface statistics
        + block(10, b"\0" * 16, e)  # decryption secrets
        + block(0x40000BAD, b"\0" * 12, e)  # custom
        + block(3, struct.pack(e + "I", len(FRAME_B)) + FRAME_B, e)  # simple packet
    )
    frames, cut = parse_all(data)
    assert cut is None
    assert [f.data for f in frames] == [FRAME_A, FRAME_B]
    assert frames[0].ts_ns == T0 // 1000 * 1000  # default resolution: microseconds
    assert frames[1].ts_ns == 0  # simple packet blocks carry no time stamp


@pytest.mark.parametrize(
    ("tsresol", "units", "expect"),
    [
        (6, 1_700_000_000_000_001, 1_700_000_000_000_001_000),
        (9, T0, T0),
        (3, 1_700_000_000_123, 1_700_000_000_123_000_000),
        (0, 1_700_000_000, 1_700_000_000_000_000_000),
        (12, 1_700_000_000_000_123_456, 1_700_000_000_000_123),
        (0x80 | 10, 1024 * 3 + 512, 3_500_000_000),  # 2^-10 s units
        (0x80 | 30, 1 << 30, 1_000_000_000),
    ],
)
def test_pcapng_tsresol(tsresol: int, units: int, expect: int) -> None:
    frames, _ = parse_all(shb() + idb(1, tsresol=tsresol) + epb(0, units, FRAME_A))
    assert frames[0].ts_ns == expect


def test_pcapng_tsoffset_and_several_interfaces_and_sections() -> None:
    data = (
        shb("<")
        + idb(1, tsresol=9, tsoffset=100)
        + idb(113, tsresol=6)
        + epb(1, 5, FRAME_B)
        + epb(0, 7, FRAME_A)
        + shb(">")  # a new section, other byte order: the interface list restarts
        + idb(101, ">", tsresol=9)
        + epb(0, 9, FRAME_A, ">")
    )
    frames, cut = parse_all(data)
    assert cut is None
    assert [(f.linktype, f.ts_ns) for f in frames] == [
        (113, 5000),
        (1, 100_000_000_007),
        (101, 9),
    ]


def test_pcapng_obsolete_packet_block() -> None:
    body = struct.pack("<HHIIII", 0, 0, 0, 42, len(FRAME_A), len(FRAME_A)) + FRAME_A
    frames, _ = parse_all(shb() + idb(1) + block(2, body))
    assert frames[0].data == FRAME_A and frames[0].ts_ns == 42_000


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        (shb() + epb(0, 1, FRAME_A), "interface 0, which was never described"),
        (shb() + idb() + struct.pack("<II", 6, 13) + b"\0" * 20, "bad length 13"),
        (shb() + idb() + epb(0, 1, FRAME_A)[:-4] + b"\x01\x00\x00\x00", "does not match"),
        (shb(major=2) + idb(), "version 2"),
        (shb() + idb() + block(6, struct.pack("<IIIII", 0, 0, 0, 5000, 5000)), "exceeds"),
        (shb() + idb() + block(2, struct.pack("<HHIIII", 0, 0, 0, 0, 5000, 5000)), "exceeds"),
        (shb() + block(2, struct.pack("<HHIIII", 0, 0, 0, 0, 0, 0)), "interface 0, which was"),
        (shb() + idb() + block(2, b"\0" * 16), "packet block too short"),
    ],
)
def test_pcapng_corruption_is_a_format_error_with_offset(data: bytes, msg: str) -> None:
    with pytest.raises(FormatError, match=msg) as ei:
        parse_all(data)
    assert ei.value.offset is not None and ei.value.offset >= 0


def test_pcapng_bad_byte_order_magic_at_start() -> None:
    data = struct.pack("<II", 0x0A0D0D0A, 28) + b"\x11\x22\x33\x44" + b"\0" * 12 + b"\x1c\0\0\0"
    with pytest.raises(FormatError, match="not a pcap or pcapng file"):
        parse_all(data)


def test_pcapng_cut_inside_a_block() -> None:
    good = shb() + idb(1) + epb(0, 1, FRAME_A)
    frames, cut = parse_all(good + epb(0, 2, FRAME_B)[:-10])
    assert len(frames) == 1 and cut == len(good)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_format_error(data: bytes) -> None:
    for prefix in (b"", classic([])[:24], shb() + idb()):
        p = PcapParser()
        try:
            p.feed(prefix + data)
            p.close()
        except FormatError:
            pass


# -- files -------------------------------------------------------------------------------------


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_iter_frames_plain_gzip_by_magic_and_extension_and_zstd(tmp_path: Path) -> None:
    import zstandard

    data = classic([(T0, FRAME_A), (T0, FRAME_B)], nsec=True)
    paths = [
        write(tmp_path / "a.pcap", data),
        write(tmp_path / "b.pcap.gz", gzip.compress(data)),
        write(tmp_path / "c.pcap", gzip.compress(data)),  # gzip without the extension
        write(tmp_path / "d.pcap.gz", data),  # named .gz but not compressed
        write(tmp_path / "e.pcapng.zst", zstandard.ZstdCompressor().compress(data)),
    ]
    for p in paths:
        assert [f.data for f in iter_frames(p)] == [FRAME_A, FRAME_B], p


def test_iter_frames_streams_many_chunks(tmp_path: Path) -> None:
    big = b"y" * 60_000
    frames = [(T0 + i, big) for i in range(40)]  # ~2.4 MB: several 1 MiB chunks
    p = write(tmp_path / "big.pcap", classic(frames))
    assert sum(1 for _ in iter_frames(p)) == 40


@pytest.mark.parametrize("gz", [False, True])
def test_iter_frames_cut_short_counts_and_keeps_complete_frames(tmp_path: Path, gz: bool) -> None:
    data = classic([(T0, FRAME_A), (T0, FRAME_B)])[:-5]
    blob = gzip.compress(data)[:-12] if gz else data
    p = write(tmp_path / ("cut.pcap.gz" if gz else "cut.pcap"), blob)
    c = Counters()
    got = list(iter_frames(p, c))
    assert [f.data for f in got] == [FRAME_A]
    assert c.dropped["pcap.truncated_record"] == 1
    assert c.notes["pcap.truncated_at_offset"] == 24 + 16 + len(FRAME_A)
    # without counters the cut is an error raised after the last frame, never silent
    seen: list[Frame] = []
    with pytest.raises(TruncatedError) as ei:
        seen.extend(iter_frames(p))
    assert len(seen) == 1
    assert "cut.pcap" in str(ei.value) and "offset" in str(ei.value)


@pytest.mark.parametrize(
    ("content", "msg"),
    [
        (b"This is a text file, not a capture.\n" * 3, "not a pcap or pcapng file"),
        (b"", "empty file"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "too short"),
    ],
)
def test_iter_frames_bad_files_are_one_line_errors(
    tmp_path: Path, content: bytes, msg: str
) -> None:
    p = write(tmp_path / "bad.pcap", content)
    with pytest.raises(FormatError, match=msg) as ei:
        list(iter_frames(p, Counters()))
    text = str(ei.value)
    assert "\n" not in text and "bad.pcap" in text and "offset 0" in text


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compressed_stream_cut_before_any_output(tmp_path: Path, kind: str) -> None:
    import zstandard

    data = classic([(T0, FRAME_A)] * 20)
    blob = gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)
    p = write(tmp_path / "c.pcap", blob[:12])
    with pytest.raises(TruncatedError, match=f"{kind} data cut short before the capture's file"):
        list(iter_frames(p, Counters()))


def test_iter_frames_corrupt_gzip(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(classic([(T0, FRAME_A)] * 50)))
    blob[30:40] = b"\xff" * 10
    p = write(tmp_path / "x.pcap.gz", bytes(blob))
    with pytest.raises(FormatError):
        list(iter_frames(p, Counters()))


def test_iter_frames_missing_dir_and_permission(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(iter_frames(str(tmp_path / "nope.pcap")))
    with pytest.raises(InputError, match="is a directory"):
        list(iter_frames(str(tmp_path)))
    p = write(tmp_path / "secret.pcap", classic([]))
    os.chmod(p, 0)
    if os.access(p, os.R_OK):  # root reads everything
        pytest.skip("running as root: permission bits are not enforced")
    with pytest.raises(InputError, match="permission denied"):
        list(iter_frames(p))


# -- writer and flows --------------------------------------------------------------------------


def test_writer_round_trip_file_and_stream(tmp_path: Path) -> None:
    flow = synth_flow([(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n")])
    p = tmp_path / "w.pcap"
    with PcapWriter(p) as w:
        for ts, f in flow[:3]:
            w.write(ts, f)
        w.write_many(flow[3:])
    got = list(iter_frames(str(p)))
    assert [(f.ts_ns, f.data) for f in got] == flow
    buf = io.BytesIO()
    w2 = PcapWriter(buf, linktype=101)
    w2.write(5, b"abc", orig_len=10)
    w2.close()
    frames, _ = parse_all(buf.getvalue())
    assert (frames[0].linktype, frames[0].data, frames[0].orig_len) == (101, b"abc", 10)


def test_synth_flow_segments_by_mss() -> None:
    req = b"POST /u HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"a" * 5000
    flow = synth_flow([(req, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")], mss=1000)
    # 3 handshake + 6 request segments + 1 ack + 1 response + 1 ack + 3 close
    assert len(flow) == 15
    ts = [t for t, _ in flow]
    assert ts == sorted(ts)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_what_we_write(tmp_path: Path) -> None:
    """Our writer and builders against a real dissector: same packets, payload sizes, ports."""
    req = b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"z" * 3000
    flow = synth_flow([(req, resp)], vlan=(7, 8))
    p = tmp_path / "t.pcap"
    with PcapWriter(p) as w:
        w.write_many(flow)
    out = subprocess.run(
        ["tshark", "-r", str(p), "-T", "fields", "-e", "ieee8021ad.id", "-e", "vlan.id",
         "-e", "tcp.len", "-e", "http.request.uri"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(flow)
    assert sum(int(r[2]) for r in rows) == len(req) + len(resp)
    assert rows[0][:2] == ["7", "8"]  # outer 802.1ad tag, inner 802.1Q tag
    assert any(r[3] == "/hello" for r in rows)


@pytest.mark.skipif(
    shutil.which("editcap") is None or shutil.which("mergecap") is None,
    reason="wireshark's editcap/mergecap not installed",
)
def test_files_written_by_wireshark_tools(tmp_path: Path) -> None:
    """Real writers: editcap's pcap (usec), nanosecond pcap, modified pcap and pcapng with
    frame comments, a capture comment and a decryption-secrets block; mergecap's pcapng of
    two interfaces with different link types. Same frames, same times, every time."""
    flow = synth_flow(
        [(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")]
    )
    flow = [(ts + i * 1_234_567, f) for i, (ts, f) in enumerate(flow)]
    src = tmp_path / "src.pcap"
    with PcapWriter(src) as w:
        w.write_many(flow)
    keylog = tmp_path / "keys.txt"
    keylog.write_text("CLIENT_RANDOM " + "00" * 32 + " " + "11" * 48 + "\n")

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=60)

    variants = {
        "usec.pcap": ["-F", "pcap"],
        "nsec.pcap": ["-F", "nsecpcap"],
        "mod.pcap": ["-F", "modpcap"],
        "plain.pcapng": ["-F", "pcapng"],
        "rich.pcapng": ["-F", "pcapng", "-a", "2:a frame comment", "--capture-comment", "hello",
                        "--inject-secrets", f"tls,{keylog}"],
    }  # fmt: skip
    for name, opts in variants.items():
        out = tmp_path / name
        run("editcap", *opts, str(src), str(out))
        got = [(f.ts_ns, f.data, f.linktype) for f in iter_frames(str(out))]
        usec = name != "nsec.pcap" and not name.endswith(".pcapng")
        want = [((ts // 1000 * 1000) if usec else ts, f, 1) for ts, f in flow]
        assert got == want, name

    raw = tmp_path / "raw.pcap"  # the same flow as raw IP (link type 101)
    with PcapWriter(raw, linktype=101) as w:
        w.write_many([(ts + 500, f[14:]) for ts, f in flow])
    merged = tmp_path / "merged.pcapng"
    run("mergecap", "-F", "pcapng", "-w", str(merged), str(src), str(raw))
    frames = list(iter_frames(str(merged)))
    assert len(frames) == 2 * len(flow)
    assert {f.linktype for f in frames} == {1, 101}
    assert [f.ts_ns for f in frames] == sorted(f.ts_ns for f in frames)


BUILDER_LINKTYPES = [0, 1, 9, 12, 14, 50, 101, 104, 108, 113, 117, 239, 276]


@pytest.mark.skipif(
    shutil.which("tshark") is None or shutil.which("mergecap") is None, reason="needs tshark"
)
def test_tshark_agrees_with_every_frame_builder(tmp_path: Path) -> None:
    """Each link-layer builder, IPv4 and IPv6, read by a real dissector: same TCP payload
    bytes and the HTTP request found, so the decoder tests stand on valid frames."""
    pair = [
        (b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    ]
    files = []
    for lt in BUILDER_LINKTYPES:
        for c_ip, s_ip in (("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2")):
            # one port per file, or tshark takes them all for one retransmitted connection
            client, server = (c_ip, 2000 + len(files)), (s_ip, 80)
            p = tmp_path / f"lt{lt}-{len(files)}.pcap"
            with PcapWriter(p, linktype=lt) as w:
                w.write_many(synth_flow(pair, client=client, server=server, linktype=lt,
                                        start_ns=1_700_000_000_000_000_000 + len(files) * 10**9))  # fmt: skip
            files.append(p)
    merged = tmp_path / "all.pcapng"
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(merged), *map(str, files)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    out = subprocess.run(
        ["tshark", "-r", str(merged), "-T", "fields", "-e", "frame.interface_id", "-e", "tcp.len",
         "-e", "http.request.uri"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    per_iface: dict[str, int] = {}
    uris: dict[str, str] = {}
    for line in out.splitlines():
        iface, tlen, uri = [*line.split("\t"), "", ""][:3]
        per_iface[iface] = per_iface.get(iface, 0) + int(tlen or 0)
        if uri:
            uris[iface] = uri
    want = len(pair[0][0]) + len(pair[0][1])
    assert len(per_iface) == len(files)
    assert set(per_iface.values()) == {want}, per_iface
    assert set(uris.values()) == {"/x"} and len(uris) == len(files)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**62), st.binary(max_size=300)), max_size=12),
    st.lists(st.integers(1, 200), max_size=20),
    st.booleans(),
)
def test_write_then_parse_in_any_chunks_round_trips(
    frames: list[tuple[int, bytes]], cuts: list[int], as_pcapng: bool
) -> None:
    """Whatever the frames and however the bytes are split, the same frames come back."""
    if as_pcapng:
        data = shb() + idb(1, tsresol=9) + b"".join(epb(0, ts, f) for ts, f in frames)
    else:
        buf = io.BytesIO()
        w = PcapWriter(buf)
        for ts, f in frames:
            w.write(ts % (2**32 * 10**9), f)
        w.close()
        data = buf.getvalue()
        frames = [(ts % (2**32 * 10**9), f) for ts, f in frames]
    p = PcapParser()
    got: list[Frame] = []
    pos = 0
    for c in cuts:
        got += p.feed(data[pos : pos + c])
        pos += c
    got += p.feed(data[pos:])
    assert p.close() is None
    assert [(f.ts_ns, f.data) for f in got] == frames


def test_writer_compresses_by_extension(tmp_path: Path) -> None:
    flow = synth_flow([(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n")])
    p = tmp_path / "w.pcap.gz"
    with PcapWriter(p) as w:
        w.write_many(flow)
    assert p.read_bytes()[:2] == b"\x1f\x8b"
    assert [(f.ts_ns, f.data) for f in iter_frames(str(p))] == flow
