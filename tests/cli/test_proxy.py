"""``replaygate proxy`` as users run it: a real process, real clients, SIGTERM to stop."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.formats import open_reader
from replaygate.testing.servers import free_port, wait_for_port

from ..sources.httpserver import RawHTTPServer

BIN = str(Path(sys.executable).parent / "replaygate")


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawHTTPServer]:
    with RawHTTPServer() as s:
        yield s


def test_help() -> None:
    r = CliRunner().invoke(cli, ["proxy", "--help"])
    assert r.exit_code == 0
    for flag in ("--listen", "--upstream", "--output", "--tls-cert", "--tls-key", "--metrics-port"):
        assert flag in r.output


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_records_until_sigterm_then_exits_0(upstream: RawHTTPServer, tmp_path: Path) -> None:
    out = tmp_path / "rec.gor"
    port, mport = free_port(), free_port()
    p = subprocess.Popen(
        [
            BIN,
            "proxy",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            upstream.url,
            "-o",
            str(out),
            "--stats",
            "0.2s",
            "--metrics-port",
            f"127.0.0.1:{mport}",
            "--deny-url",
            "^/skip",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port)
        wait_for_port("127.0.0.1", mport)
        assert _get(port, "/one").startswith(b"HTTP/1.1 200")
        assert _get(port, "/two?x=1").startswith(b"HTTP/1.1 200")
        assert _get(port, "/skip/me").startswith(b"HTTP/1.1 200")  # forwarded, not recorded
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "replaygate_forwarded_total 3" in text
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert "recorded=2" in err and "forwarded=3" in err
    assert "dropped_by_filter=1" in err or "dropped_by_" in err
    got = [e.request.target for e in open_reader(out)]
    assert got == ["/one", "/two?x=1"]


def test_http2_clients_recorded_and_grpc_advice(upstream: RawHTTPServer, tmp_path: Path) -> None:
    """An HTTP/2 client is recorded as HTTP/2 (and masked by --mask); a gRPC call to an
    HTTP/1.1 upstream gets the advice to use --upstream-http2, on the client's side and in
    one line on stderr."""
    from ..sources.h2client import H2Request, h2_exchange

    out = tmp_path / "rec.gor"
    port = free_port()
    p = subprocess.Popen(
        [
            BIN,
            "proxy",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            upstream.url,
            "--mask",
            "-o",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port)
        ok, grpc_call = h2_exchange(
            port,
            [H2Request("/h2", headers=[("authorization", "Bearer sekrit-token-4711")]),
             H2Request("/svc/M", "POST", b"\0\0\0\0\0", headers=[("content-type", "application/grpc")])],
        )  # fmt: skip
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert ok.status == 200 and dict(grpc_call.headers)["grpc-status"] == "14"
    assert err.count("--upstream-http2") == 1 and "grpc_needs_http2_upstream=1" in err
    (ex,) = open_reader(out)
    assert ex.request.version == "HTTP/2" and ex.request.target == "/h2"
    assert b"sekrit-token-4711" not in out.read_bytes()  # masked like HTTP/1 recordings
    assert ex.request.header("authorization")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "ftp://nope"], "--upstream"),
        (["--upstream", "http://127.0.0.1:1", "--listen", "bad"], "--listen"),
        (["--upstream", "http://127.0.0.1:1", "--tls-cert", "/no/such.pem"], "not found"),
        (["--upstream", "http://127.0.0.1:1", "--max-queue", "0"], "--max-queue"),
        (["--upstream", "http://127.0.0.1:1", "--max-line-size", "10"], "--max-line-size"),
        (["--upstream", "http://127.0.0.1:1", "--max-header-size", "1kb"], "--max-header-size"),
    ],
)
def test_bad_flags_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "o.gor"
    r = subprocess.run(
        [BIN, "proxy", "-o", str(out), "--listen", f"127.0.0.1:{free_port()}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("replaygate: error:") and message in lines[0]
    assert not out.exists()


def test_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = subprocess.run(
            [
                BIN,
                "proxy",
                "--listen",
                f"127.0.0.1:{port}",
                "--upstream",
                "http://127.0.0.1:1",
                "-o",
                str(tmp_path / "o.gor"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 2
    assert "cannot listen" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(tmp_path / "o.gor")


def test_missing_output_dir(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli,
        ["proxy", "--upstream", "http://127.0.0.1:1", "-o", str(tmp_path / "no" / "o.gor")],
    )
    assert r.exit_code != 0
    assert "directory does not exist" in str(r.exception) + r.output


def _record_one(
    upstream: RawHTTPServer, out: Path, *flags: str
) -> subprocess.CompletedProcess[str]:
    """Run the proxy with ``flags`` until one request went through (or it refused to start)."""
    port = free_port()
    args = ["proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream.url, "-o", str(out)]
    p = subprocess.Popen(
        [BIN, *args, *flags],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while p.poll() is None:
            try:
                wait_for_port("127.0.0.1", port, timeout=0.5)
            except Exception:
                continue
            assert _get(port, "/new").startswith(b"HTTP/1.1 200")
            p.send_signal(signal.SIGTERM)
            break
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return subprocess.CompletedProcess(p.args, p.returncode, "", err)


@pytest.mark.parametrize("ext", [".gor", ".jsonl", ".har"])
def test_existing_output_is_refused_not_overwritten(
    upstream: RawHTTPServer, tmp_path: Path, ext: str
) -> None:
    out = tmp_path / f"old{ext}"
    out.write_bytes(b"precious capture\n")
    r = _record_one(upstream, out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--force" in lines[0] and "--append" in lines[0], r.stderr
    assert str(out) in lines[0]
    assert out.read_bytes() == b"precious capture\n"


def test_force_overwrites_and_append_appends(upstream: RawHTTPServer, tmp_path: Path) -> None:
    out = tmp_path / "rec.gor"
    assert _record_one(upstream, out).returncode == 0
    r = _record_one(upstream, out, "--append")
    assert r.returncode == 0, r.stderr
    assert [e.request.target for e in open_reader(out)] == ["/new", "/new"]
    r = _record_one(upstream, out, "--force")
    assert r.returncode == 0, r.stderr
    assert [e.request.target for e in open_reader(out)] == ["/new"]
    empty = tmp_path / "empty.gor"
    empty.write_bytes(b"")  # an empty file holds nothing to lose
    assert _record_one(upstream, empty).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--append", "--force"], "--append and --force"),
        (["--append", "-o", "x.har"], "--append"),
        (["--append", "--max-bytes", "1mb"], "--append"),
    ],
)
def test_append_and_force_misuse(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "x.har").write_bytes(b"{}")
    r = subprocess.run(
        [BIN, "proxy", "-o", "x.gor", "--upstream", "http://127.0.0.1:1", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_full_disk_is_reported_at_once_and_traffic_flows(
    upstream: RawHTTPServer, tmp_path: Path
) -> None:
    """The output fails (ENOSPC, via /dev/full): one line on stderr right away, not at
    SIGTERM; requests are still forwarded; the end summary counts what was lost."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    out = tmp_path / "full.gor"
    out.symlink_to("/dev/full")
    port = free_port()
    p = subprocess.Popen(
        [BIN, "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream.url, "-o", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert p.stderr is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in p.stderr], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for_port("127.0.0.1", port)
        assert _get(port, "/first").startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if "No space left" in seen[-1]:
                break
        assert any("No space left" in x for x in seen), seen
        assert p.poll() is None  # still running
        assert _get(port, "/second").startswith(b"HTTP/1.1 200")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    reader.join(10)
    p.stderr.close()
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    err = "".join(seen + rest)
    assert "forwarded=2" in err and "lost_on_sink_error=2" in err, err
    assert p.returncode == 2
