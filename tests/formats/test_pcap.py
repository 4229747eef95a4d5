"""formats.pcap: captures of every flavour read as exchanges through the format registry,
with counters that say what was not turned into an exchange, and one-line errors."""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replaygate.errors import FormatError, InputError, TruncatedError
from replaygate.formats import ReadOptions, open_reader
from replaygate.model import Flag
from replaygate.pipeline import Counters
from replaygate.protocol.pcapfile import PcapWriter
from replaygate.protocol.segment import ACK, PSH
from replaygate.testing.frames import build_tcp_frame, synth_flow

REQ = b"GET /items/%d HTTP/1.1\r\nHost: shop.test\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def pairs(n: int) -> list[tuple[bytes, bytes]]:
    return [(REQ % i, RESP) for i in range(n)]


def write_pcap(path: Path, frames: list[tuple[int, bytes]], linktype: int = 1) -> Path:
    with PcapWriter(path, linktype=linktype) as w:
        w.write_many(frames)
    return path


def read_all(path: Path, **extra: object) -> tuple[list, Counters]:  # type: ignore[type-arg]
    c = Counters()
    exs = list(open_reader(path, ReadOptions(counters=c, extra=dict(extra))))
    return exs, c


@pytest.mark.parametrize("name", ["a.pcap", "a.cap", "a.pcap.gz", "a.pcapng.gz"])
def test_registered_extensions_read_exchanges(tmp_path: Path, name: str) -> None:
    raw = write_pcap(tmp_path / "raw.pcap", synth_flow(pairs(3)))
    target = tmp_path / name
    data = raw.read_bytes()
    target.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    exs, c = read_all(target)
    assert [e.request.target for e in exs] == ["/items/0", "/items/1", "/items/2"]
    assert all(e.complete and e.response is not None and e.response.status == 200 for e in exs)
    assert c.notes["pcap.frames"] == len(synth_flow(pairs(3)))
    assert c.notes["pcap.exchanges_complete"] == 3
    assert not c.dropped


def test_several_connections_link_types_and_vlans(tmp_path: Path) -> None:
    frames: list[tuple[int, bytes]] = []
    for k in range(4):
        frames += synth_flow(pairs(2), client=(f"10.0.0.{10 + k}", 5000 + k),
                             start_ns=1_700_000_000_000_000_000 + k * 1000, vlan=(k,))  # fmt: skip
    frames.sort(key=lambda f: f[0])
    exs, _ = read_all(write_pcap(tmp_path / "v.pcap", frames))
    assert len(exs) == 8
    assert {e.conn.sport for e in exs if e.conn} == {5000, 5001, 5002, 5003}
    for lt, client, server in [
        (113, "10.9.9.9", "10.9.9.1"),
        (0, "::1", "::1"),
        (276, "fd00::5", "fd00::6"),
    ]:
        flow = synth_flow(pairs(1), client=(client, 4444), server=(server, 8080), linktype=lt)
        exs, _ = read_all(write_pcap(tmp_path / f"lt{lt}.pcap", flow, linktype=lt))
        assert len(exs) == 1 and exs[0].conn is not None
        assert (exs[0].conn.src, exs[0].conn.dport) == (client, 8080)


def test_capture_without_handshake_needs_no_server_ports(tmp_path: Path) -> None:
    flow = synth_flow(pairs(2), handshake=False, server=("10.0.0.2", 8123))
    exs, _ = read_all(write_pcap(tmp_path / "mid.pcap", flow))
    assert [e.request.target for e in exs] == ["/items/0", "/items/1"]
    exs, _ = read_all(write_pcap(tmp_path / "mid2.pcap", flow), server_ports=[8123])
    assert len(exs) == 2 and exs[0].conn is not None and exs[0].conn.dport == 8123


def test_idle_flows_expire_by_packet_time(tmp_path: Path) -> None:
    """A connection that is never closed is expired once packet time moves past the idle
    timeout (here: several MiB of later traffic, 300 s on), not held to the end of the file."""
    t0 = 1_700_000_000_000_000_000
    open_conn = synth_flow(pairs(1), client=("10.0.0.7", 7000), start_ns=t0, close=False)
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + b"b" * 20000
    later = [
        (t0 + 300_000_000_000 + i * 1_000_000, f)
        for i, (_, f) in enumerate(
            synth_flow([(REQ % i, big) for i in range(300)], client=("10.0.0.8", 7001))
        )
    ]
    path = write_pcap(tmp_path / "idle.pcap", open_conn + later)
    assert path.stat().st_size > 3 << 20  # several read chunks
    exs, c = read_all(path)
    assert len(exs) == 301
    assert exs[0].conn is not None and exs[0].conn.sport == 7000  # out first, not last
    assert c.notes["pcap.flows_expired"] == 1


