"""Format-preserving pseudonyms: keyed, deterministic, recognisable without the key."""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import string
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.stages._mask_fp import REDACT_RE, Keyed, fp_is_pseudonym, iban_valid, luhn_valid

K = Keyed(b"key-1")


def _classes(s: str) -> list[str]:
    return ["d" if c.isdigit() else "l" if c.islower() else "u" if c.isupper() else c for c in s]


def test_fp_keeps_classes_punctuation_and_length_of_long_values() -> None:
    v = "Ab3-xyz_9876.QWERTYuiop"
    p = K.fp(v)
    assert len(p) == len(v) and _classes(p) == _classes(v) and p != v
    assert fp_is_pseudonym(p) and not fp_is_pseudonym(v)


def test_fp_pads_short_values_and_keeps_digits_digits() -> None:
    for v in ("1", "1234", "ab", "", "!!"):
        p = K.fp(v)
        assert fp_is_pseudonym(p) and len(p) >= len(v)
    assert K.fp("1234").isdigit()
    assert K.fp("0042", numeric=True)[0] != "0"


def test_fp_prefix_kept() -> None:
    p = K.fp("ghp_" + "a1" * 18, keep=4)
    assert p.startswith("ghp_") and fp_is_pseudonym(p, 4)


def test_fp_deterministic_keyed_and_idempotent() -> None:
    assert K.fp("secret-1") == Keyed(b"key-1").fp("secret-1")
    assert K.fp("secret-1") != Keyed(b"key-2").fp("secret-1")
    p = K.fp("secret-1")
    assert K.fp(p) == p and Keyed(b"key-2").fp(p) == p


def test_random_tokens_are_not_mistaken_for_pseudonyms() -> None:
    alphabet = string.ascii_letters + string.digits
    hits = sum(
        fp_is_pseudonym("".join(secrets.choice(alphabet) for _ in range(24))) for _ in range(2000)
    )
    assert hits == 0


def test_email() -> None:
    p = K.email("Alice@Corp.io")
    assert p.endswith("@example.com") and K.email_is_pseudonym(p)
    assert p == K.email("alice@corp.io")  # case-insensitive identity
    assert K.email("a%40b.io").endswith("%40example.com")
    assert not K.email_is_pseudonym("a@corp.io") and K.email_is_pseudonym("x@shop.test")


def test_card_is_luhn_valid_same_length_and_separators() -> None:
    for card in ("4111 1111 1111 1111", "378282246310005", "6011-0009-9013-9424", "4222222222222"):
        p = K.card(card)
        digits = p.replace(" ", "").replace("-", "")
        assert len(p) == len(card) and luhn_valid(digits) and digits.startswith("40000000")
        assert [c for c in p if not c.isdigit()] == [c for c in card if not c.isdigit()]
        assert K.card_is_pseudonym(p) and not K.card_is_pseudonym(card)


def test_iban_valid_same_country_and_grouping() -> None:
    p = K.iban("GB82 WEST 1234 5698 7654 32")
    assert p.startswith("GB") and iban_valid(p.replace(" ", "")) and p.count(" ") == 5
    assert K.iban_is_pseudonym(p) and not K.iban_is_pseudonym("GB82 WEST 1234 5698 7654 32")


def test_basic_stays_decodable() -> None:
    b = base64.b64encode(b"user:pass word").decode()
    p = K.basic(b)
    u, _, pw = base64.b64decode(p).decode().partition(":")
    assert u and pw and K.basic_is_pseudonym(p) and not K.basic_is_pseudonym(b)
    assert fp_is_pseudonym(K.basic("not-base64!"))


def test_jwt_signature_and_pem() -> None:
    sig = K.jwt_signature("a.b.c", 43)
    assert sig.startswith("RGMASKED") and len(sig) == 43
    pem = K.pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----")
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----\nRGMASKED") and K.pem_is_pseudonym(pem)


def test_ips_move_to_reserved_ranges() -> None:
    v4 = ipaddress.ip_address(K.ip("10.1.2.3"))
    assert v4 in ipaddress.ip_network("240.0.0.0/4") and K.ip_is_pseudonym(str(v4))
    v6 = ipaddress.ip_address(K.ip("2a00:1450::1"))
    assert v6 in ipaddress.ip_network("2001:db8::/32") and K.ip_is_pseudonym(str(v6))
    assert not K.ip_is_pseudonym("10.1.2.3") and K.ip_is_pseudonym("127.0.0.1")


def test_phone_keeps_separators() -> None:
    p = K.phone("+44 20 7946 0958")
    assert p.startswith("+4") and p[3] == " " and K.phone_is_pseudonym(p)


def test_redact() -> None:
    r = K.redact("x")
    assert REDACT_RE.fullmatch(r) and r == K.redact("x") != K.redact("y")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_fp_any_text_is_recognised_and_stable(v: str) -> None:
    p = K.fp(v)
    assert fp_is_pseudonym(p) and K.fp(p) == p and p.isascii()
    json.dumps(p)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**18))
