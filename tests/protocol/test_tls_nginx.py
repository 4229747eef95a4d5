"""HTTPS captured on loopback against a real nginx, decrypted with the clients' key logs and
compared with ``tshark -o tls.keylog_file:FILE``; and live: ``capture --tls-keylog`` while a
client writes its key log, then the capture is replayed.

Clients: curl (``SSLKEYLOGFILE``; TLS 1.2 and 1.3, one connection per cipher suite, several
requests on each, a 1 MB body, a HelloRetryRequest), Python ``ssl`` (``keylog_filename``;
keep-alive, a 300 KB POST, session resumption in TLS 1.2 and 1.3) and ``openssl s_client`` (a
TLS 1.3 KeyUpdate between two requests; a request sent as 0-RTT early data). Root-only (tcpdump and raw sockets); skipped with the reason
otherwise. CI runs as root.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replaygate.formats import ReadOptions
from replaygate.formats.pcap import read
from replaygate.pipeline import Counters
from replaygate.testing.servers import NginxServer, free_port, nginx_binary

from .tlsconv import cert_files

pytestmark = pytest.mark.root

TLS12_SUITES = {
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES128-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-RSA-AES256-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "AES256-SHA": "TLS_RSA_WITH_AES_256_CBC_SHA",
}
TLS13_SUITES = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
)


class TLSNginx:
    def __init__(self, ng: NginxServer, tls_port: int, hrr_port: int) -> None:
        self.ng = ng
        self.tls_port = tls_port
        self.hrr_port = hrr_port  # TLS 1.3 with P-256 only: clients' X25519 share -> HRR
        self.plain_port = ng.port


@pytest.fixture(scope="module")
def tls_nginx() -> Iterator[TLSNginx]:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    cert, key = cert_files()
    port, plain, hrr = free_port(), free_port(), free_port()
    # /post is proxied (to /posted on the plain listener) so that nginx reads the whole body
    # before it answers: a `return` answers at once, before the upload ends, and tshark does
    # not pair a response that precedes the end of its request (we do).
    locations = f"""
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ALL:@SECLEVEL=0;
        ssl_conf_command Ciphersuites {":".join(TLS13_SUITES)};
        ssl_session_cache shared:rgtls:1m;
        ssl_early_data on;
        location = /post {{ proxy_pass http://127.0.0.1:{plain}/posted; }}
        location = /posted {{ return 200 "posted"; }}
        location /static/ {{ alias %(root)s/static/; }}
        location / {{ return 200 "ok"; }}
    }}
    server {{
        listen 127.0.0.1:{hrr} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve prime256v1;
        location / {{ return 200 "hrr"; }}
    """  # a second server block: NginxServer closes it
    with NginxServer(locations, port=plain) as ng:
        (ng.root / "static" / "big.bin").write_bytes(os.urandom(1 << 20))
        yield TLSNginx(ng, port, hrr)


def _need(*tools: str) -> None:
    for t in tools:
        if shutil.which(t) is None:
            pytest.skip(f"{t} is not installed")


class Tcpdump:
    """tcpdump on lo writing a pcap; stopped once a marker request is in the file."""

    def __init__(self, out: Path, ports: tuple[int, ...]) -> None:
        self.out = out
        expr = " or ".join(f"tcp port {p}" for p in ports)
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "--immediate-mode", "-B", "65536", "-U", "-s", "0",
             "-w", str(out), expr],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_for(self, port: int, target: str) -> None:
        """Send plain GETs for ``target`` until one is in the file (the capture is live and
        everything sent before it is written)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "tcpdump exited"
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                while s.recv(65536):
                    pass
            if self.out.exists() and target.encode() in self.out.read_bytes():
                return
            time.sleep(0.1)  # polling the file, not synchronising on time
        pytest.fail(f"tcpdump never wrote {target}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def _curl(url_paths: list[str], port: int, keylog: Path, *args: str, data: str = "") -> None:
    urls = [f"https://localhost:{port}{p}" for p in url_paths]
    cmd = ["curl", "-sSk", "--resolve", f"localhost:{port}:127.0.0.1", "-o", "/dev/null",
           *args, *urls]  # fmt: skip
    if data:
        cmd[1:1] = ["--data-binary", data]
    env = {**os.environ, "SSLKEYLOGFILE": str(keylog)}
    subprocess.run(cmd, env=env, check=True, timeout=60)


def _python_client(port: int, keylog: Path, version: ssl.TLSVersion) -> None:
    """Keep-alive GET + 300 KB POST, then a resumed connection with one more GET."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.keylog_filename = str(keylog)
    ctx.minimum_version = ctx.maximum_version = version
    body = b"q" * 300_000
    session = None
    for requests in (
        [b"GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
         b"POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 300000\r\n\r\n" + body],
        [b"GET /py-resumed HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"],
    ):  # fmt: skip
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
            for req in requests:
                s.sendall(req)
                _read_response(s)
            if session is not None:
                assert s.session_reused
            session = s.session
            s.close()


def _read_response(s: ssl.SSLSocket) -> None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))  # fmt: skip
    while len(rest) < length:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk


def _openssl_key_update(port: int, keylog: Path) -> None:
    """Two requests on one TLS 1.3 connection with a KeyUpdate between them (s_client's
    ``k`` command)."""
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
         "-tls1_3", "-keylogfile", str(keylog)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        seen = b""

        def until(marker: bytes, count: int) -> None:
            nonlocal seen
            assert proc.stdout is not None
            deadline = time.monotonic() + 30
            while seen.count(marker) < count:
                assert time.monotonic() < deadline, seen[-300:]
                ready, _, _ = select.select([proc.stdout], [], [], 1.0)
                if ready:
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    assert chunk, seen[-300:]
                    seen += chunk

        until(b"---\n", 2)  # handshake summary printed
        proc.stdin.write(b"GET /ku-before HTTP/1.1\r\nHost: localhost\r\n\r\n")
        proc.stdin.flush()
        until(b"HTTP/1.1 200", 1)
        proc.stdin.write(b"k\n")
        proc.stdin.flush()
        until(b"KEYUPDATE", 1)
        proc.stdin.write(b"GET /ku-after HTTP/1.1\r\nHost: localhost\r\n\r\n")
        proc.stdin.flush()
        until(b"HTTP/1.1 200", 2)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


def _openssl_early_data(port: int, keylog: Path, tmp: Path) -> None:
    """A TLS 1.3 resumption carrying its first request as 0-RTT early data."""
    sess, early = tmp / "sess.pem", tmp / "early.txt"
    early.write_bytes(b"GET /early HTTP/1.1\r\nHost: localhost\r\n\r\n")
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
            "-tls1_3", "-keylogfile", str(keylog), "-ign_eof"]  # fmt: skip
    close = b"Host: localhost\r\nConnection: close\r\n\r\n"
    first = subprocess.run([*base, "-sess_out", str(sess)], input=b"GET /ed-1 HTTP/1.1\r\n" + close,
                           capture_output=True, timeout=60)  # fmt: skip
    assert b"200 OK" in first.stdout, first.stderr[-300:]
    second = subprocess.run(
        [*base, "-sess_in", str(sess), "-early_data", str(early)],
        input=b"GET /ed-2 HTTP/1.1\r\n" + close, capture_output=True, timeout=60,
    )  # fmt: skip
    out = second.stdout + second.stderr
    assert b"Early data was accepted" in out and out.count(b"200 OK") == 2, out[-500:]


def _tshark_rows(pcap: Path, keylog: Path, port: int) -> list[tuple[Any, ...]]:
    """(method, target, status, request Content-Length, response Content-Length) of every
    HTTPS request tshark decrypts, paired by ``http.response_in``."""
    base = ["tshark", "-2", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}",
            "-d", f"tcp.port=={port},tls", "-T", "fields", "-E", "separator=|"]  # fmt: skip
    env = {**os.environ, "HOME": str(pcap.parent)}
    reqs = subprocess.run(
        [*base, "-Y", f"http.request and tcp.port=={port}", "-e", "http.request.method",
         "-e", "http.request.uri", "-e", "http.content_length_header", "-e", "http.response_in"],
        capture_output=True, text=True, check=True, env=env, timeout=120,
    ).stdout.splitlines()  # fmt: skip
    resps = subprocess.run(
        [*base, "-Y", f"http.response and tcp.port=={port}", "-e", "frame.number",
         "-e", "http.response.code", "-e", "http.content_length_header"],
        capture_output=True, text=True, check=True, env=env, timeout=120,
    ).stdout.splitlines()  # fmt: skip
    by_frame = {}
    for line in resps:
        frame, code, length = line.split("|")
        by_frame[frame] = (int(code), int(length or 0))
    rows = []
    for line in reqs:
        method, uri, length, resp_in = line.split("|")
        status, resp_len = by_frame.get(resp_in, (None, None))
        rows.append((method, uri, status, int(length or 0), resp_len))
    return rows


def test_captures_decrypted_like_tshark(tmp_path: Path, tls_nginx: TLSNginx,
                                        needs_root: None) -> None:  # fmt: skip
    _need("tcpdump", "tshark", "curl", "openssl")
    keylog = tmp_path / "keys.log"
    pcap = tmp_path / "https.pcap"
    port = tls_nginx.tls_port
    dump = Tcpdump(pcap, (port, tls_nginx.plain_port, tls_nginx.hrr_port))
    try:
        dump.wait_for(tls_nginx.plain_port, "/probe-start")
        for suite in TLS13_SUITES:
            _curl(["/static/hello.txt", "/static/big.bin", f"/c13?{suite}"], port, keylog,
                  "--tlsv1.3", "--tls13-ciphers", suite)  # fmt: skip
        for suite in TLS12_SUITES:
            _curl(["/static/hello.txt", f"/c12?{suite}"], port, keylog, "--tls-max", "1.2",
                  "--ciphers", suite)  # fmt: skip
        _curl(["/post"], port, keylog, "--tls-max", "1.2", data="a=1&b=2")
        _python_client(port, keylog, ssl.TLSVersion.TLSv1_2)
        _python_client(port, keylog, ssl.TLSVersion.TLSv1_3)
        _openssl_key_update(port, keylog)
        _openssl_early_data(port, keylog, tmp_path)
        _curl(["/hrr/1", "/hrr/2"], tls_nginx.hrr_port, keylog, "--tlsv1.3",
              "--curves", "X25519:P-256")  # fmt: skip
        dump.wait_for(tls_nginx.plain_port, "/probe-end")
    finally:
        dump.stop()

    counters = Counters()
    exchanges = list(read(str(pcap), ReadOptions(counters=counters,
                                                 extra={"tls_keylog": str(keylog)})))  # fmt: skip
    https = sorted((e for e in exchanges if e.meta.get("scheme") == "https"), key=lambda e: e.ts_ns)
    ours = [(e.request.method, e.request.target, e.response.status if e.response else None,
             len(e.request.body()), len(e.response.body()) if e.response else None)
            for e in https]  # fmt: skip
    theirs = _tshark_rows(pcap, keylog, port) + _tshark_rows(pcap, keylog, tls_nginx.hrr_port)
    only_ours = sorted(map(repr, set(ours) - set(theirs)))
    only_tshark = sorted(map(repr, set(theirs) - set(ours)))
    assert sorted(map(repr, ours)) == sorted(map(repr, theirs)), (only_ours, only_tshark)
    assert all(e.complete for e in https), [sorted(map(str, e.flags)) for e in https]
    # every suite, both versions, resumption and the key update really happened
    ciphers = {e.meta["tls.cipher"] for e in https}
    assert set(TLS13_SUITES) | set(TLS12_SUITES.values()) <= ciphers
    assert {e.meta["tls.version"] for e in https} == {"TLSv1.2", "TLSv1.3"}
    # Python's resumed connections (TLS 1.2, 1.3) and the 0-RTT one (two requests)
    assert sum(e.meta.get("tls.resumed") == "1" for e in https) == 4
    assert {e.meta.get("tls.sni") for e in https} == {"localhost"}
    notes = counters.notes
    assert notes["pcap.tls_key_updates"] >= 1
    assert ("GET", "/ku-after", 200, 0, 2) in ours
    assert ("GET", "/hrr/2", 200, 0, 3) in ours
    assert ("GET", "/early", 200, 0, 2) in ours  # 0-RTT
    assert notes["pcap.tls_early_data_skipped"] == 0
    assert ("GET", "/static/big.bin", 200, 0, 1 << 20) in ours
    assert ("POST", "/post", 200, 300_000, 6) in ours
    assert not [k for k in counters.dropped if k.startswith("tls.")], dict(counters.dropped)


def _replaygate(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "replaygate", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # fmt: skip


def test_live_capture_with_a_growing_key_log_then_replay(
    tmp_path: Path, tls_nginx: TLSNginx, needs_root: None
) -> None:
    """``capture --tls-keylog`` on lo: the key log does not exist when the capture starts;
    curl creates and appends to it while the capture runs. The recording is then replayed
    to the plain-HTTP side and to the TLS side of nginx."""
    _need("curl")
    keylog = tmp_path / "live-keys.log"
    out = tmp_path / "live.gor"
    port = tls_nginx.tls_port
    cap = _replaygate("capture", "-i", "lo", "-p", str(port), "--tls-keylog", str(keylog),
                      "--max-exchanges", "4", "--duration", "120s", "-o", str(out))  # fmt: skip
    try:
        assert cap.stderr is not None
        line = cap.stderr.readline()
        assert "capturing on" in line, line
        # the capture is live (libpcap handle open); the key log is written from now on
        _curl(["/live/1", "/live/2"], port, keylog, "--tlsv1.3")
        _curl(["/live/3", "/static/hello.txt"], port, keylog, "--tls-max", "1.2",
              "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256")  # fmt: skip
        _, err = cap.communicate(timeout=120)
    finally:
        if cap.poll() is None:
            cap.send_signal(signal.SIGINT)
            cap.wait(30)
    assert cap.returncode == 0, err
    from replaygate.formats import open_reader

    got = sorted(open_reader(str(out), ReadOptions()), key=lambda e: e.ts_ns)
    assert [(e.request.target, e.response.status if e.response else None) for e in got] == [
        ("/live/1", 200), ("/live/2", 200), ("/live/3", 200), ("/static/hello.txt", 200)
    ]  # fmt: skip
    assert all(e.meta["scheme"] == "https" and e.meta["tls.sni"] == "localhost" for e in got)
    for target in (f"http://127.0.0.1:{tls_nginx.plain_port}", f"https://127.0.0.1:{port}"):
        results = tmp_path / "replayed.jsonl"
        rp = _replaygate("replay", str(out), "--target", target, "--insecure", "--max",
                         "-o", str(results), "--no-progress")  # fmt: skip
        _, err = rp.communicate(timeout=120)
        assert rp.returncode == 0, err
        replayed = list(open_reader(str(results), ReadOptions()))
        assert sorted(e.replayed.status for e in replayed if e.replayed) == [200] * 4, err
