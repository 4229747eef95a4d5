"""Capture agents publishing to JetStream: the recording proxy with --output nats://."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from replaygate.jetstream import read_stream
from replaygate.testing.nats import NatsServer
from replaygate.testing.servers import NginxServer, free_port, wait_for_port


def test_proxy_records_into_a_stream(nats_server: NatsServer, nginx: NginxServer) -> None:
    port = free_port()
    url = nats_server.url + "/AGENT"
    p = subprocess.Popen(
        [sys.executable, "-m", "replaygate", "proxy", "--listen", f"127.0.0.1:{port}",
         "--upstream", nginx.url, "--output", url, "--duration", "4s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, timeout=15)
        for i in range(20):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json?i={i}", timeout=5) as r:
                assert r.status == 200
    finally:
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    got = list(read_stream(url))
    assert sorted(ex.request.target for ex in got) == sorted(f"/json?i={i}" for i in range(20))
    assert all(ex.response is not None and ex.response.status == 200 for ex in got)


def test_convert_into_a_stream(nats_server: NatsServer, tmp_path: object) -> None:
    from pathlib import Path

    from replaygate.formats.gor import GorWriter
    from replaygate.testing import make_exchange

    src = Path(str(tmp_path)) / "in.gor"
    w = GorWriter(src)
    for i in range(30):
        w.write(make_exchange("GET", f"/c/{i}"))
    w.close()
    url = nats_server.url + "/CONV"
    r = subprocess.run(
        [sys.executable, "-m", "replaygate", "convert", str(src), url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    got: list[object] = []
    while time.monotonic() < deadline and len(got) < 30:
        got = list(read_stream(url))
    assert len(got) == 30
