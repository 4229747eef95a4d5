"""TLS cipher suites, key schedules and record decryption (the cryptography half of
:mod:`replaygate.protocol.tls`).

AEAD, CBC and HKDF primitives come from ``cryptography``; the PRF and HKDF-Expand-Label are a
few lines of ``hmac`` over ``hashlib``. Every cipher object here decrypts one direction of one
connection and keeps that direction's record sequence number; a record that does not
authenticate raises :class:`DecryptError` (wrong key, or bytes that are not the record).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

__all__ = [
    "SUITES",
    "Cbc",
    "DecryptError",
    "RecordCipher",
    "Suite",
    "Tls12Aead",
    "Tls13Aead",
    "hkdf_expand_label",
    "tls12_key_block",
    "tls13_cipher",
    "tls13_next_secret",
]

_SEQ = struct.Struct(">Q")
_HDR = struct.Struct(">BHH")


class DecryptError(Exception):
    """A record did not decrypt or authenticate."""


@dataclass(frozen=True, slots=True)
class Suite:
    """What a cipher suite means for decryption.

    ``cipher``: ``gcm``, ``ccm``, ``ccm8``, ``chacha`` or ``cbc``; ``mac``: the HMAC hash of
    CBC suites; ``hash``: the PRF (TLS 1.2) or HKDF (TLS 1.3) hash."""

    id: int
    name: str
    cipher: str
    key_len: int
    hash: str = "sha256"
    mac: str = ""
    tls13: bool = False


def _suites() -> dict[int, Suite]:
    s: list[Suite] = [
        Suite(0x1301, "TLS_AES_128_GCM_SHA256", "gcm", 16, tls13=True),
        Suite(0x1302, "TLS_AES_256_GCM_SHA384", "gcm", 32, "sha384", tls13=True),
        Suite(0x1303, "TLS_CHACHA20_POLY1305_SHA256", "chacha", 32, tls13=True),
        Suite(0x1304, "TLS_AES_128_CCM_SHA256", "ccm", 16, tls13=True),
        Suite(0x1305, "TLS_AES_128_CCM_8_SHA256", "ccm8", 16, tls13=True),
    ]
    gcm = {
        0x009C: "RSA_WITH_AES_128_GCM_SHA256",
        0x009D: "RSA_WITH_AES_256_GCM_SHA384",
        0x009E: "DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009F: "DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x00A2: "DHE_DSS_WITH_AES_128_GCM_SHA256",
        0x00A3: "DHE_DSS_WITH_AES_256_GCM_SHA384",
        0x00A8: "PSK_WITH_AES_128_GCM_SHA256",
        0x00A9: "PSK_WITH_AES_256_GCM_SHA384",
        0x00AA: "DHE_PSK_WITH_AES_128_GCM_SHA256",
        0x00AB: "DHE_PSK_WITH_AES_256_GCM_SHA384",
        0x00AC: "RSA_PSK_WITH_AES_128_GCM_SHA256",
        0x00AD: "RSA_PSK_WITH_AES_256_GCM_SHA384",
        0xC02B: "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xC02C: "ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xC02D: "ECDH_ECDSA_WITH_AES_128_GCM_SHA256",
        0xC02E: "ECDH_ECDSA_WITH_AES_256_GCM_SHA384",
        0xC02F: "ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xC030: "ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xC031: "ECDH_RSA_WITH_AES_128_GCM_SHA256",
        0xC032: "ECDH_RSA_WITH_AES_256_GCM_SHA384",
        0xD001: "ECDHE_PSK_WITH_AES_128_GCM_SHA256",
        0xD002: "ECDHE_PSK_WITH_AES_256_GCM_SHA384",
    }
    for sid, name in gcm.items():
        big = "AES_256" in name
        s.append(Suite(sid, "TLS_" + name, "gcm", 32 if big else 16, _hash_of(name)))
    chacha = {
        0xCCA8: "ECDHE_RSA",
        0xCCA9: "ECDHE_ECDSA",
        0xCCAA: "DHE_RSA",
        0xCCAB: "PSK",
        0xCCAC: "ECDHE_PSK",
        0xCCAD: "DHE_PSK",
        0xCCAE: "RSA_PSK",
    }
    for sid, kx in chacha.items():
        s.append(Suite(sid, f"TLS_{kx}_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32))
    ccm = {
        0xC09C: "RSA_WITH_AES_128_CCM",
        0xC09D: "RSA_WITH_AES_256_CCM",
        0xC09E: "DHE_RSA_WITH_AES_128_CCM",
        0xC09F: "DHE_RSA_WITH_AES_256_CCM",
        0xC0A0: "RSA_WITH_AES_128_CCM_8",
        0xC0A1: "RSA_WITH_AES_256_CCM_8",
        0xC0A2: "DHE_RSA_WITH_AES_128_CCM_8",
        0xC0A3: "DHE_RSA_WITH_AES_256_CCM_8",
        0xC0A4: "PSK_WITH_AES_128_CCM",
        0xC0A5: "PSK_WITH_AES_256_CCM",
        0xC0A6: "DHE_PSK_WITH_AES_128_CCM",
        0xC0A7: "DHE_PSK_WITH_AES_256_CCM",
        0xC0A8: "PSK_WITH_AES_128_CCM_8",
        0xC0A9: "PSK_WITH_AES_256_CCM_8",
        0xC0AA: "PSK_DHE_WITH_AES_128_CCM_8",
        0xC0AB: "PSK_DHE_WITH_AES_256_CCM_8",
        0xC0AC: "ECDHE_ECDSA_WITH_AES_128_CCM",
        0xC0AD: "ECDHE_ECDSA_WITH_AES_256_CCM",
        0xC0AE: "ECDHE_ECDSA_WITH_AES_128_CCM_8",
        0xC0AF: "ECDHE_ECDSA_WITH_AES_256_CCM_8",
    }
    for sid, name in ccm.items():
        kind = "ccm8" if name.endswith("_8") else "ccm"
        s.append(Suite(sid, "TLS_" + name, kind, 32 if "AES_256" in name else 16))
    cbc = {
        0x002F: "RSA_WITH_AES_128_CBC_SHA",
        0x0035: "RSA_WITH_AES_256_CBC_SHA",
        0x003C: "RSA_WITH_AES_128_CBC_SHA256",
        0x003D: "RSA_WITH_AES_256_CBC_SHA256",
        0x0030: "DH_DSS_WITH_AES_128_CBC_SHA",
        0x0031: "DH_RSA_WITH_AES_128_CBC_SHA",
        0x0032: "DHE_DSS_WITH_AES_128_CBC_SHA",
        0x0033: "DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0034: "DH_anon_WITH_AES_128_CBC_SHA",
        0x0036: "DH_DSS_WITH_AES_256_CBC_SHA",
        0x0037: "DH_RSA_WITH_AES_256_CBC_SHA",
        0x0038: "DHE_DSS_WITH_AES_256_CBC_SHA",
        0x0039: "DHE_RSA_WITH_AES_256_CBC_SHA",
        0x003A: "DH_anon_WITH_AES_256_CBC_SHA",
        0x0040: "DHE_DSS_WITH_AES_128_CBC_SHA256",
        0x0067: "DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x006A: "DHE_DSS_WITH_AES_256_CBC_SHA256",
        0x006B: "DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x008C: "PSK_WITH_AES_128_CBC_SHA",
        0x008D: "PSK_WITH_AES_256_CBC_SHA",
        0x0090: "DHE_PSK_WITH_AES_128_CBC_SHA",
        0x0091: "DHE_PSK_WITH_AES_256_CBC_SHA",
        0x0094: "RSA_PSK_WITH_AES_128_CBC_SHA",
        0x0095: "RSA_PSK_WITH_AES_256_CBC_SHA",
        0x00AE: "PSK_WITH_AES_128_CBC_SHA256",
        0x00AF: "PSK_WITH_AES_256_CBC_SHA384",
        0x00B2: "DHE_PSK_WITH_AES_128_CBC_SHA256",
        0x00B3: "DHE_PSK_WITH_AES_256_CBC_SHA384",
        0x00B6: "RSA_PSK_WITH_AES_128_CBC_SHA256",
        0x00B7: "RSA_PSK_WITH_AES_256_CBC_SHA384",
        0xC004: "ECDH_ECDSA_WITH_AES_128_CBC_SHA",
        0xC005: "ECDH_ECDSA_WITH_AES_256_CBC_SHA",
        0xC009: "ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xC00A: "ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xC00E: "ECDH_RSA_WITH_AES_128_CBC_SHA",
        0xC00F: "ECDH_RSA_WITH_AES_256_CBC_SHA",
        0xC013: "ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xC014: "ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xC018: "ECDH_anon_WITH_AES_128_CBC_SHA",
        0xC019: "ECDH_anon_WITH_AES_256_CBC_SHA",
        0xC023: "ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xC024: "ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xC025: "ECDH_ECDSA_WITH_AES_128_CBC_SHA256",
        0xC026: "ECDH_ECDSA_WITH_AES_256_CBC_SHA384",
        0xC027: "ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xC028: "ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xC029: "ECDH_RSA_WITH_AES_128_CBC_SHA256",
        0xC02A: "ECDH_RSA_WITH_AES_256_CBC_SHA384",
        0xC035: "ECDHE_PSK_WITH_AES_128_CBC_SHA",
        0xC036: "ECDHE_PSK_WITH_AES_256_CBC_SHA",
        0xC037: "ECDHE_PSK_WITH_AES_128_CBC_SHA256",
        0xC038: "ECDHE_PSK_WITH_AES_256_CBC_SHA384",
    }
    for sid, name in cbc.items():
        mac = "sha1" if name.endswith("_SHA") else _hash_of(name)
        s.append(
            Suite(sid, "TLS_" + name, "cbc", 32 if "AES_256" in name else 16, _hash_of(name), mac)
        )
    return {x.id: x for x in s}


def _hash_of(name: str) -> str:
    return "sha384" if name.endswith("SHA384") else "sha256"


SUITES: dict[int, Suite] = _suites()


# -- key schedules -----------------------------------------------------------------------------


def _p_hash(secret: bytes, seed: bytes, n: int, digest: str) -> bytes:
    out = b""
    a = seed
    while len(out) < n:
        a = hmac.digest(secret, a, digest)
        out += hmac.digest(secret, a + seed, digest)
    return out[:n]


def tls_prf(secret: bytes, label: bytes, seed: bytes, n: int, version: int, digest: str) -> bytes:
    """The TLS PRF: P_<hash> for TLS 1.2, MD5 xor SHA-1 halves for TLS 1.0/1.1."""
    if version >= 0x0303:
        return _p_hash(secret, label + seed, n, digest)
    half = (len(secret) + 1) // 2
    md5 = _p_hash(secret[:half], label + seed, n, "md5")
    sha = _p_hash(secret[len(secret) - half :], label + seed, n, "sha1")
    return bytes(x ^ y for x, y in zip(md5, sha, strict=True))


def tls12_key_block(
    master: bytes, client_random: bytes, server_random: bytes, suite: Suite, version: int
) -> tuple[RecordCipher, RecordCipher]:
    """(client cipher, server cipher) of a TLS 1.0-1.2 connection from its master secret."""
    mac_len = hashlib.new(suite.mac).digest_size if suite.cipher == "cbc" else 0
    if suite.cipher == "cbc":
        iv_len = 16 if version == 0x0301 else 0  # TLS 1.0: implicit IV from the key block
    elif suite.cipher == "chacha":
        iv_len = 12
    else:
        iv_len = 4
    need = 2 * (mac_len + suite.key_len + iv_len)
    block = tls_prf(
        master, b"key expansion", server_random + client_random, need, version, suite.hash
    )
    p = 0

    def take(n: int) -> bytes:
        nonlocal p
        p += n
        return block[p - n : p]

    cmac, smac = take(mac_len), take(mac_len)
    ckey, skey = take(suite.key_len), take(suite.key_len)
    civ, siv = take(iv_len), take(iv_len)
    if suite.cipher == "cbc":
        return (
            Cbc(ckey, cmac, suite.mac, civ or None),
            Cbc(skey, smac, suite.mac, siv or None),
        )
    return Tls12Aead(suite.cipher, ckey, civ), Tls12Aead(suite.cipher, skey, siv)


def hkdf_expand_label(
    secret: bytes, label: bytes, context: bytes, n: int, digest: str, prefix: bytes = b"tls13 "
) -> bytes:
    """TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1); draft versions before 20 used another
    prefix."""
    full = prefix + label
    info = struct.pack(">HB", n, len(full)) + full + bytes([len(context)]) + context
    out = b""
    t = b""
    i = 1
    while len(out) < n:
        t = hmac.digest(secret, t + info + bytes([i]), digest)
        out += t
        i += 1
    return out[:n]


def tls13_cipher(
    secret: bytes, suite: Suite, *, aad_header: bool = True, prefix: bytes = b"tls13 "
) -> Tls13Aead:
    key = hkdf_expand_label(secret, b"key", b"", suite.key_len, suite.hash, prefix)
    iv = hkdf_expand_label(secret, b"iv", b"", 12, suite.hash, prefix)
    return Tls13Aead(suite.cipher, key, iv, aad_header)


def tls13_next_secret(secret: bytes, suite: Suite, prefix: bytes = b"tls13 ") -> bytes:
    """The traffic secret after a KeyUpdate (RFC 8446 §7.2)."""
    n = hashlib.new(suite.hash).digest_size
    return hkdf_expand_label(secret, b"traffic upd", b"", n, suite.hash, prefix)


# -- record ciphers ----------------------------------------------------------------------------


def _aead(kind: str, key: bytes) -> AESGCM | AESCCM | ChaCha20Poly1305:
    if kind == "gcm":
        return AESGCM(key)
    if kind == "chacha":
        return ChaCha20Poly1305(key)
    return AESCCM(key, tag_length=8 if kind == "ccm8" else 16)


class RecordCipher:
    """Decrypts the records of one direction, in order."""

    seq: int

    def decrypt(self, ctype: int, version: int, fragment: bytes) -> tuple[int, bytes]:
        """(content type, plaintext) of one record; raises DecryptError."""
        raise NotImplementedError


class Tls12Aead(RecordCipher):
    """TLS 1.2 AES-GCM/CCM (explicit 8-byte nonce) and ChaCha20-Poly1305 (RFC 7905)."""

    __slots__ = ("_aead", "_explicit", "_iv", "_tag", "seq")

    def __init__(self, kind: str, key: bytes, iv: bytes) -> None:
        self._aead = _aead(kind, key)
        self._iv = iv
        self._explicit = kind != "chacha"
        self._tag = 8 if kind == "ccm8" else 16
        self.seq = 0

    def decrypt(self, ctype: int, version: int, fragment: bytes) -> tuple[int, bytes]:
        seq = _SEQ.pack(self.seq)
        if self._explicit:
            nonce = self._iv + fragment[:8]
            ct = fragment[8:]
        else:
            pad = bytes(4) + seq
            nonce = bytes(a ^ b for a, b in zip(self._iv, pad, strict=True))
            ct = fragment
        n = len(ct) - self._tag
        if n < 0:
            raise DecryptError("record shorter than its tag")
        try:
            plain = self._aead.decrypt(nonce, ct, seq + _HDR.pack(ctype, version, n))
        except InvalidTag:
            raise DecryptError("record does not authenticate") from None
        self.seq += 1
        return ctype, plain


class Cbc(RecordCipher):
    """AES-CBC with HMAC: MAC-then-encrypt, or encrypt-then-MAC (RFC 7366) when the
    extension was negotiated (:attr:`etm`). ``iv`` given: TLS 1.0's implicit IV chain;
    otherwise each record starts with its explicit IV (TLS 1.1+)."""

    __slots__ = ("_iv", "_key", "_mac", "_mac_key", "_mac_len", "etm", "seq")

    def __init__(self, key: bytes, mac_key: bytes, mac: str, iv: bytes | None) -> None:
        self._key = key
        self._mac_key = mac_key
        self._mac = mac
        self._mac_len = hashlib.new(mac).digest_size
        self._iv = iv
        self.etm = False
        self.seq = 0

    def _cbc(self, iv: bytes, ct: bytes) -> bytes:
        d = Cipher(algorithms.AES(self._key), modes.CBC(iv)).decryptor()
        return d.update(ct) + d.finalize()

    def _mac_of(self, ctype: int, version: int, data: bytes) -> bytes:
        msg = _SEQ.pack(self.seq) + _HDR.pack(ctype, version, len(data)) + data
        return hmac.digest(self._mac_key, msg, self._mac)

    def decrypt(self, ctype: int, version: int, fragment: bytes) -> tuple[int, bytes]:
        ml = self._mac_len
        if self.etm:
            body, tag = fragment[:-ml], fragment[-ml:]
            if len(fragment) < ml or not hmac.compare_digest(
                tag, self._mac_of(ctype, version, body)
            ):
                raise DecryptError("record MAC does not match")
            plain = self._decrypt_body(body)
            pad = plain[-1] + 1 if plain else 0
            if pad > len(plain):
                raise DecryptError("bad CBC padding")
            self.seq += 1
            return ctype, plain[:-pad]
        plain = self._decrypt_body(fragment)
        if not plain:
            raise DecryptError("empty CBC record")
        pad = plain[-1] + 1
        if pad + ml > len(plain):
            raise DecryptError("bad CBC padding")
        data = plain[: len(plain) - pad - ml]
        tag = plain[len(plain) - pad - ml : len(plain) - pad]
        if not hmac.compare_digest(tag, self._mac_of(ctype, version, data)):
            raise DecryptError("record MAC does not match")
        self.seq += 1
        return ctype, data

    def _decrypt_body(self, body: bytes) -> bytes:
        if self._iv is not None:  # TLS 1.0: the IV is the previous record's last block
            if not body or len(body) % 16:
                raise DecryptError("CBC record not a multiple of the block size")
            plain = self._cbc(self._iv, body)
            self._iv = body[-16:]
            return plain
        if len(body) < 32 or len(body) % 16:
            raise DecryptError("CBC record not a multiple of the block size")
        return self._cbc(body[:16], body[16:])


class Tls13Aead(RecordCipher):
    """TLS 1.3 records: per-record nonce from the sequence number, the record header as
    additional data (empty before draft 25), the real content type at the end of the
    plaintext, before zero padding."""

    __slots__ = ("_aad", "_aead", "_iv", "_tag", "seq")

    def __init__(self, kind: str, key: bytes, iv: bytes, aad_header: bool = True) -> None:
        self._aead = _aead(kind, key)
        self._iv = iv
        self._aad = aad_header
        self._tag = 8 if kind == "ccm8" else 16
        self.seq = 0

    def decrypt(self, ctype: int, version: int, fragment: bytes) -> tuple[int, bytes]:
        pad = bytes(4) + _SEQ.pack(self.seq)
        nonce = bytes(a ^ b for a, b in zip(self._iv, pad, strict=True))
        aad = _HDR.pack(ctype, version, len(fragment)) if self._aad else b""
        if len(fragment) < self._tag:
            raise DecryptError("record shorter than its tag")
        try:
            inner = self._aead.decrypt(nonce, fragment, aad)
        except InvalidTag:
            raise DecryptError("record does not authenticate") from None
        self.seq += 1
        end = len(inner.rstrip(b"\0"))
        if end == 0:
            raise DecryptError("record without a content type")
        return inner[end - 1], inner[: end - 1]
