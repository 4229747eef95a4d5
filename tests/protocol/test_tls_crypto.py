"""Record ciphers against an independent encryptor written here from the RFCs, for any
payload size (hypothesis): CBC padding and MAC edges (MAC-then-encrypt, encrypt-then-MAC,
TLS 1.0's chained IV), AEAD nonces (explicit for GCM/CCM, sequence-based for ChaCha20 and
TLS 1.3), and the key schedules on published test vectors."""

from __future__ import annotations

import hmac
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.protocol._tls_crypto import (
    SUITES,
    Cbc,
    DecryptError,
    Tls12Aead,
    Tls13Aead,
    hkdf_expand_label,
    tls_prf,
)

KEY16, KEY32 = bytes(range(16)), bytes(range(32))
MAC_KEY = b"m" * 32
HDR = struct.Struct(">BHH")


def _cbc_record(data: bytes, seq: int, *, etm: bool, iv: bytes | None, pad: int,
                mac: str = "sha256") -> tuple[bytes, bytes]:  # fmt: skip
    """(record fragment, last ciphertext block) as a TLS 1.0-1.2 sender builds it."""
    explicit = iv is None
    iv = iv if iv is not None else bytes([seq % 256]) * 16

    def tag(body: bytes) -> bytes:
        msg = struct.pack(">Q", seq) + HDR.pack(23, 0x0303, len(body)) + body
        return hmac.digest(MAC_KEY, msg, mac)

    def enc(plain: bytes) -> bytes:
        e = Cipher(algorithms.AES(KEY16), modes.CBC(iv)).encryptor()
        return e.update(plain) + e.finalize()

    if etm:
        n = (16 - (len(data) + 1) % 16) % 16 + 16 * pad
        ct = enc(data + bytes([n]) * (n + 1))
        body = (iv if explicit else b"") + ct
        return body + tag(body), ct[-16:]
    plain = data + tag(data)
    n = (16 - (len(plain) + 1) % 16) % 16 + 16 * pad
    ct = enc(plain + bytes([n]) * (n + 1))
    return (iv if explicit else b"") + ct, ct[-16:]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=200), min_size=1, max_size=4),
    st.booleans(),
    st.booleans(),
    st.integers(min_value=0, max_value=3),
)
def test_cbc_round_trip(datas: list[bytes], etm: bool, tls10: bool, pad: int) -> None:
    iv0 = b"\x42" * 16
    c = Cbc(KEY16, MAC_KEY, "sha256", iv0 if tls10 else None)
    c.etm = etm
    iv = iv0
    for seq, data in enumerate(datas):
        rec, last = _cbc_record(data, seq, etm=etm, iv=iv if tls10 else None, pad=pad)
        assert c.decrypt(23, 0x0303, rec) == (23, data)
        iv = last


def test_cbc_rejects_a_flipped_byte_and_a_wrong_sequence() -> None:
    rec, _ = _cbc_record(b"hello", 0, etm=False, iv=None, pad=0)
    c = Cbc(KEY16, MAC_KEY, "sha256", None)
    bad = rec[:-1] + bytes([rec[-1] ^ 1])
    with pytest.raises(DecryptError):
        c.decrypt(23, 0x0303, bad)
    rec1, _ = _cbc_record(b"hello", 1, etm=True, iv=None, pad=0)
    c.etm = True
    with pytest.raises(DecryptError):
        c.decrypt(23, 0x0303, rec1)  # sequence 0 expected
    for short in (b"", b"x" * 15, b"x" * 40):
        with pytest.raises(DecryptError):
            c.decrypt(23, 0x0303, short)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4),
       st.sampled_from(["gcm", "ccm", "ccm8", "chacha"]))  # fmt: skip
def test_tls12_aead_round_trip(datas: list[bytes], kind: str) -> None:
    key = KEY32 if kind == "chacha" else KEY16
    iv = b"\x01" * (12 if kind == "chacha" else 4)
    c = Tls12Aead(kind, key, iv)
    for seq, data in enumerate(datas):
        aad = struct.pack(">Q", seq) + HDR.pack(23, 0x0303, len(data))
        if kind == "chacha":
            nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + struct.pack(">Q", seq), strict=True))
            rec = ChaCha20Poly1305(key).encrypt(nonce, data, aad)
        else:
            explicit = struct.pack(">Q", seq + 1000)
            aead = AESGCM(key) if kind == "gcm" else AESCCM(key, 8 if kind == "ccm8" else 16)
            rec = explicit + aead.encrypt(iv + explicit, data, aad)
        assert c.decrypt(23, 0x0303, rec) == (23, data)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=20, max_value=23),
       st.integers(min_value=0, max_value=20), st.booleans())  # fmt: skip
def test_tls13_round_trip(data: bytes, ctype: int, zeros: int, aad_header: bool) -> None:
    iv = b"\x07" * 12
    c = Tls13Aead("gcm", KEY16, iv, aad_header)
    inner = data + bytes([ctype]) + bytes(zeros)
    for seq in range(2):
        nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + struct.pack(">Q", seq), strict=True))
        aad = HDR.pack(23, 0x0303, len(inner) + 16) if aad_header else b""
        rec = AESGCM(KEY16).encrypt(nonce, inner, aad)
        assert c.decrypt(23, 0x0303, rec) == (ctype, data)


def test_key_schedules_on_known_vectors() -> None:
    # RFC 8448 (simple 1-RTT): server handshake traffic secret -> key and iv
    secret = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    key = hkdf_expand_label(secret, b"key", b"", 16, "sha256")
    iv = hkdf_expand_label(secret, b"iv", b"", 12, "sha256")
    assert key.hex() == "3fce516009c21727d0f2e4e86ee403bc"
    assert iv.hex() == "5d313eb2671276ee13000b30"
    # TLS 1.2 PRF (SHA-256) test vector (IETF TLS WG, "Test vector for TLS 1.2 PRF")
    out = tls_prf(
        bytes.fromhex("9bbe436ba940f017b17652849a71db35"),
        b"test label",
        bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c"),
        100,
        0x0303,
        "sha256",
    )
    assert out.hex().startswith("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a")

    # TLS 1.0/1.1 PRF (RFC 2246 §5): P_MD5(first half) xor P_SHA1(second half), odd lengths
    # sharing the middle byte
    def p_hash(secret: bytes, seed: bytes, n: int, h: str) -> bytes:
        out, a = b"", seed
        while len(out) < n:
            a = hmac.new(secret, a, h).digest()
            out += hmac.new(secret, a + seed, h).digest()
        return out[:n]

    secret, seed = b"abcde", b"seed"
    want = bytes(x ^ y for x, y in zip(p_hash(secret[:3], b"lbl" + seed, 40, "md5"),
                                       p_hash(secret[2:], b"lbl" + seed, 40, "sha1"),
                                       strict=True))  # fmt: skip
    assert tls_prf(secret, b"lbl", seed, 40, 0x0301, "sha256") == want


def test_suite_table() -> None:
    assert SUITES[0xC02F].name == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert SUITES[0xC030].hash == "sha384"
    assert SUITES[0x002F].mac == "sha1" and SUITES[0x002F].cipher == "cbc"
    assert SUITES[0xC024].mac == "sha384"
    assert SUITES[0x1303].tls13 and SUITES[0x1303].cipher == "chacha"
    assert SUITES[0xC0A8].cipher == "ccm8"
