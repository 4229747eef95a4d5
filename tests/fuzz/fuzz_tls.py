"""Fuzz targets for HTTPS decryption: the TLS record/handshake layer fed scripted streams
(real TLS 1.2 and 1.3 conversations as seeds, with their keys known, so mutations reach the
decryption and handshake code), the NSS key log parser, and pcapng files with Decryption
Secrets Blocks through the whole reader. Each may raise only ReplaygateError."""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import struct
import tempfile
from collections.abc import Callable

from replaygate.formats import ReadOptions
from replaygate.pipeline import Counters
from replaygate.protocol.keylog import KeyLog
from replaygate.protocol.tcp import DATA, EOF, GAP
from replaygate.protocol.tls import TLSConfig, TLSConnection, TLSStats

from ..protocol.tlsconv import converse, pcap_bytes, segments

__all__ = ["SEEDS", "TARGETS"]

_TMP = tempfile.mkdtemp(prefix="rg-fuzz-tls-")
atexit.register(shutil.rmtree, _TMP, True)

_REQ = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _seed_conversations() -> tuple[list[list[tuple[bool, bytes]]], bytes]:
    keylog = os.path.join(_TMP, "seed-keys.log")
    convs = []
    for version, ciphers in (
        (ssl.TLSVersion.TLSv1_3, None),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256"),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-SHA"),
    ):
        conv, _ = converse([(_REQ, _RESP)], keylog, version=version, ciphers=ciphers)
        convs.append(conv.flights)
    with open(keylog, "rb") as f:
        return convs, f.read()


_CONVS, _KEYLOG = _seed_conversations()
_KEYS = KeyLog()
_KEYS.feed(_KEYLOG)


def _script(flights: list[tuple[bool, bytes]]) -> bytes:
    """A stream script: per step a header byte (bit 0 client, bits 1-2: data/gap/eof) and a
    2-byte length, then the data."""
    return b"".join(struct.pack(">BH", int(c), len(d)) + d for c, d in flights)


def tls_stream(data: bytes) -> None:
    """Scripted bytes of both directions into one TLSConnection with the seeds' keys."""
    conn = TLSConnection(TLSConfig(_KEYS, max_held_bytes=1 << 16), TLSStats())
    pos = 0
    ts = 0
    while pos + 3 <= len(data):
        head, n = struct.unpack_from(">BH", data, pos)
        pos += 3
        chunk = data[pos : pos + n]
        pos += n
        ts += 1_000_000
        kind = (head >> 1) & 3
        if kind == 1:
            conn.feed(bool(head & 1), [(GAP, max(n, 1))], ts)
        elif kind == 2:
            conn.feed(bool(head & 1), [(EOF, 0)], ts)
        else:
            conn.feed(bool(head & 1), [(DATA, chunk)], ts)
    conn.retry(ts + 20_000_000_000)
    conn.close()


def keylog(data: bytes) -> None:
    k = KeyLog()
    k.feed(data)
    k.end()


def pcap_tls(data: bytes) -> None:
    """A capture file (pcapng with a DSB in the seeds) through the whole reader."""
    from replaygate.formats.pcap import read

    path = os.path.join(_TMP, f"f{os.getpid()}.pcapng")
    with open(path, "wb") as f:
        f.write(data)
    for ex in read(path, ReadOptions(counters=Counters())):
        ex.summary()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "tls_stream": tls_stream,
    "tls_keylog": keylog,
    "tls_pcap_dsb": pcap_tls,
}
SEEDS: dict[str, list[bytes]] = {
    "tls_stream": [_script(c) for c in _CONVS],
    "tls_keylog": [_KEYLOG],
    "tls_pcap_dsb": [pcap_bytes(segments(c), _KEYLOG) for c in _CONVS[:2]],
}