def test_numeric_pseudonyms_round_trip_through_int(n: int) -> None:
    p = K.fp(str(n), numeric=True)
    assert str(int(p)) == p and fp_is_pseudonym(p)


_SHAPES = st.text(alphabet="aZ09-_.@:x", max_size=40) | st.text(max_size=40)


@given(_SHAPES, st.integers(min_value=0, max_value=6), st.binary(min_size=1, max_size=8))
@settings(max_examples=400)
def test_fast_pseudonym_check_equals_the_reference(v: str, keep: int, key: bytes) -> None:
    from replaygate.stages._mask_fp import _fp_is_pseudonym_slow

    fp_is_pseudonym.cache_clear()
    assert fp_is_pseudonym(v, keep) == _fp_is_pseudonym_slow(v, keep)
    p = Keyed(key).fp(v, keep)  # true pseudonyms too, not only (mostly) false ones
    assert fp_is_pseudonym(p, keep) == _fp_is_pseudonym_slow(p, keep)


@given(
    _SHAPES | st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    st.integers(min_value=0, max_value=6),
    st.booleans(),
    st.binary(min_size=1, max_size=8),
)
@settings(max_examples=400)
def test_fast_fp_equals_the_reference(v: str, keep: int, numeric: bool, key: bytes) -> None:
    k = Keyed(key)
    assert k.fp(v, keep, numeric=numeric) == k._fp_slow(v, keep, numeric=numeric)
    assert k.fp(v, keep, check=False) == k._fp_slow(v, keep, check=False)


@given(st.binary(max_size=150), st.text(max_size=40), st.text(max_size=8))
def test_digest_is_hmac_sha256_for_any_key_length(key: bytes, value: str, purpose: str) -> None:
    import hmac

    msg = (purpose + "\x00" + value).encode("utf-8", "surrogatepass")
    assert Keyed(key).digest(value, purpose) == hmac.digest(key, msg, "sha256")


# -- the compiled core (make accel) against the pure-Python functions ---------------------
def _core() -> ModuleType:
    from replaygate.stages import _mask_fp

    if _mask_fp.CORE is None:
        pytest.skip("the compiled pseudonym core is not built (make accel) or not in use")
    return _mask_fp.CORE


_ANY = (
    st.text(alphabet="aZ09-_.@:x é\u00ff\u0100\ud800\U0001f600", max_size=60)
    | st.from_regex(r"[A-Za-z0-9.%]{0,12}(@|%40|%4)[A-Za-z.]{0,10}", fullmatch=True)
    | st.text(max_size=80)
    | st.from_regex(r"[0-9]{1,20}", fullmatch=True)
)


@given(_ANY, st.integers(min_value=-3, max_value=70), st.booleans(), st.binary(max_size=100))
@settings(max_examples=500)
def test_compiled_core_equals_pure_python(v: str, keep: int, numeric: bool, key: bytes) -> None:
    from replaygate.stages._mask_fp import _fp_is_pseudonym_py

    core = _core()
    fast, pure = Keyed(key), Keyed(key, compiled=False)
    assert fast.digest(v, v[:5]) == pure.digest(v, v[:5])
    assert fast.email(v) == pure.email(v)
    p = fast.fp(v, keep, numeric=numeric, check=False)
    assert p == pure.fp(v, keep, numeric=numeric, check=False)
    for x in (v, p):
        assert core.is_pseudonym(x, keep) == _fp_is_pseudonym_py(x, keep)


def test_compiled_core_on_long_values_and_keys() -> None:
    from replaygate.stages._mask_fp import _fp_is_pseudonym_py

    core = _core()
    for key in (b"", b"k" * 64, b"k" * 65, bytes(range(256))):
        fast, pure = Keyed(key), Keyed(key, compiled=False)
        for v in ("a" * 300, "Ab9-" * 200, "\u00e9" * 70 + "1" * 40, "x", ""):
            for keep in (0, 4, 299, 400):
                p = fast.fp(v, keep, check=False)
                assert p == pure.fp(v, keep, check=False)
                assert core.is_pseudonym(p, keep) is _fp_is_pseudonym_py(p, keep) is True


@given(
    st.text(alphabet='"ab@.:{}, é', max_size=40),
    st.lists(
        st.tuples(
            st.sampled_from(["field", "email", "card", "private_key", "base64"]),
            st.integers(min_value=0, max_value=40),
            st.integers(min_value=0, max_value=10),
        ),
        max_size=8,
    ),
    st.booleans(),
)
@settings(max_examples=500)
def test_compiled_string_map_equals_pure_python(
    text: str, spans: list[tuple[str, int, int]], custom: bool
) -> None:
    from replaygate.stages._detectors import Finding
    from replaygate.stages._mask_json import _enclosing, _enclosing_py

    _core()
    found = [Finding(rule, min(s, len(text)), min(s + n, len(text))) for rule, s, n in spans]
    assert _enclosing(text, found, custom) == _enclosing_py(text, found, custom)