def test_undecodable_frames_are_counted(tmp_path: Path) -> None:
    flow = synth_flow(pairs(1))
    arp = (flow[0][0], b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28)
    frag = build_tcp_frame(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=80, seq=1,
                           flags=ACK | PSH, payload=b"x" * 40)  # fmt: skip
    frag = frag[:20] + b"\x20\x00" + frag[22:]  # IPv4 "more fragments", alone forever
    exs, c = read_all(write_pcap(tmp_path / "m.pcap", [arp, *flow, (flow[-1][0], frag)]))
    assert len(exs) == 1
    assert c.notes["link.not_ip"] == 1
    assert c.dropped["link.ip_fragment_incomplete"] == 1


def test_cut_short_capture_keeps_complete_exchanges_then_raises(tmp_path: Path) -> None:
    """Like tcpdump and tshark: everything before the cut comes out, then a one-line error
    with the offset (or, with ``truncated="count"``, only the counters say so)."""
    path = write_pcap(tmp_path / "cut.pcap", synth_flow(pairs(5)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    c = Counters()
    exs = []
    with pytest.raises(TruncatedError) as ei:
        exs.extend(open_reader(path, ReadOptions(counters=c)))
    assert "cut.pcap (offset " in str(ei.value) and "cut short" in str(ei.value)
    assert ei.value.offset == c.notes["pcap.truncated_at_offset"] > 0
    assert c.dropped["pcap.truncated_record"] == 1
    complete = [e for e in exs if e.complete]
    assert 1 <= len(complete) < 5
    assert [e.request.target for e in complete] == [f"/items/{i}" for i in range(len(complete))]
    again, c2 = read_all(path, truncated="count")
    assert [e.request.target for e in again] == [e.request.target for e in exs]
    assert c2.dropped["pcap.truncated_record"] == 1


def test_corruption_mid_file_yields_what_came_before_then_raises(tmp_path: Path) -> None:
    flow = synth_flow(pairs(4))
    path = write_pcap(tmp_path / "bad.pcap", flow)
    data = bytearray(path.read_bytes())
    off = 24 + sum(16 + len(f) for _, f in flow[:-4])  # a record near the end
    data[off + 8 : off + 12] = b"\xff\xff\xff\x7f"  # absurd captured length
    path.write_bytes(bytes(data))
    c = Counters()
    got = []
    with pytest.raises(FormatError) as ei:
        got.extend(open_reader(path, ReadOptions(counters=c)))
    assert f"(offset {off})" in str(ei.value) and "bad.pcap" in str(ei.value)
    assert [e.request.target for e in got if e.complete] == [f"/items/{i}" for i in range(4)]
    assert c.dropped["pcap.corrupt_file"] == 1


def test_gap_in_a_response_is_flagged(tmp_path: Path) -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"z" * 5000
    flow = synth_flow([(REQ % 1, big), (REQ % 2, RESP)], mss=1000)
    lost = next(i for i, (_, f) in enumerate(flow) if f.endswith(b"z" * 1000))
    exs, c = read_all(write_pcap(tmp_path / "gap.pcap", flow[:lost] + flow[lost + 1 :]))
    assert Flag.RESPONSE_GAP in exs[0].flags
    assert exs[1].complete
    assert c.notes["pcap.gaps"] >= 1


@pytest.mark.parametrize(
    ("content", "name", "msg"),
    [
        (b"just some text\n", "notes.pcap", "not a pcap or pcapng file"),
        (b"", "empty.pcapng", "empty file"),
    ],
)
def test_bad_files_give_one_line_errors(
    tmp_path: Path, content: bytes, name: str, msg: str
) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(FormatError, match=msg) as ei:
        read_all(p)
    assert "\n" not in str(ei.value) and name in str(ei.value)
    with pytest.raises(InputError, match="no such file"):
        read_all(tmp_path / "missing.pcap")


@pytest.mark.parametrize(
    ("setup", "msg"),
    [
        ("text", "not a pcap or pcapng file"),
        ("cut", "cut short in the middle of a packet"),
        ("missing", "no such file"),
    ],
)
def test_cli_on_bad_captures(tmp_path: Path, setup: str, msg: str) -> None:
    """What a user sees from ``inspect`` and ``convert``: one line, exit code 2."""
    p = tmp_path / "x.pcap"
    if setup == "text":
        p.write_text("not a capture\n")
    elif setup == "cut":
        write_pcap(p, synth_flow(pairs(3)))
        p.write_bytes(p.read_bytes()[:-7])
    for args in (["inspect", str(p)], ["convert", str(p), str(tmp_path / "out.gor")]):
        proc = subprocess.run(
            [sys.executable, "-m", "replaygate", *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2, (args, proc.stderr)
        lines = [
            ln for ln in proc.stderr.strip().splitlines() if ln.startswith("replaygate: error:")
        ]
        assert len(lines) == 1 and msg in lines[0] and "Traceback" not in proc.stderr


# -- real captures: tcpdump / dumpcap writing what the kernel saw on loopback -----------------

CAPTURERS = {
    # --immediate-mode: else packets wait in the kernel ring for its block timeout and the
    # SIGINT that stops tcpdump loses them; -B: "any" in immediate mode drops without it
    "tcpdump-lo": [
        "tcpdump",
        "-i",
        "lo",
        "--immediate-mode",
        "-B",
        "65536",
        "-U",
        "-s",
        "0",
        "-w",
        "{out}",
    ],
    "tcpdump-any": [
        "tcpdump",
        "-i",
        "any",
        "--immediate-mode",
        "-B",
        "65536",
        "-U",
        "-s",
        "0",
        "-w",
        "{out}",
    ],
    "dumpcap-pcapng": ["dumpcap", "-q", "-i", "lo", "-B", "64", "-w", "{out}", "-f"],
}


def _wait_until_captured(out: Path, n: int, proc: subprocess.Popen[bytes]) -> None:
    """Poll the capturer's file until it holds ``n`` complete exchanges besides the probes
    (instead of sleeping for the capturer to hand packets over); generous deadline."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            exs, _ = read_all(out, truncated="count")
        except FormatError:
            exs = []  # caught mid-write
        if sum(1 for e in exs if e.complete and e.request.target != "/probe") >= n:
            return
        time.sleep(0.1)


def _traffic(host: str, port: int) -> list[tuple[str, str, int]]:
    """Real clients: keep-alive, a 300 KB POST (TSO/GRO-sized segments), chunked upload,
    HEAD, 204, 304, 404. Returns (method, target, status) as the client saw them."""
    import http.client

    seen: list[tuple[str, str, int]] = []
    big = b"p" * 300_000

    def chunks() -> Iterator[bytes]:
        yield b"a" * 1000
        yield b"b" * 5000

    plan: list[list[tuple[str, str, object, dict[str, str]]]] = [
        [("GET", "/", None, {}), ("GET", "/json", None, {}), ("POST", "/upload", big, {}),
         ("GET", "/status/404", None, {})],
        [("HEAD", "/", None, {}), ("GET", "/status/204", None, {}), ("GET", "/status/304", None, {}),
         ("PUT", "/chunked", chunks(), {"Transfer-Encoding": "chunked"})],
    ]  # fmt: skip
    for conn_plan in plan:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            for method, target, body, headers in conn_plan:
                conn.request(method, target, body=body, headers=headers,  # type: ignore[arg-type]
                             encode_chunked=bool(headers))  # fmt: skip
                resp = conn.getresponse()
                resp.read()
                seen.append((method, target, resp.status))
        finally:
            conn.close()
    return seen


def _wait_until_capturing(out: Path, host: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    """Probe requests until one shows up in the file: the only sure sign a capture is live."""
    import http.client
    import time

    from replaygate.protocol.pcapfile import iter_frames

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the capturer exited"
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request("GET", "/probe")
            conn.getresponse().read()
        finally:
            conn.close()
        time.sleep(0.3)
        if out.exists() and out.stat().st_size > 0:
            try:
                if any(True for _ in iter_frames(str(out), Counters())):
                    return
            except FormatError:
                pass  # the header is not all written yet
    pytest.fail("the capturer never wrote a packet")


@pytest.mark.parametrize("capturer", sorted(CAPTURERS))
def test_real_capture_of_nginx_traffic(
    tmp_path: Path, nginx: Any, needs_root: None, capturer: str
) -> None:
    """Files written by real capturers from real kernel packets (loopback: checksum offload,
    64 KB GRO frames, Linux cooked headers on 'any', pcapng from dumpcap) read back as
    exactly the exchanges the client made."""
    import shutil
    import signal

    argv = CAPTURERS[capturer]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} not installed")
    out = tmp_path / ("cap.pcapng" if "pcapng" in capturer else "cap.pcap")
    cmd = [a.format(out=out) for a in argv] + [f"tcp port {nginx.port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_capturing(out, nginx.host, nginx.port, proc)
        # a probe cut in half by the capture's start (its request before, its response after)
        # is an orphan response: only what came after the probes counts
        start_ns = time.time_ns()
        seen = _traffic(nginx.host, nginx.port)
        # dumpcap hands packets over when its kernel ring block times out: wait for them
        _wait_until_captured(out, len(seen), proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    exs, c = read_all(out)
    exs = [e for e in sorted(exs, key=lambda e: e.ts_ns) if e.ts_ns >= start_ns]
    got = [(e.request.method, e.request.target, e.response.status if e.response else None)
           for e in exs]  # fmt: skip
    assert got == seen, c.as_dict()
    assert all(e.complete for e in exs), [sorted(map(str, e.flags)) for e in exs]
    post = next(e for e in exs if e.request.method == "POST")
    assert post.summary()["request_body_len"] == 300_000
    put = next(e for e in exs if e.request.method == "PUT")
    assert put.summary()["request_body_len"] == 6000


def test_real_capture_over_ipv6_loopback(tmp_path: Path, needs_root: None) -> None:
    """tcpdump on ::1 against a real (stdlib) HTTP/1.1 server: IPv6 from the kernel."""
    import http.client
    import shutil
    import signal
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump not installed")
    if not socket.has_ipv6:
        pytest.skip("no IPv6")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: bytes) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(404 if self.path == "/missing" else 200, b"v6 " * 1000)

        do_HEAD = do_GET

        def do_POST(self) -> None:
            self._reply(201, b"created")

        def log_message(self, *args: object) -> None:
            pass

    class Server6(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    server = Server6(("::1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    out = tmp_path / "v6.pcap"
    proc = subprocess.Popen(
        [*CAPTURERS["tcpdump-lo"][:-1], str(out), f"tcp port {port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_until_capturing(out, "::1", port, proc)
        start_ns = time.time_ns()
        conn = http.client.HTTPConnection("::1", port, timeout=10)
        seen = []
        for method, target, body in [("GET", "/a", None), ("POST", "/b", b"x" * 100_000),
                                     ("HEAD", "/c", None), ("GET", "/missing", None)]:  # fmt: skip
            conn.request(method, target, body=body)
            r = conn.getresponse()
            r.read()
            seen.append((method, target, r.status))
        conn.close()
        _wait_until_captured(out, len(seen), proc)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    exs, _ = read_all(out)
    exs = [e for e in sorted(exs, key=lambda e: e.ts_ns) if e.ts_ns >= start_ns]
    assert [(e.request.method, e.request.target, e.summary()["status"]) for e in exs] == seen
    assert all(e.complete and e.conn is not None and e.conn.src == "::1" for e in exs)
    assert exs[1].summary()["request_body_len"] == 100_000
    assert exs[0].summary()["response_body_len"] == 3000


def test_counters_add_up_over_several_files(tmp_path: Path) -> None:
    a = write_pcap(tmp_path / "a.pcap", synth_flow(pairs(2)))
    b = write_pcap(tmp_path / "b.pcap", synth_flow(pairs(3), client=("10.0.0.9", 999)))
    c = Counters()
    opts = ReadOptions(counters=c)
    n = sum(1 for p in (a, b) for _ in open_reader(p, opts))
    assert n == 5
    assert c.notes["pcap.exchanges_complete"] == 5
    assert c.notes["pcap.flows_total"] == 2
