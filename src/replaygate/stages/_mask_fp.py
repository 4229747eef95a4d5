"""Pseudonyms that keep their format and can be recognised later (without the key).

Every masked value has to satisfy two needs at once:

* **Deterministic and keyed**: the same input maps to the same output under the same key
  (HMAC-SHA256), across requests, captures and machines, so sessions and equality survive.
* **Recognisable**: masking an already masked exchange must be a no-op, and ``scan`` (which
  may not have the key) must not report pseudonyms as findings.

The generic scheme (:func:`fp_pseudonym`) keeps the character class of every ASCII letter
and digit (digit -> digit, lower -> lower, upper -> upper), keeps punctuation and length
(short values are padded so they carry enough bits), and makes the value *self-certifying*:
its trailing alphanumeric positions hold an unkeyed SHA-256 checksum (16-30 bits) of the
rest. :func:`fp_is_pseudonym` recomputes that checksum. A real secret passes the check by
chance with probability 2**-16 or less (documented in docs/masking.md).

Format-specific pseudonyms build on it: e-mail addresses move to ``example.com``, payment
cards become Luhn-valid numbers in the ``40000000`` test range, JWTs stay well-formed with a
signature starting ``RGMASKED``, IPv4 addresses move to 240.0.0.0/4 and IPv6 to 2001:db8::/32.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._mask_accel import load_core

if TYPE_CHECKING:
    from ._mask_core import Keyed as _CoreKeyed

__all__ = [
    "REDACT_RE",
    "Keyed",
    "fp_is_pseudonym",
    "iban_valid",
    "luhn_valid",
]

REDACT_RE = re.compile(r"\[redacted:[0-9a-f]{6}\]")
_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_CLASS = {"d": _DIGITS, "l": _LOWER, "u": _UPPER}
_MIN_BODY = 4
_RESERVED_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_EMAIL_TLDS = (".example", ".invalid", ".test", ".localhost")
CARD_TEST_PREFIX = "40000000"
JWT_SIG_MARK = "RGMASKED"
PEM_MARK = "RGMASKED"


def _cls(ch: str) -> str | None:
    if "0" <= ch <= "9":
        return "d"
    if "a" <= ch <= "z":
        return "l"
    if "A" <= ch <= "Z":
        return "u"
    return None


_CLS_TABLE = {
    i: ("d" if chr(i).isdigit() else "l" if chr(i).islower() else "u" if chr(i).isupper() else ".")
    for i in range(128)
}
_BITS = {"d": math.log2(10), "l": math.log2(26), "u": math.log2(26)}


def _layout(chars: list[str], keep: int) -> tuple[list[int], list[int]]:
    """Positions of the checksum (tag) and of the keyed body for a candidate of this shape."""
    return _layout_of("".join(chars).translate(_CLS_TABLE), keep)


@functools.lru_cache(maxsize=8192)  # shapes repeat far more than values: compute each once
def _layout_of(cls: str, keep: int) -> tuple[list[int], list[int]]:
    pos = [i for i, c in enumerate(cls) if c in _BITS and i >= keep]
    rest = cls[keep:]
    n_digits = rest.count("d")
    bits = n_digits * _BITS["d"] + (len(pos) - n_digits) * _BITS["l"]
    target = min(30.0, max(16.0, bits / 2))
    tag: list[int] = []
    got = 0.0
    for i in reversed(pos):
        if got >= target:
            break
        tag.append(i)
        got += _BITS[cls[i]]
    if got < target:
        return [], pos
    tagset = set(tag)
    return sorted(tag), [i for i in pos if i not in tagset]


def _checksum(chars: list[str], tag: list[int]) -> list[str]:
    blank = list(chars)
    for i in tag:
        blank[i] = "\x00"
    rest = "".join(blank)
    n = int.from_bytes(
        hashlib.sha256(b"rg-fp1\x00" + rest.encode("utf-8", "surrogatepass")).digest(), "big"
    )
    cls = "".join(chars[i] for i in tag).translate(_CLS_TABLE)
    out: list[str] = []
    for c in cls:
        alphabet = _CLASS.get(c, _LOWER)
        n, r = divmod(n, len(alphabet))
        out.append(alphabet[r])
    return out


#: the alphabet of each ASCII letter or digit (what a checksum position may hold)
_ALPHABET_OF = {c: a for a in (_DIGITS, _LOWER, _UPPER) for c in a}


def _checksum_holds(value: str, tag: list[int]) -> bool:
    """``_checksum(list(value), tag) == [value[i] for i in tag]``, stopping at the first
    position that differs (a real secret fails at the first one 9 times in 10 or more)."""
    blank = list(value)
    for i in tag:
        blank[i] = "\x00"
    digest = hashlib.sha256(
        b"rg-fp1\x00" + "".join(blank).encode("utf-8", "surrogatepass")
    ).digest()
    n = int.from_bytes(digest, "big")
    alphabet_of = _ALPHABET_OF
    for i in tag:
        c = value[i]
        alphabet = alphabet_of[c]
        n, r = divmod(n, len(alphabet))
        if alphabet[r] != c:
            return False
    return True


def _fp_is_pseudonym_py(value: str, keep: int = 0) -> bool:
    """True when ``value`` carries a valid format-preserving checksum (see module doc)."""
    tag, body = _layout_of(value.translate(_CLS_TABLE), keep)
    if not tag or len(body) < _MIN_BODY:
        return False
    return _checksum_holds(value, tag)


#: the compiled kernels (``make accel``), or None: the pure-Python functions here then run
CORE = load_core()

#: True when ``value`` carries a valid format-preserving checksum (see module doc). Values
#: repeat (cookies, e-mails): each is checked once.
_is_pseudonym: Callable[[str, int], bool] = (
    _fp_is_pseudonym_py if CORE is None else CORE.is_pseudonym
)
fp_is_pseudonym = functools.lru_cache(maxsize=65536)(_is_pseudonym)


def _fp_is_pseudonym_slow(value: str, keep: int = 0) -> bool:
    """The reference form of :func:`fp_is_pseudonym` (property tests hold them equal)."""
    chars = list(value)
    tag, body = _layout(chars, keep)
    if not tag or len(body) < _MIN_BODY:
        return False
    return _checksum(chars, tag) == [chars[i] for i in tag]


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _luhn_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):  # the check digit will be at position 0
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _iban_num(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s))


def iban_valid(compact: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN without spaces."""
    if len(compact) < 15 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    try:
        return _iban_num(compact[4:] + compact[:4]) % 97 == 1
    except ValueError:
        return False


