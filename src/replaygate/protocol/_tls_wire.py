"""Reading TLS bytes without state: does a stream start like TLS, what a version is called,
and a bounds-checked reader for handshake messages and their extensions (a short message
raises :class:`_Bad`). Used by :mod:`replaygate.protocol.tls`.
"""

from __future__ import annotations

__all__ = ["looks_like_tls", "version_name"]


def looks_like_tls(data: bytes, from_client: bool = True) -> bool:
    """Do these first bytes of a stream look like a TLS record (or, from the client, an
    SSLv2-format ClientHello)?"""
    if len(data) >= 3 and 20 <= data[0] <= 23 and data[1] == 3 and data[2] <= 4:
        return True
    if data[:1] == b"\x16" and len(data) < 3:  # a handshake record cut after 1-2 bytes
        return len(data) < 2 or data[1] == 3
    return from_client and len(data) >= 5 and data[0] & 0x80 != 0 and data[2] == 1


def version_name(v: int) -> str:
    if v == 0x0300:
        return "SSLv3"
    if 0x0301 <= v <= 0x0304:
        return f"TLSv1.{v - 0x0301}"
    if v >> 8 == 0x7F:
        return f"TLSv1.3-draft{v & 0xFF}"
    return f"0x{v:04x}"


class _Bad(Exception):
    """A handshake message that does not parse."""


class _Reader:
    __slots__ = ("b", "p")

    def __init__(self, b: bytes) -> None:
        self.b = b
        self.p = 0

    def take(self, n: int) -> bytes:
        if self.p + n > len(self.b):
            raise _Bad("short")
        self.p += n
        return self.b[self.p - n : self.p]

    def num(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vec(self, n: int) -> bytes:
        return self.take(self.num(n))

    def rest(self) -> int:
        return len(self.b) - self.p


def _extensions(r: _Reader) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    if r.rest() < 2:
        return out
    er = _Reader(r.vec(2))
    while er.rest() >= 4:
        t = er.num(2)
        out[t] = er.vec(2)
    return out


def _alpn_list(data: bytes) -> list[str]:
    r = _Reader(data)
    lr = _Reader(r.vec(2))
    out = []
    while lr.rest():
        out.append(lr.vec(1).decode("ascii", "replace"))
    return out
