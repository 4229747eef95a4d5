"""The masking guarantee, end to end: planted secrets never reach an output byte.

Known secrets are planted in every place a secret can sit (headers, cookies, Set-Cookie,
query, urlencoded form, multipart, JSON, JSON nested in a string, a gzip request body, a gzip
response body, a chunked body, the URL path) and pushed through the real commands with
``--mask``: convert (to .gor, .har, .jsonl), replay ``--output`` plus its reports, scan, the
recording proxy and live capture. Then every output byte (files, stdout, stderr) is searched
for every secret, raw and percent-encoded and base64-encoded, and none may be found. The
staging server of the replay must not receive any either.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import zstandard

from replaygate.formats import open_writer
from replaygate.model import Exchange, Request, Response
from replaygate.testing.servers import free_port, wait_for_port

EMAIL = "planted.victim@leaky-corp.com"
EMAIL_Q = "second.victim@leaky-corp.com"
CARD = "4539148803436467"  # Luhn-valid
PW_FORM = "Pl4ntedFormPassw0rdQ7"
PW_MULTI = "Pl4ntedMultiPassw0rdR8"
PW_JSON = "Pl4ntedJsonPassw0rdS9"
BEARER = "plantedBearerTokenValue9X3k"
QTOKEN = "qTokPlanted88ZzQuery"
COOKIE = "CookiePlanted55VvSess"
SETCOOKIE = "SetCookiePlanted66Uu"
APIKEY = "ApiKeyPlanted44HdrKey"
NESTED = "NestedPlanted77YyInner"
CHUNKED = "ChunkPlanted31TtBody"
GZ_REQ = "GzipReqPlanted42WwKey"
GZ_RESP = "GzipRespPlanted43XxTok"
AWS = "AKIAPLANTED123456789"
# the leaks of issue #13: fragments, trailers, folded Set-Cookie, broken multipart, base64,
# octet-stream, Basic credentials, raw bytes in error notes
FRAG = "FragPlanted12IdTokenAa"
LOC_FRAG = "LocFragPlanted13AccTok"
TRAILER_REQ = "TrailerReqPlanted14Key"
TRAILER_RESP = "TrailerRespPlanted15Bb"
SETCOOKIE2 = "SecondCookiePlanted16Cc"
PW_CUT = "Pl4ntedCutPassw0rdT1"
PW_BADB = "Pl4ntedBadBoundPassw0rdU2"
CARD_CUT = "4716108999716531"  # Luhn-valid
B64_PW = "Pl4ntedB64Passw0rdV3"
B64_EMAIL = "base64.victim@leaky-corp.com"
OCTET = "OctetPlanted17ApiKeyDd"
BASIC_PW = "Pl4ntedBasicPassw0rdW4"
BAD_RECORD = "BadRecordPlanted18Ee"
SECRETS = [
    EMAIL,
    EMAIL_Q,
    CARD,
    PW_FORM,
    PW_MULTI,
    PW_JSON,
    BEARER,
    QTOKEN,
    COOKIE,
    SETCOOKIE,
    APIKEY,
    NESTED,
    CHUNKED,
    GZ_REQ,
    GZ_RESP,
    AWS,
    FRAG,
    LOC_FRAG,
    TRAILER_REQ,
    TRAILER_RESP,
    SETCOOKIE2,
    PW_CUT,
    PW_BADB,
    CARD_CUT,
    B64_PW,
    B64_EMAIL,
    OCTET,
    BASIC_PW,
]
#: secrets only in the wire traffic of the proxy test (not in the recorded requests)
ONLY_IN_RESPONSES = (LOC_FRAG, TRAILER_RESP, SETCOOKIE2)
KEY_ENV = {"REPLAYGATE_MASK_KEY": "no-leaks-test-key"}


def _forms(secret: str) -> set[bytes]:
    """The secret as it may appear encoded: raw, percent-encoded, base64 at any alignment."""
    s = secret.encode()
    out = {s, quote(secret, safe="").encode(), quote_plus(secret).encode()}
    for pad in range(3):
        enc = base64.b64encode(b"\x00" * pad + s)
        core = enc[4 if pad else 0 : -4]  # drop the chars that depend on neighbours
        out.add(core)
        out.add(core.replace(b"+", b"-").replace(b"/", b"_"))
    return out


def assert_no_leak(where: str, data: bytes) -> None:
    for secret in SECRETS:
        for form in _forms(secret):
            assert form not in data, f"{secret!r} leaked into {where} (as {form!r})"


def _head(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def planted_requests(host: str) -> list[bytes]:
    """Raw requests with secrets in every place (valid HTTP/1.1, Connection: close)."""
    boundary = "rgPlantedBoundary"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="user"\r\n\r\nann\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="password"\r\n\r\n{PW_MULTI}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    json_body = json.dumps(
        {
            "password": PW_JSON,
            "profile": {"email": EMAIL, "cards": [{"number": CARD}]},
            "payload": json.dumps({"secret": NESTED, "n": 1}),
        }
    ).encode()
    chunk = json.dumps({"token": CHUNKED}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    gz = gzip.compress(json.dumps({"api_key": GZ_REQ}).encode())
    form = f"user=ann&password={quote_plus(PW_FORM)}".encode()
    h = f"Host: {host}"
    cut = (  # no closing delimiter
        f'--{boundary}\r\nContent-Disposition: form-data; name="password"\r\n\r\n{PW_CUT}'
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\ncard {CARD_CUT}'
    ).encode()
    badb = (  # the Content-Type says another boundary
        f'--otherBoundary\r\nContent-Disposition: form-data; name="password"\r\n\r\n'
        f"{PW_BADB}\r\n--otherBoundary--\r\n"
    ).encode()
    blob = base64.b64encode(json.dumps({"password": B64_PW, "email": B64_EMAIL}).encode())
    b64_body = json.dumps({"blob": blob.decode(), "n": 1}).encode()
    octet = f"api_key={OCTET}\nuser=ann\n".encode()
    tr_chunk = b'{"n": 1}'
    trailer_body = b"%x\r\n%s\r\n0\r\nX-Api-Key: %s\r\n\r\n" % (
        len(tr_chunk),
        tr_chunk,
        TRAILER_REQ.encode(),
    )
    basic = base64.b64encode(f"ann:{BASIC_PW}".encode()).decode()
    return [
        _head(
            [
                f"GET /users/{EMAIL}/cards/{CARD}?access_token={QTOKEN}&email={quote(EMAIL_Q)} HTTP/1.1",
                h,
                f"Authorization: Bearer {BEARER}",
                f"Cookie: theme=dark; sid={COOKIE}",
                f"X-Api-Key: {APIKEY}",
                "Connection: close",
            ]
        ),
        _head(
            [
                "POST /login HTTP/1.1",
                h,
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(form)}",
                "Connection: close",
            ]
        )
        + form,
        _head(
            [
                "POST /upload HTTP/1.1",
                h,
                f"Content-Type: multipart/form-data; boundary={boundary}",
                f"Content-Length: {len(multipart)}",
                "Connection: close",
            ]
        )
        + multipart,
        _head(
            [
                "POST /api/profile HTTP/1.1",
                h,
                "Content-Type: application/json",
                f"Content-Length: {len(json_body)}",
                "Connection: close",
            ]
        )
        + json_body,
        _head(
            [
                "POST /api/chunked HTTP/1.1",
                h,
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
                "Connection: close",
            ]
        )
        + chunked,
        _head(
            [
                "POST /api/gzip HTTP/1.1",
                h,
                "Content-Type: application/json",
                "Content-Encoding: gzip",
                f"Content-Length: {len(gz)}",
                "Connection: close",
            ]
        )
        + gz,
        _head(
            [
                f"GET /oauth/cb?state=xyz#id_token={FRAG}&token_type=bearer HTTP/1.1",
                h,
                f"Authorization: Basic {basic}",
                "Connection: close",
            ]
        ),
        _head(
            [
                "POST /api/trailers HTTP/1.1",
                h,
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
                "Trailer: X-Api-Key",
                "Connection: close",
            ]
        )
        + trailer_body,
        _head(
            [
                "POST /upload/cut HTTP/1.1",
                h,
                f"Content-Type: multipart/form-data; boundary={boundary}",
                f"Content-Length: {len(cut)}",
                "Connection: close",
            ]
        )
        + cut,
        _head(
            [
                "POST /upload/bad HTTP/1.1",
                h,
                f"Content-Type: multipart/form-data; boundary={boundary}",
                f"Content-Length: {len(badb)}",
                "Connection: close",
            ]
        )
        + badb,
        _head(
            [
                "POST /api/blob HTTP/1.1",
                h,
                "Content-Type: application/json",
                f"Content-Length: {len(b64_body)}",
                "Connection: close",
            ]
        )
        + b64_body,
        _head(
            [
                "POST /api/octet HTTP/1.1",
                h,
                "Content-Type: application/octet-stream",
                f"Content-Length: {len(octet)}",
                "Connection: close",
            ]
        )
        + octet,
    ]


class _Prod(BaseHTTPRequestHandler):
    """'Production' and 'staging': issues secret cookies, gzip and chunked secret bodies,
    and echoes what it received (so a leak in the request shows up in the response too)."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailer fields
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self) -> None:
        body = self._read_body()
        received = self.requestline.encode() + b"\r\n" + bytes(self.headers) + body
        with self.server.lock:
            self.server.received.append(received)
        echo = base64.b64encode(received)  # even base64-echoed secrets are searched for
        if self.path.startswith("/oauth/"):
            self.send_response(302)
            self.send_header(
                "Location", f"https://app.example.test/done#access_token={LOC_FRAG}&x=1"
            )
        else:
            self.send_response(200)
        self.send_header("Set-Cookie", f"session={SETCOOKIE}; Path=/; HttpOnly")
        self.send_header("Set-Cookie", f"lang=en; Path=/, refresh={SETCOOKIE2}; Path=/; Secure")
        self.send_header("Connection", "close")
        if self.path.startswith("/api/trailers"):
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "Authorization")
            self.end_headers()
            self.wfile.write(
                b"2\r\nok\r\n0\r\nAuthorization: Bearer %s\r\n\r\n" % TRAILER_RESP.encode()
            )
            return
        if self.path.startswith("/api/chunked"):
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            text = f"key {AWS} mail {EMAIL}\n".encode() + received
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(text), text))
            return
        if self.path.startswith("/api/gzip"):
            data = gzip.compress(
                json.dumps({"refresh_token": GZ_RESP, "echo": echo.decode()}).encode()
            )
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
        else:
            data = json.dumps({"email": EMAIL, "echo": received.decode("latin-1")}).encode()
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _handle
    do_POST = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Prod)
        self.received: list[bytes] = []
        self.lock = threading.Lock()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    try:
        yield s
    finally:
        s.shutdown()
        s.server_close()
        t.join(5)


