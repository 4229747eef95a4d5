"""``replaygate capture`` as users run it: a real process on lo, signals, counters, errors."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
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
def server() -> Iterator[RawHTTPServer]:
    with RawHTTPServer() as s:
        yield s


def _get(port: int, path: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        while s.recv(65536):
            pass


def _start(args: list[str]) -> subprocess.Popen[str]:
    p = subprocess.Popen([BIN, "capture", *args], stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    seen = []
    for _ in range(5):  # "capturing on ..." once the interfaces are open
        line = p.stderr.readline()
        seen.append(line)
        if "capturing on" in line or not line:
            break
    if "capturing on" not in seen[-1]:
        p.kill()
        p.communicate()
        pytest.fail(f"capture did not start: {seen}")
    return p


def _finish(p: subprocess.Popen[str], sig: int = signal.SIGINT) -> str:
    p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return err


def test_help() -> None:
    r = CliRunner().invoke(cli, ["capture", "--help"])
    assert r.exit_code == 0
    for flag in (
        "--interface",
        "--port",
        "--bpf",
        "--output",
        "--max-bytes",
        "--max-seconds",
        "--duration",
        "--max-exchanges",
        "--track-responses",
        "--no-track-responses",
        "--stats",
        "--metrics-port",
    ):
        assert flag in r.output, flag


@pytest.mark.root
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_gracefully(
    needs_root: None, server: RawHTTPServer, tmp_path: Path, sig: int
) -> None:
    out = tmp_path / "cap.gor"
    mport = free_port()
    p = _start(
        [
            "-i",
            "lo",
            "-p",
            str(server.port),
            "-o",
            str(out),
            "--stats",
            "0.3s",
            "--metrics-port",
            f"127.0.0.1:{mport}",
            "--deny-url",
            "^/skip",
        ]
    )
    try:
        for path in ("/a", "/b?x=1", "/skip/c"):
            _get(server.port, path)
        wait_for_port("127.0.0.1", mport)
        deadline = time.monotonic() + 20
        text = ""
        while "replaygate_exchanges_total 3" not in text and time.monotonic() < deadline:
            time.sleep(0.3)
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
                text = r.read().decode()
        assert "replaygate_exchanges_total 3" in text
        assert "replaygate_packets_dropped_kernel_total" in text
    except BaseException:
        _finish(p, signal.SIGKILL)
        raise
    err = _finish(p, sig)
    assert p.returncode == 0, err
    assert "replaygate: capture: " in err  # the periodic line and the exit summary
    summary = err.strip().splitlines()[-1]
    assert "exchanges=3" in summary and "exchanges_written=2" in summary
    assert "dropped_by_filter=1" in summary
    assert [e.request.target for e in open_reader(out)] == ["/a", "/b?x=1"]


@pytest.mark.root
def test_max_exchanges_ends_by_itself(
    needs_root: None, server: RawHTTPServer, tmp_path: Path
) -> None:
    out = tmp_path / "cap.jsonl"
    p = _start(["-i", "lo", "-p", str(server.port), "-o", str(out), "--max-exchanges", "2"])
    for i in range(6):
        _get(server.port, f"/m{i}")
        if p.poll() is not None:
            break
        time.sleep(0.3)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert len(list(open_reader(out))) == 2


@pytest.mark.root
def test_kill_9_leaves_a_readable_file(
    needs_root: None, server: RawHTTPServer, tmp_path: Path
) -> None:
    out = tmp_path / "cap.gor"
    p = _start(["-i", "lo", "-p", str(server.port), "-o", str(out)])
    for i in range(5):
        _get(server.port, f"/k{i}")
    deadline = time.monotonic() + 20
    while (
        not out.exists() or (b"\n" + out.read_bytes()).count(b"\n1 ") < 5
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    p.kill()
    p.communicate()
    got = [e.request.target for e in open_reader(out)]
    assert got == [f"/k{i}" for i in range(5)]  # flushed as the writer went idle


@pytest.mark.root
def test_unknown_interface(needs_root: None, tmp_path: Path) -> None:
    r = subprocess.run(
        [BIN, "capture", "-i", "nosuch0", "-p", "80", "-o", str(tmp_path / "o.gor")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("replaygate: error: --interface nosuch0: no such interface")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "o.gor")


@pytest.mark.root
def test_without_cap_net_raw_says_what_to_do(needs_root: None, tmp_path: Path) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    drop = ["setpriv", "--bounding-set", "-net_raw,-net_admin", "--inh-caps", "-net_raw,-net_admin"]
    r = subprocess.run(
        [*drop, BIN, "capture", "-p", "80", "-o", str(tmp_path / "o.gor")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if r.stderr.startswith("setpriv:"):
        pytest.skip(f"cannot drop capabilities here: {r.stderr.strip()}")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert line.startswith("replaygate: error: no permission") and "\n" not in line
    assert "CAP_NET_RAW" in line and "replaygate proxy" in line
    assert not os.path.exists(tmp_path / "o.gor")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "x.gor"], "give --port P"),
        (["-p", "0", "-o", "x.gor"], "--port"),
        (["-p", "80", "-o", "x.pcap"], "cannot write this format"),
        (["-p", "80", "-o", "x.gor", "--duration", "soon"], "--duration"),
        (["-p", "80", "-o", "x.gor", "--stats", "0s"], "--stats"),
        (["-p", "80", "-o", "x.har", "--max-bytes", "1mb"], "rotation"),
        (["-p", "80", "-o", "x.gor", "--metrics-port", "nope"], "--metrics-port"),
        (["-p", "443", "-o", "x.gor", "--tls-keylog", "/nonexistent/k.log"], "--tls-keylog"),
    ],
)
def test_bad_flags_exit_2_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    r = subprocess.run(
        [BIN, "capture", *args], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


@pytest.mark.root
def test_rotation_by_size(needs_root: None, server: RawHTTPServer, tmp_path: Path) -> None:
    out = tmp_path / "rot.gor"
    p = _start(["-i", "lo", "-p", str(server.port), "-o", str(out), "--max-bytes", "1kb"])
    try:
        for i in range(12):
            _get(server.port, f"/r{i}")
    finally:
        err = _finish(p)
    assert p.returncode == 0, err
    files = sorted(tmp_path.glob("rot_*.gor"), key=lambda f: int(f.stem.split("_")[1]))
    assert len(files) > 1
    got = [e.request.target for f in files for e in open_reader(f)]
    assert sorted(got) == sorted(f"/r{i}" for i in range(12))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--force"),
        (["--append", "--force"], "--append and --force"),
        (["--append", "-o", "old.har"], "--append"),
    ],
)
def test_existing_output_is_refused(tmp_path: Path, args: list[str], message: str) -> None:
    """Refused before anything starts (so also without root), the old file intact."""
    for name in ("old.gor", "old.har"):
        (tmp_path / name).write_bytes(b"precious")
    r = subprocess.run(
        [BIN, "capture", "-p", "80", "-o", "old.gor", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert (tmp_path / "old.gor").read_bytes() == b"precious"
