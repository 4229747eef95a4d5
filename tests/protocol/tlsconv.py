"""Real TLS conversations made in memory (Python ``ssl`` over ``MemoryBIO``), for tests.

:func:`converse` runs a client and a server handshake and HTTP/1 exchanges through memory
BIOs, records every flight of bytes in order with its direction, and writes the client's
NSS key log (``keylog_filename``), exactly as a capture of a real connection would see it.
:func:`segments` turns the flights into TCP segments (SYN handshake, data, FINs) for the
traffic assembler.
"""

from __future__ import annotations

import datetime
import ssl
import struct
import tempfile
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from replaygate.protocol.segment import ACK, FIN, PSH, SYN, TcpSegment

__all__ = ["Conversation", "cert_files", "converse", "pcap_bytes", "segments"]


@cache
def cert_files() -> tuple[str, str]:
    """A self-signed RSA certificate for ``localhost`` (made once per test session)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    d = Path(tempfile.mkdtemp(prefix="rg-tls-"))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return str(d / "cert.pem"), str(d / "key.pem")


@dataclass
class Conversation:
    flights: list[tuple[bool, bytes]] = field(default_factory=list)  # (from_client, bytes)
    session: ssl.SSLSession | None = None
    cipher: str = ""
    version: str = ""
    session_reused: bool = False


def _contexts(
    version: ssl.TLSVersion, ciphers: str | None, keylog: str, etm: bool, alpn: list[str] | None
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = cert_files()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.keylog_filename = keylog
    for ctx in (server, client):
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: tested on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = version
            ctx.maximum_version = version
        if ciphers:
            ctx.set_ciphers(ciphers)
        if not etm:
            ctx.options |= 1 << 19  # SSL_OP_NO_ENCRYPT_THEN_MAC
    if alpn:
        server.set_alpn_protocols(alpn)
        client.set_alpn_protocols(alpn)
    return client, server


def converse(
    exchanges: list[tuple[bytes, bytes]],
    keylog: str,
    *,
    version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    ciphers: str | None = None,
    etm: bool = True,
    alpn: list[str] | None = None,
    session: ssl.SSLSession | None = None,
    contexts: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
    sni: str = "shop.test",
) -> tuple[Conversation, tuple[ssl.SSLContext, ssl.SSLContext]]:
    """Handshake, then each (request, response) written by client and server in turn."""
    client_ctx, server_ctx = contexts or _contexts(version, ciphers, keylog, etm, alpn)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni, session=session)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    conv = Conversation()

    def pump() -> bool:
        moved = False
        out = c_out.read()
        if out:
            conv.flights.append((True, out))
            s_in.write(out)
            moved = True
        out = s_out.read()
        if out:
            conv.flights.append((False, out))
            c_in.write(out)
            moved = True
        return moved

    def step(obj: ssl.SSLObject) -> None:
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass

    for _ in range(20):
        step(client)
        step(server)
        pump()
        if _done(client) and _done(server):
            break
    for request, response in exchanges:
        client.write(request)
        pump()
        got = _read(server, len(request), pump)
        assert got == request, (got[:80], request[:80])
        server.write(response)
        pump()
        got = _read(client, len(response), pump)
        assert got == response
    conv.session = client.session
    conv.cipher = (client.cipher() or ("",))[0]
    conv.version = client.version() or ""
    conv.session_reused = client.session_reused
    return conv, (client_ctx, server_ctx)


def _done(obj: ssl.SSLObject) -> bool:
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        return False
    return True


def _read(obj: ssl.SSLObject, n: int, pump: object) -> bytes:
    data = b""
    for _ in range(10_000):
        if len(data) >= n:
            break
        try:
            data += obj.read(n - len(data))
        except ssl.SSLWantReadError:
            assert callable(pump)
            if not pump():
                break
    return data


def segments(
    flights: list[tuple[bool, bytes]],
    *,
    client: tuple[str, int] = ("10.0.0.1", 40000),
    server: tuple[str, int] = ("10.0.0.2", 443),
    ts0: int = 1_700_000_000_000_000_000,
    mss: int = 1400,
    syn: bool = True,
    fin: bool = True,
) -> list[TcpSegment]:
    """The flights as TCP segments of at most ``mss`` bytes, 1 ms apart."""
    out: list[TcpSegment] = []
    cseq, sseq = 1000, 5000
    ts = ts0

    def seg(from_client: bool, flags: int, payload: bytes = b"") -> None:
        nonlocal ts
        ts += 1_000_000
        if from_client:
            out.append(TcpSegment(ts, *client, *server, cseq, sseq, flags, payload))
        else:
            out.append(TcpSegment(ts, *server, *client, sseq, cseq, flags, payload))

    if syn:
        seg(True, SYN)
        cseq += 1
        seg(False, SYN | ACK)
        sseq += 1
        seg(True, ACK)
    for from_client, data in flights:
        for i in range(0, len(data), mss):
            piece = data[i : i + mss]
            seg(from_client, ACK | PSH, piece)
            if from_client:
                cseq += len(piece)
            else:
                sseq += len(piece)
    if fin:
        seg(True, FIN | ACK)
        cseq += 1
        seg(False, FIN | ACK)
        sseq += 1
        seg(True, ACK)
    return out


def pcap_bytes(segs: list[TcpSegment], secrets: bytes | None = None) -> bytes:
    """The segments as a capture file: classic pcap, or pcapng with ``secrets`` (an NSS key
    log) in a Decryption Secrets Block before the packets, as ``editcap --inject-secrets``
    writes it."""
    from replaygate.testing.frames import build_tcp_frame

    frames = [
        (s.ts_ns, build_tcp_frame(src=s.src, dst=s.dst, sport=s.sport, dport=s.dport, seq=s.seq,
                                  ack=s.ack, flags=s.flags, payload=s.payload))
        for s in segs
    ]  # fmt: skip
    if secrets is None:
        out = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
        for ts, f in frames:
            out += struct.pack("<IIII", ts // 10**9, ts % 10**9, len(f), len(f)) + f
        return out

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * ((-len(body)) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHB3x", 9, 1, 9) + b"\0" * 4)
    out += block(10, struct.pack("<II", 0x544C534B, len(secrets)) + secrets)
    for ts, f in frames:
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f)
    return out