class Keyed:
    """All pseudonym functions for one key. Pure: same key + input -> same output."""

    def __init__(self, key: bytes, *, compiled: bool = True) -> None:
        """``compiled`` false: the pure-Python functions even when the compiled core is
        there (the tests compare the two)."""
        self._key = key
        self._core: _CoreKeyed | None = None
        if compiled and CORE is not None:
            self._core = CORE.Keyed(key)
        # HMAC-SHA256 (RFC 2104) with the two padded-key blocks hashed once: each digest then
        # costs two copies and two small updates (a third of ``hmac.digest``, same bytes)
        block = hashlib.sha256(key).digest() if len(key) > 64 else key
        block = block.ljust(64, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    @property
    def core(self) -> _CoreKeyed | None:
        """The compiled kernels for this key (``make accel``), or None."""
        return self._core

    def digest(self, value: str, purpose: str = "") -> bytes:
        """HMAC-SHA256 of ``purpose NUL value`` under the key."""
        if self._core is not None:
            return self._core.digest(value, purpose)
        inner = self._inner.copy()
        inner.update((purpose + "\x00" + value).encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def _stream(self, value: str, purpose: str, n: int) -> bytes:
        out = b""
        i = 0
        while len(out) < n:
            out += self.digest(value, f"{purpose}/{i}")
            i += 1
        return out[:n]

    def hexhash(self, value: str, n: int = 6) -> str:
        return self.digest(value, "hash").hex()[:n]

    # -- generic -------------------------------------------------------------------------
    def redact(self, value: str) -> str:
        """A fixed marker with a short keyed hash, so equal values stay visibly equal."""
        return f"[redacted:{self.hexhash(value)}]"

    def fp(self, value: str, keep: int = 0, *, numeric: bool = False, check: bool = True) -> str:
        """Format-preserving, self-certifying pseudonym (see module doc). ``keep`` leading
        characters stay as they are (token prefixes such as ``ghp_``); ``numeric`` keeps the
        first digit non-zero so a JSON number stays the same number of digits; ``check``
        false skips the "already a pseudonym?" test when the caller has done it."""
        if check and fp_is_pseudonym(value, keep):
            return value
        if self._core is not None:
            return self._core.fp(value, keep, numeric)
        text = value if value.isascii() else "".join(c if c.isascii() else "x" for c in value)
        cls = text.translate(_CLS_TABLE)  # d, l, u or "." per character
        rest = cls[keep:]
        fill = "d" if "d" in rest and "l" not in rest and "u" not in rest else "l"
        while True:
            tag, body = _layout_of(cls, keep)
            if tag and len(body) >= _MIN_BODY:
                break
            cls += fill
            text += _CLASS[fill][0]
        chars = list(text)
        stream = self._stream(value, "fp", len(body))
        for j, i in enumerate(body):
            alphabet = _CLASS[cls[i]]
            if numeric and j == 0 and alphabet is _DIGITS:
                chars[i] = "123456789"[stream[j] % 9]
            else:
                chars[i] = alphabet[stream[j] % len(alphabet)]
        for i in tag:
            chars[i] = "\x00"
        digest = hashlib.sha256(b"rg-fp1\x00" + "".join(chars).encode("utf-8", "surrogatepass"))
        n = int.from_bytes(digest.digest(), "big")
        for i in tag:  # the checksum of the rest, as :func:`_checksum` computes it
            alphabet = _CLASS[cls[i]]
            n, r = divmod(n, len(alphabet))
            chars[i] = alphabet[r]
        return "".join(chars)

    def _fp_slow(
        self, value: str, keep: int = 0, *, numeric: bool = False, check: bool = True
    ) -> str:
        """The reference form of :meth:`fp` (property tests hold them equal)."""
        if check and fp_is_pseudonym(value, keep):
            return value
        chars = [c if c.isascii() else "x" for c in value]
        fill = "d" if chars and all(_cls(c) == "d" for c in chars[keep:] if _cls(c)) else "l"
        if not any(_cls(c) for c in chars[keep:]):
            fill = "l"
        while True:
            tag, body = _layout(chars, keep)
            if tag and len(body) >= _MIN_BODY:
                break
            chars.append(_CLASS[fill][0])
        stream = self._stream(value, "fp", len(body))
        cls = "".join(chars).translate(_CLS_TABLE)
        for j, i in enumerate(body):
            alphabet = _CLASS.get(cls[i], _LOWER)
            if numeric and j == 0 and alphabet is _DIGITS:
                chars[i] = "123456789"[stream[j] % 9]
            else:
                chars[i] = alphabet[stream[j] % len(alphabet)]
        for i, c in zip(tag, _checksum(chars, tag), strict=True):
            chars[i] = c
        return "".join(chars)

    # -- e-mail ----------------------------------------------------------------------------
    @staticmethod
    def email_is_pseudonym(addr: str) -> bool:
        low = addr.lower()
        dom = low.rpartition("@")[2] if "@" in low else low.rpartition("%40")[2]
        return dom in _RESERVED_EMAIL_DOMAINS or dom.endswith(_RESERVED_EMAIL_TLDS)

    def email(self, addr: str) -> str:
        """``alice@corp.io`` -> ``u5f3a9c1e2b@example.com`` (a valid address, reserved domain)."""
        if self._core is not None:
            out = self._core.email(addr)  # None: not ASCII, Python's lower() decides
            if out is not None:
                return out
        at = "%40" if "@" not in addr and "%40" in addr.lower() else "@"
        return f"u{self.digest(addr.lower(), 'email').hex()[:10]}{at}example.com"

    # -- payment cards ---------------------------------------------------------------------
    @staticmethod
    def card_is_pseudonym(text: str) -> bool:
        digits = "".join(c for c in text if c.isdigit())
        return digits.startswith(CARD_TEST_PREFIX) and luhn_valid(digits)

    def card(self, text: str) -> str:
        """Same length and separators; digits become a Luhn-valid ``40000000...`` number."""
        digits = "".join(c for c in text if c.isdigit())
        n = len(digits)
        stream = self._stream(digits, "card", n)
        body = "".join(_DIGITS[b % 10] for b in stream[: n - len(CARD_TEST_PREFIX) - 1])
        new = CARD_TEST_PREFIX + body
        new += _luhn_digit(new)
        it = iter(new)
        return "".join(next(it) if c.isdigit() else c for c in text)

    # -- IBAN ------------------------------------------------------------------------------
    @staticmethod
    def iban_is_pseudonym(text: str) -> bool:
        compact = text.replace(" ", "")
        return fp_is_pseudonym(compact[4:])

    def iban(self, text: str) -> str:
        """Same country and shape; a checksummed BBAN and recomputed mod-97 check digits."""
        compact = text.replace(" ", "").upper()
        bban = self.fp(compact[4:])
        check = 98 - _iban_num(bban + compact[:2] + "00") % 97
        new = compact[:2] + f"{check:02d}" + bban
        if " " not in text:
            return new
        return " ".join(new[i : i + 4] for i in range(0, len(new), 4))

    # -- phone numbers -------------------------------------------------------------------
    @staticmethod
    def phone_is_pseudonym(text: str) -> bool:
        return fp_is_pseudonym(_phone_digits(text)[1:])

    def phone(self, text: str) -> str:
        """Separators kept; the first digit kept, the others checksummed (maybe longer)."""
        digits = _phone_digits(text)
        new = digits[:1] + self.fp(digits[1:])
        it = iter(new)
        out = "".join(next(it) if c.isdigit() else c for c in text)
        return out + "".join(it)

    # -- JWT -------------------------------------------------------------------------------
    @staticmethod
    def jwt_is_pseudonym(token: str) -> bool:
        parts = token.split(".")
        return len(parts) == 3 and parts[2].startswith(JWT_SIG_MARK)

    def jwt_signature(self, token: str, length: int) -> str:
        sig = base64.urlsafe_b64encode(self.digest(token, "jwt")).decode().rstrip("=")
        return (JWT_SIG_MARK + sig)[: max(length, len(JWT_SIG_MARK) + 16)]

    # -- HTTP Basic credentials -----------------------------------------------------------
    def basic_is_pseudonym(self, b64: str) -> bool:
        user, pw = _basic_split(b64)
        return user is not None and pw is not None and fp_is_pseudonym(pw)

    def basic(self, b64: str) -> str:
        """``base64(user:pass)`` -> ``base64(fp(user):fp(pass))``, still valid Basic auth."""
        user, pw = _basic_split(b64)
        if user is None or pw is None:
            return self.fp(b64)
        u = self.fp(user) if user else ""
        raw = f"{u}:{self.fp(pw)}".encode()
        return base64.b64encode(raw).decode()

    # -- private keys ----------------------------------------------------------------------
    @staticmethod
    def pem_is_pseudonym(block: str) -> bool:
        return PEM_MARK in block

    def pem(self, block: str) -> str:
        first = block.split("-----", 2)[1] if block.count("-----") >= 2 else "BEGIN PRIVATE KEY"
        label = first[len("BEGIN ") :] if first.startswith("BEGIN ") else "PRIVATE KEY"
        nl = "\\n" if "\\n" in block else "\n"
        body = PEM_MARK + self.hexhash(block, 24)
        return f"-----BEGIN {label}-----{nl}{body}{nl}-----END {label}-----"

    # -- IP addresses ----------------------------------------------------------------------
    @staticmethod
    def ip_is_pseudonym(text: str) -> bool:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return False
        if ip.version == 4:
            return any(ip in n for n in _V4_MASKED) or ip.is_loopback or ip.is_unspecified
        return ip in _V6_DOC or ip.is_loopback or ip.is_unspecified

    def ip(self, text: str) -> str:
        d = self.digest(text, "ip")
        if ":" not in text:
            return f"{240 + d[0] % 15}.{d[1]}.{d[2]}.{d[3]}"
        groups = [f"{int.from_bytes(d[i : i + 2], 'big'):x}" for i in range(0, 12, 2)]
        return "2001:db8:" + ":".join(groups)


_V4_MASKED = tuple(
    ipaddress.ip_network(n)
    for n in ("240.0.0.0/4", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
_V6_DOC = ipaddress.ip_network("2001:db8::/32")


def _phone_digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _basic_split(b64: str) -> tuple[str | None, str | None]:
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None, None
    user, sep, pw = raw.partition(":")
    if not sep:
        return None, None
    return user, pw
