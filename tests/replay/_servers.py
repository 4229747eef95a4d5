"""Small misbehaving HTTP servers on 127.0.0.1 for replay tests (threads, stdlib only).

``TestServer`` answers by path: ``/reset`` (RST), ``/slow?ms=N``, ``/chunked``, ``/close``
(close-delimited body), ``/continue`` (100 then 200), ``/redirect?to=URL&code=N``,
``/echo`` (the raw request bytes as the body), ``/garbage`` (not HTTP), ``/hang`` (never
answers), ``/ka-then-close`` (answers, then drops the keep-alive connection), ``/conn`` (the
server's connection number), anything else 200 "ok". Every request is recorded with its connection number and
arrival order, so tests can check what went over which connection.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    conn: int
    order: int
    method: str
    target: str
    raw: bytes


class TestServer:
    __test__ = False

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.tls = tls
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._n = 0
        self._accept = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> TestServer:
        self._accept.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._accept.join()
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except OSError:
                    pass
        for t in self._threads:
            t.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._n += 1
                n = self._n
            t = threading.Thread(target=self._handle, args=(c, n), daemon=True)
            self._threads.append(t)
            t.start()

    def _handle(self, c: socket.socket, n: int) -> None:
        if self.tls is not None:
            try:
                c.settimeout(5)
                c = self.tls.wrap_socket(c, server_side=True)
            except (ssl.SSLError, OSError):
                c.close()
                return
        with self._lock:
            self._conns.append(c)
        c.settimeout(0.2)
        buf = b""
        try:
            while not self._stop.is_set():
                try:
                    data = c.recv(65536)
                except TimeoutError:
                    continue
                except (OSError, ssl.SSLError):
                    return
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            length = int(v.strip())
                    if len(rest) < length:
                        break
                    raw = head + b"\r\n\r\n" + rest[:length]
                    buf = rest[length:]
                    if not self._respond(c, n, raw):
                        return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _respond(self, c: socket.socket, n: int, raw: bytes) -> bool:
        line = raw.split(b"\r\n", 1)[0].decode("latin-1")
        method, target = line.split(" ")[:2]
        with self._lock:
            self.seen.append(Seen(n, len(self.seen), method, target, raw))
        u = urlsplit(target)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        path = u.path
        if path == "/reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if path == "/hang":
            time.sleep(float(q.get("s", "3")))
            return False
        if path == "/garbage":
            c.sendall(b"this is not http\r\n\r\n")
            return False
        if path == "/slow":
            time.sleep(int(q.get("ms", "100")) / 1000)
        if path == "/chunked":
            c.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
            return True
        if path == "/close":
            c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            return False
        if path == "/ka-then-close":
            # keep-alive promised, then the server drops the connection (idle timeout race):
            # a request already sent on it meets a reset
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.1)
            return False
        if path == "/continue":
            c.sendall(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"
            )
            return True
        if path == "/redirect":
            code = q.get("code", "302")
            loc = q.get("to", "/")
            c.sendall(
                f"HTTP/1.1 {code} Moved\r\nLocation: {loc}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            return True
        if path == "/echo":
            body = raw
        elif path == "/conn":
            body = str(n).encode()
        else:
            body = b"ok"
        if method == "HEAD":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        return True


def self_signed(tmp: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1/localhost and its key, written under ``tmp``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(tmp, "cert.pem")
    key_path = os.path.join(tmp, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def tls_context(tmp: str | None = None) -> tuple[ssl.SSLContext, str]:
    d = tmp or tempfile.mkdtemp(prefix="rg-tls-")
    cert, key = self_signed(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx, cert
