"""Live capture on loopback against a real server: every known request, byte-exact.

Root-only (raw sockets); skipped with the reason otherwise. CI runs as root.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from replaygate.errors import CaptureError, ConfigError
from replaygate.model import Exchange, Flag
from replaygate.sources._libpcap import build_filter, list_interfaces
from replaygate.sources.capture import CaptureConfig, run_capture
from replaygate.testing import MemorySink

from .httpserver import SCENARIO_REQUESTS, RawHTTPServer, assert_same, run_scenario

pytestmark = pytest.mark.root


@contextmanager
def capturing(
    cfg: CaptureConfig, sink: MemorySink | None = None
) -> Iterator[tuple[MemorySink, dict[str, int]]]:
    """Run capture in a thread while the block sends traffic; stop it at the end."""
    sink = sink or MemorySink()
    result: dict[str, int] = {}
    errors: list[BaseException] = []
    stop, ready = threading.Event(), threading.Event()

    def run() -> None:
        try:
            result.update(run_capture(cfg, sink, stop=stop, on_ready=ready.set))
        except BaseException as e:
            errors.append(e)
            ready.set()

    t = threading.Thread(target=run)
    t.start()
    assert ready.wait(20)
    try:
        yield sink, result
    finally:
        stop.set()
        t.join(120)
    assert not errors, errors


def _get(host: str, port: int, path: str) -> None:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam) as s:
        s.settimeout(10)
        s.connect((host, port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        while s.recv(65536):
            pass


@pytest.mark.parametrize(
    ("host", "interfaces"), [("127.0.0.1", ["lo"]), ("::1", ["lo"]), ("127.0.0.1", [])]
)
def test_all_known_requests_captured_byte_exact(
    needs_root: None, host: str, interfaces: list[str]
) -> None:
    """GET, HEAD, 304, chunked download, 20 MB POST, chunked upload, 100-continue, 10
    pipelined, Connection: close, HTTP/1.0: every request and response byte-exact, on lo and
    on the 'any' device (which must not see loopback packets twice)."""
    try:
        srv = RawHTTPServer(host)
    except OSError:
        pytest.skip(f"no loopback address {host}")
    cfg = CaptureConfig(interfaces=interfaces, ports=[srv.port])
    with srv, capturing(cfg) as (sink, stats):
        conns = run_scenario(host, srv.port)
    assert len(sink.exchanges) == SCENARIO_REQUESTS, stats
    assert_same(conns, sink.exchanges)
    assert stats["exchanges_complete"] == SCENARIO_REQUESTS
    assert stats["exchanges_written"] == SCENARIO_REQUESTS
    assert stats["requests_without_response"] == 0
    # drops are reported whatever they cost (on a loaded box they can hit ACK-only or
    # duplicate loopback copies without losing data); the exchanges above are the verdict
    assert "packets_dropped_kernel" in stats and "packets_dropped_queue" in stats
    assert stats["packets_seen"] > 0 and stats["bytes_captured"] > 20 << 20
    assert sink.closed
    # the ids and the captured connection point at the real server
    for ex in sink.exchanges:
        assert ex.conn is not None and ex.conn.dport == srv.port and ex.conn.dst == host


def test_any_device_and_max_exchanges(needs_root: None) -> None:
    with RawHTTPServer() as srv:
        cfg = CaptureConfig(ports=[srv.port], max_exchanges=3)
        sink = MemorySink()
        done = threading.Event()
        result: dict[str, int] = {}

        def run() -> None:
            result.update(run_capture(cfg, sink, on_ready=done.set))

        t = threading.Thread(target=run)
        t.start()
        assert done.wait(20)
        deadline = time.monotonic() + 30
        i = 0
        while t.is_alive() and time.monotonic() < deadline:
            _get("127.0.0.1", srv.port, f"/n{i}")
            i += 1
            t.join(0.2)
        assert not t.is_alive(), "capture did not stop at --max-exchanges"
    assert len(sink.exchanges) == 3
    assert result["exchanges"] == 3


def test_duration_stops_and_no_track_responses(needs_root: None) -> None:
    """--duration is measured on the capture's clock: a fake one moved past it stops the
    capture, however long the request took to be seen on a busy machine."""
    from replaygate.testing import FakeClock

    clock = FakeClock()
    with RawHTTPServer() as srv:
        cfg = CaptureConfig(
            interfaces=["lo"], ports=[srv.port], duration=1.5, track_responses=False
        )
        sink = MemorySink()
        result: dict[str, int] = {}
        ready = threading.Event()
        t = threading.Thread(
            target=lambda: result.update(run_capture(cfg, sink, on_ready=ready.set, clock=clock))
        )
        t.start()
        assert ready.wait(30), "capture did not start"
        _get("127.0.0.1", srv.port, "/only-request")
        deadline = time.monotonic() + 30
        while not result and not sink.exchanges and time.monotonic() < deadline:
            t.join(0.05)
        assert t.is_alive(), "stopped before its duration"
        clock.advance(1.5)
        t.join(30)
        assert not t.is_alive()
    assert [e.request.target for e in sink.exchanges] == ["/only-request"]
    ex = sink.exchanges[0]
    assert ex.response is None and Flag.NO_RESPONSE not in ex.flags


class SlowSink(MemorySink):
    def write(self, ex: Exchange) -> None:
        time.sleep(0.05)
        super().write(ex)


def test_slow_sink_burst_is_absorbed_not_lost(needs_root: None) -> None:
    """By default a writer that falls behind makes capture pause decoding (packets keep
    being read into the reader queue), so a burst is delayed, not dropped."""
    n = 40
    with RawHTTPServer() as srv:
        cfg = CaptureConfig(interfaces=["lo"], ports=[srv.port], max_queue=2)
        with (
            capturing(cfg, SlowSink()) as (sink, stats),
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s,
        ):
            s.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(n)))
            got = b""
            while got.count(b"HTTP/1.1 200") < n:
                got += s.recv(65536)
    assert stats["exchanges_written"] == n == len(sink.exchanges)
    assert stats["dropped_recordings"] == 0 and stats["writer_waits"] > 0


def test_slow_sink_drops_whole_exchanges_counted(needs_root: None) -> None:
    n = 40
    with RawHTTPServer() as srv:
        cfg = CaptureConfig(interfaces=["lo"], ports=[srv.port], max_queue=2, absorb_bursts=False)
        with (
            capturing(cfg, SlowSink()) as (sink, stats),
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s,
        ):
            s.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(n)))
            got = b""
            while got.count(b"HTTP/1.1 200") < n:
                got += s.recv(65536)
    assert stats["exchanges"] == n
    assert stats["dropped_recordings"] > 0
    assert stats["exchanges_written"] + stats["dropped_recordings"] == n
    assert len(sink.exchanges) == stats["exchanges_written"]


class FullDisk(MemorySink):
    def write(self, ex: Exchange) -> None:
        if len(self.exchanges) >= 2:
            raise OSError(28, "No space left on device")
        super().write(ex)


def test_disk_full_stops_writing_and_reports_losses(needs_root: None) -> None:
    """The sink fails after two exchanges: capture stops, and says how many were lost."""
    with RawHTTPServer() as srv:
        cfg = CaptureConfig(interfaces=["lo"], ports=[srv.port])
        stop = threading.Event()
        errors: list[CaptureError] = []
        sink = FullDisk()

        def run() -> None:
            try:
                run_capture(cfg, sink, stop=stop, on_ready=ready.set)
            except CaptureError as e:
                errors.append(e)

        ready = threading.Event()
        t = threading.Thread(target=run)
        t.start()
        assert ready.wait(30), "capture did not start"
        for i in range(5):
            _get("127.0.0.1", srv.port, f"/d{i}")
        t.join(30)  # stops by itself once the sink failed
        stop.set()
        t.join(30)
    assert len(errors) == 1
    msg = str(errors[0])
    assert "No space left on device" in msg and "exchange(s) were lost" in msg
    final = getattr(errors[0], "stats", {})
    assert final["lost_on_sink_error"] >= 1
    assert final["exchanges_written"] == 2
    assert final["exchanges"] == 2 + final["lost_on_sink_error"] + final["dropped_recordings"]


def test_unknown_interface_and_bad_filter(needs_root: None) -> None:
    with pytest.raises(CaptureError, match="no such interface"):
        run_capture(CaptureConfig(interfaces=["nosuch0"], ports=[80]), MemorySink())
    with pytest.raises(CaptureError, match="--bpf"):
        run_capture(CaptureConfig(interfaces=["lo"], bpf="tcp port (("), MemorySink())


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="--port"):
        CaptureConfig().validate()
    with pytest.raises(ConfigError, match="--port"):
        CaptureConfig(ports=[70000]).validate()
    with pytest.raises(ConfigError, match="--duration"):
        CaptureConfig(ports=[80], duration=0).validate()
    with pytest.raises(ConfigError, match="--max-exchanges"):
        CaptureConfig(ports=[80], max_exchanges=0).validate()


def test_filter_expression() -> None:
    assert build_filter([80], None, vlan=False) == "tcp port 80"
    assert build_filter([81, 80, 80], None, vlan=True) == (
        "(tcp port 80 or tcp port 81) or (vlan and (tcp port 80 or tcp port 81))"
    )
    assert build_filter([80], "host 10.0.0.1", vlan=True) == "host 10.0.0.1"
    assert "lo" in list_interfaces() and "any" in list_interfaces()


def test_bpf_instead_of_ports(needs_root: None) -> None:
    """With --bpf and no --port the assembler finds the server side by itself."""
    with RawHTTPServer() as srv:
        cfg = CaptureConfig(interfaces=["lo"], bpf=f"tcp port {srv.port}")
        with capturing(cfg) as (sink, _):
            for i in range(3):
                _get("127.0.0.1", srv.port, f"/bpf{i}")
    assert sorted(e.request.target for e in sink.exchanges) == ["/bpf0", "/bpf1", "/bpf2"]
    assert all(
        e.complete and e.conn is not None and e.conn.dport == srv.port for e in sink.exchanges
    )
