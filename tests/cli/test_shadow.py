"""``replaygate shadow``: live capture on lo replayed online into a second real server."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.formats import open_reader
from replaygate.formats.gor import read_records

from ..sources.httpserver import RawHTTPServer

BIN = str(Path(sys.executable).parent / "replaygate")


@pytest.fixture(scope="module")
def prod() -> Iterator[RawHTTPServer]:
    with RawHTTPServer() as s:
        yield s


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _shadow(args: list[str]) -> subprocess.Popen[str]:
    p = subprocess.Popen([BIN, "shadow", *args], stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    line = p.stderr.readline()
    if "shadowing" not in line:
        p.kill()
        p.communicate()
        pytest.fail(f"shadow did not start: {line!r}")
    return p


def _stop(p: subprocess.Popen[str]) -> str:
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    return err


def _wait_stats(p: subprocess.Popen[str], key: str, n: int, timeout: float = 60.0) -> None:
    """Read the ``--stats`` lines on stderr until one shows ``key`` >= ``n`` (instead of
    sleeping and hoping the traffic went through); the process keeps running."""
    assert p.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            return  # exited: the caller's checks say why
        if _num(line, key) >= n:
            return
    pytest.fail(f"no stats line with {key} >= {n} within {timeout} s")


def _num(summary: str, key: str) -> int:
    m = re.search(rf"\b{key}=(\d+)", summary)
    return int(m.group(1)) if m else 0


def test_help() -> None:
    r = CliRunner().invoke(cli, ["shadow", "--help"])
    assert r.exit_code == 0
    for flag in ("--interface", "--port", "--target", "--output", "--stats", "--max-queue"):
        assert flag in r.output


@pytest.mark.root
def test_shadow_replays_and_records(needs_root: None, prod: RawHTTPServer, tmp_path: Path) -> None:
    out = tmp_path / "shadow.gor"
    with RawHTTPServer() as staging:
        p = _shadow(
            ["-i", "lo", "-p", str(prod.port), "-t", staging.url, "-o", str(out),
             "--stats", "0.2s"]
        )  # fmt: skip
        for i in range(5):
            assert _get(prod.port, f"/s{i}").startswith(b"HTTP/1.1 200")
        _wait_stats(p, "replay_answered", 5)
        err = _stop(p)
    summary = err.strip().splitlines()[-1]
    assert _num(summary, "exchanges") == 5 and _num(summary, "replay_answered") == 5, summary
    got = sorted(open_reader(out), key=lambda e: e.request.target)
    assert [e.request.target for e in got] == [f"/s{i}" for i in range(5)]
    assert all(ex.response is not None for ex in got)
    # every exchange has its replayed response (type 3 record) from staging
    recs = [r for r in read_records(out) if r.type == 3]
    assert len(recs) == 5
    assert all(r.payload.startswith(b"HTTP/1.1 200") and b"hello GET /s" in r.payload for r in recs)


@pytest.mark.root
def test_dead_target_drops_and_counts_never_slows_capture(
    needs_root: None, prod: RawHTTPServer
) -> None:
    # a target that accepts connections (kernel backlog) and never answers
    with socket.create_server(("127.0.0.1", 0), backlog=64) as dead:
        target = f"http://127.0.0.1:{dead.getsockname()[1]}"
        p = _shadow(
            [
                "-i",
                "lo",
                "-p",
                str(prod.port),
                "-t",
                target,
                "--concurrency",
                "1",
                "--max-queue",
                "2",
                "--timeout",
                "1s",
                "--stats",
                "0.5s",
            ]
        )
        n = 30
        t0 = time.monotonic()
        for i in range(n):
            assert _get(prod.port, f"/d{i}").startswith(b"HTTP/1.1 200")
        assert time.monotonic() - t0 < 20  # production traffic was never held up
        _wait_stats(p, "exchanges", n)
        err = _stop(p)
    summary = err.strip().splitlines()[-1]
    assert _num(summary, "exchanges") == n, summary
    dropped = _num(summary, "replay_dropped_backpressure")
    assert dropped > 0, summary
    assert _num(summary, "replay_sent") + dropped <= n


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--force"),
        (["--append", "--force"], "--append and --force"),
        (["--append", "-o", "old.har"], "--append"),
        (["--append", "--max-bytes", "1mb"], "--append"),
    ],
)
def test_existing_output_is_refused(tmp_path: Path, args: list[str], message: str) -> None:
    """Like capture/proxy: a non-empty -o is refused before anything starts (so also without
    root), one line, exit 2, the old file intact (it used to be overwritten)."""
    for name in ("old.gor", "old.har"):
        (tmp_path / name).write_bytes(b"precious")
    r = subprocess.run(
        [BIN, "shadow", "-p", "80", "-t", "http://127.0.0.1:9", "-o", "old.gor", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert (tmp_path / "old.gor").read_bytes() == b"precious"
    assert (tmp_path / "old.har").read_bytes() == b"precious"


@pytest.mark.root
def test_append_adds_and_force_replaces(
    needs_root: None, prod: RawHTTPServer, tmp_path: Path
) -> None:
    out = tmp_path / "shadow.gor"
    with RawHTTPServer() as staging:
        for i, flags in enumerate(([], ["--append"], ["--force"])):
            p = _shadow(
                ["-i", "lo", "-p", str(prod.port), "-t", staging.url, "-o", str(out),
                 "--stats", "0.2s", *flags]
            )  # fmt: skip
            assert _get(prod.port, f"/run{i}").startswith(b"HTTP/1.1 200")
            _wait_stats(p, "replay_answered", 1)
            _stop(p)
            got = [e.request.target for e in open_reader(out)]
            assert got == {0: ["/run0"], 1: ["/run0", "/run1"], 2: ["/run2"]}[i], (flags, got)


def test_bad_flags(tmp_path: Path) -> None:
    r = subprocess.run(
        [BIN, "shadow", "-p", "80", "-t", "ftp://x"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2 and r.stderr.startswith("replaygate: error:")
    r = subprocess.run(
        [BIN, "shadow", "-t", "http://x"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2 and "give --port" in r.stderr


@pytest.mark.root
def test_shadow_judges_online(needs_root: None, prod: RawHTTPServer, tmp_path: Path) -> None:
    """--json/--watch-pid on shadow: the same comparison and gate as `replay --report`."""
    import json
    import os

    rep = tmp_path / "summary.json"
    out = tmp_path / "shadow.gor"
    with RawHTTPServer() as staging:
        p = _shadow(
            ["-i", "lo", "-p", str(prod.port), "-t", staging.url, "-o", str(out),
             "--json", str(rep), "--watch-pid", str(os.getpid()), "--stats", "0.2s"]
        )  # fmt: skip
        for i in range(4):
            assert _get(prod.port, f"/j{i}").startswith(b"HTTP/1.1 200")
        _wait_stats(p, "replay_answered", 4)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    assert p.returncode in (0, 1), err
    summary = json.loads(rep.read_text())
    assert summary["verdict"] in ("pass", "fail")
    assert sum(e["requests"] for e in summary["endpoints"]) == 4
    assert summary["target"]
    # read back through the reader: every exchange keeps its replayed response
    assert all(ex.replayed is not None for ex in open_reader(out))