def _send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(raw)
        out = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return out
            out += chunk


def _exchanges(port: int) -> list[Exchange]:
    """Record the planted requests against the real app (exact bytes both ways)."""
    out = []
    for i, raw in enumerate(planted_requests("shop.example.test")):
        resp = _send(port, raw)
        out.append(
            Exchange(
                id=f"{i:040x}",
                request=Request(raw, ts_first_ns=1_700_000_000_000_000_000 + i),
                response=Response(resp, ts_first_ns=1_700_000_000_100_000_000 + i),
            )
        )
    return out


def _rg(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **KEY_ENV}
    return subprocess.run(
        [sys.executable, "-m", "replaygate", *args],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def _check_dir(d: Path) -> int:
    n = 0
    for p in sorted(d.rglob("*")):
        if p.is_file():
            assert_no_leak(str(p.name), p.read_bytes())
            n += 1
    return n


@pytest.fixture
def planted(server: _Server, tmp_path: Path) -> Path:
    exchanges = _exchanges(server.server_address[1])
    raw = tmp_path / "raw"
    raw.mkdir()
    path = raw / "planted.gor"
    w = open_writer(path)
    for ex in exchanges:
        w.write(ex)
    w.close()
    data = path.read_bytes()
    for s in SECRETS:  # the test is only meaningful if every secret is really planted
        assert any(f in data for f in _forms(s)) or s in (GZ_REQ, GZ_RESP), s
    server.received.clear()
    return path


def test_planted_secrets_are_detectable(planted: Path, tmp_path: Path) -> None:
    r = _rg("scan", "--json", str(planted), cwd=tmp_path)
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["unmasked"] >= len(SECRETS)
    assert_no_leak("scan stdout", r.stdout)
    assert_no_leak("scan stderr", r.stderr)
    r = _rg("scan", str(planted), cwd=tmp_path)
    assert_no_leak("scan text", r.stdout + r.stderr)


@pytest.mark.parametrize("ext", [".gor", ".har", ".jsonl", ".gor.gz", ".jsonl.gz", ".gor.zst"])
def test_convert_with_mask_leaks_nothing(planted: Path, tmp_path: Path, ext: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    r = _rg("convert", str(planted), str(out / f"masked{ext}"), "--mask", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert_no_leak("convert stdout/stderr", r.stdout + r.stderr)
    data = (out / f"masked{ext}").read_bytes()
    if ext.endswith(".gz"):
        data = gzip.decompress(data)
    if ext.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    assert_no_leak(f"masked{ext}", data)
    assert len(data) > 1000
    # and the masked file scans clean
    r = _rg("scan", str(out / f"masked{ext}"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    assert_no_leak("scan of masked", r.stdout + r.stderr)


def test_replay_with_mask_leaks_nothing(planted: Path, server: _Server, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    port = server.server_address[1]
    r = _rg(
        "replay",
        str(planted),
        "--target",
        f"http://127.0.0.1:{port}",
        "--max",
        "--mask",
        "--output",
        str(out / "replayed.gor"),
        "--report",
        str(out / "reports"),
        cwd=tmp_path,
    )
    assert r.returncode in (0, 1), r.stderr  # 1 = the gate failed: responses differ
    assert_no_leak("replay stdout/stderr", r.stdout + r.stderr)
    assert _check_dir(out) >= 2
    assert len(server.received) == len(planted_requests("x"))
    for got in server.received:  # staging itself never saw a raw secret
        assert_no_leak("what staging received", got)


def test_proxy_with_mask_leaks_nothing(server: _Server, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    listen = free_port()
    env = {**os.environ, **KEY_ENV}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "replaygate",
            "proxy",
            "--listen",
            f"127.0.0.1:{listen}",
            "--upstream",
            f"http://127.0.0.1:{server.server_address[1]}",
            "-o",
            str(out / "proxied.gor"),
            "--mask",
            "--duration",
            "60s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_for_port("127.0.0.1", listen, timeout=20)
        for raw in planted_requests(f"127.0.0.1:{listen}"):
            assert _send(listen, raw).startswith((b"HTTP/1.1 200", b"HTTP/1.1 302"))
        proc.send_signal(signal.SIGINT)  # a clean stop: flush the recording and exit
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert_no_leak("proxy stdout/stderr", stdout + stderr)
    data = (out / "proxied.gor").read_bytes()
    assert data.count(b"\n1 ") + data.startswith(b"1 ") >= 6
    for s in ONLY_IN_RESPONSES:  # the wire had them: the test is meaningful
        assert s.encode() not in data
    i = data.find(b"Location:")
    assert b"/done#access_token=" in data, data[i : i + 120].decode()
    assert_no_leak("proxied.gor", data)
    r = _rg("scan", str(out / "proxied.gor"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    assert_no_leak("scan of proxied", r.stdout + r.stderr)


def test_unmasked_recording_of_the_new_cases_is_reported(planted: Path, tmp_path: Path) -> None:
    """Every planted place is a finding for scan (before masking): nothing is skipped."""
    r = _rg("scan", "--json", str(planted), cwd=tmp_path)
    assert r.returncode == 1
    locs = {f["location"] for f in json.loads(r.stdout)["findings"] if not f["masked"]}
    for want in (
        "request.fragment:id_token",
        "request.trailer.header:X-Api-Key",
        "response.trailer.header:Authorization",
        "request.body",
        "response.header:",  # Location (its fragment)
    ):
        assert any(loc.startswith(want) for loc in locs), (want, sorted(locs))


def test_error_notes_never_print_record_bytes(planted: Path, tmp_path: Path) -> None:
    """A damaged record (request bytes where a record header should be) is skipped with a
    note that says where and how long, never what it held."""
    damaged = tmp_path / "damaged.gor"
    bad = f"Authorization: Bearer {BAD_RECORD}\nGET /x HTTP/1.1\r\n\r\n".encode()
    damaged.write_bytes(planted.read_bytes() + bad + "\n🐵🙈🙉\n".encode())
    out = tmp_path / "out.gor"
    r = _rg("convert", "-v", str(damaged), str(out), "--mask", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"offset" in r.stderr and b"skipped" in r.stderr, r.stderr
    assert BAD_RECORD.encode() not in r.stderr + r.stdout + out.read_bytes()
    assert_no_leak("convert -v stderr", r.stdout + r.stderr)


def test_capture_with_mask_leaks_nothing(server: _Server, tmp_path: Path, needs_root: None) -> None:
    out = tmp_path / "out"
    out.mkdir()
    port = server.server_address[1]
    env = {**os.environ, **KEY_ENV}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "replaygate",
            "capture",
            "-i",
            "lo",
            "-p",
            str(port),
            "-o",
            str(out / "captured.gor"),
            "--mask",
            "--duration",
            "60s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    early = b""
    try:
        assert proc.stderr is not None
        while b"capturing on" not in early:  # printed once the capture socket is open
            line = proc.stderr.readline()
            if not line:
                break
            early += line
        for raw in planted_requests(f"127.0.0.1:{port}"):
            _send(port, raw)
        # the recorder flushes when idle: wait until the requests are in the file
        captured = out / "captured.gor"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if captured.exists() and captured.read_bytes().count(b"POST /") >= 5:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        stderr = early + stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if proc.returncode == 2 and b"capture" in stderr.lower():
        pytest.skip(f"live capture unavailable: {stderr.decode(errors='replace').strip()}")
    assert proc.returncode == 0, stderr
    assert_no_leak("capture stdout/stderr", stdout + stderr)
    data = (out / "captured.gor").read_bytes()
    assert data.count(b"POST /") >= 5, data[:300]
    assert_no_leak("captured.gor", data)
