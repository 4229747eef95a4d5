"""The leaf classifier of the compiled JSON masker (``_mask_leaf.h``, ``CORE.LeafConfig``):
whatever it answers but UNKNOWN is what :class:`TextScanner` finds (``findings`` and
``whole``), and it answers on the strings that fill typical JSON bodies."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replaygate.stages._detectors import TextScanner
from replaygate.stages._mask_fp import CORE, _luhn_digit

from .leafref import CARD, CLEAN, EMAIL, UNKNOWN, expected, leaf_config, scanners

pytestmark = pytest.mark.skipif(CORE is None, reason="the compiled core is not built or in use")

_SCANNERS = scanners() if CORE is not None else {}
_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _card(digits: str, sep: str) -> str:
    full = digits + _luhn_digit(digits)
    if sep and len(full) == 16:
        return sep.join(full[i : i + 4] for i in range(0, 16, 4))
    if sep and len(full) == 15:
        return f"{full[:4]}{sep}{full[4:10]}{sep}{full[10:]}"
    return full


_PIECES = [
    # separators and punctuation the detectors look at
    " ",
    "  ",
    "-",
    "_",
    ".",
    ",",
    ":",
    "=",
    "+",
    "/",
    "@",
    "%40",
    "%",
    "(",
    ")",
    "'",
    "<",
    ">",
    "</",
    "&",
    ";",
    "[",
    "]",
    "{",
    "}",
    "#",
    "?",
    "\t",
    "==",
    "é",
    "\u0130",
    "\u212a",
    "日本",
    # words: field words, their neighbours, detector prefixes
    "password",
    "Password",
    "PASSWORD",
    "passwd",
    "pwd",
    "pin",
    "pin2",
    "otp",
    "sid",
    "ssn",
    "cvv",
    "cvv2",
    "cvc",
    "token",
    "access",
    "access_token",
    "api",
    "api_key",
    "apikey",
    "api-key",
    "client_secret",
    "_csrf",
    "csrf",
    "xsrf",
    "secret",
    "session",
    "session_id",
    "authorization",
    "credit_card",
    "card_number",
    "cc-number",
    "social_security_number",
    "private_key",
    "x.api.key",
    "api key",
    "tok",
    "q",
    "b-c",
    "__a_",
    "pass-word",
    "name=",
    "name='password'",
    "value='",
    "<pin>",
    "</pin>",
    "<pin>1</pin>",
    "password=x",
    "pwd: 1",
    "token = 'abc'",
    "shipping=1",
    "Bearer ",
    "bearer ",
    "Basic ",
    "basic",
    "BASIC ",
    "eyJ",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
    "-----BEGIN ",
    "PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIA",
    "ghp_",
    "gho_" + "a" * 36,
    "github_pat_",
    "sk_live_",
    "pk_test_" + "a" * 12,
    "rk_",
    "xoxb-",
    "xoxp-1234567890",
    "aws_secret_access_key",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "http://",
    "https://",
    "example.com",
    ".io",
    "corp3",
    "user123456",
    "u5f3a9c1e2b",
    "a",
    "A",
    "Z",
    "x",
    "e",
    # numbers, addresses, identifiers
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "9",
    "12",
    "123",
    "1234",
    "4111",
    "12345678",
    "2024-01-01",
    "T10:00:00Z",
    "+01:00",
    "+1",
    "+44 20 7946 0958",
    "(555) 123-4567",
    "192.168.0.1",
    "10.0.0",
    "::1",
    "fe80::1",
    "2001:db8::",
    "12:30:00",
    "dead:beef:",
    "1.2.3.4.5",
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "DE89 3704 0044 0532 0130 00",
    "DE00",
    "NL91ABNA0417164300",
    "ISO8601",
    "550e8400-e29b-41d4-a716-446655440000",
    "tok_0123456789abcdef01234567",
    "Bearer abcdefgh",
    "bearer abc.def~ghi",
    "Basic dTpw",
    "Basic YWJj",
    "Basic plan",
    "basic  dXNlcjpwYXNz==",
    "GB82 WEST 1234 5698 7654 32",
    "DE89 3704 0044 0532 0130 001",
    "1:2:3:4:5:6:7:8",
    "2001:db8::1",
    "10:30:45",
    "+1 (555) 123-4567",
    "+49 30 1234",
    "eyJa.eyJb",
    "eyJabcd.eyJefgh.",
    "[redacted:",
    "]",
]

_TEXT = st.text(alphabet="aA0123456789 .-_@%+/=:'xyzEJKPIN", max_size=8)
_SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\'),
    max_size=6,
).map(lambda t: "".join(c for c in t if c >= " "))
_CARDS = st.builds(
    _card,
    st.text(alphabet="0123456789", min_size=11, max_size=18).map(lambda d: "4" + d),
    st.sampled_from(["", " ", "-"]),
)
_EMAILS = st.builds(
    lambda local, dom, tld, sep: f"{local}{sep}{dom}.{tld}",
    st.text(alphabet="abcXYZ019._%+-", min_size=1, max_size=12),
    st.text(alphabet="abc019-.", min_size=1, max_size=12),
    st.sampled_from(["io", "com", "c", "museum", "x1", "co.uk"]),
    st.sampled_from(["@", "@", "%40"]),
)


def _b64(text: str, how: int) -> str:
    raw = text.encode("utf-8")
    out = (base64.urlsafe_b64encode if how & 1 else base64.b64encode)(raw).decode()
    return out.rstrip("=") if how & 2 else out


_INNER = st.lists(st.one_of(st.sampled_from(_PIECES), _TEXT, _CARDS, _EMAILS), max_size=5).map(
    "".join
)
_BASE64 = st.one_of(
    st.builds(_b64, _INNER, st.integers(0, 3)),
    st.builds(
        lambda b, how: _b64(b.decode("latin-1"), how) if how & 4 else base64.b64encode(b).decode(),
        st.binary(min_size=9, max_size=40),
        st.integers(0, 7),
    ),
)
_JSON_TEXT = st.lists(
    st.one_of(st.sampled_from(_PIECES), _TEXT, _SAFE_TEXT, _CARDS, _EMAILS, _BASE64), max_size=7
).map("".join)


def _check(scanner: TextScanner, leaf: object, text: str) -> None:
    for whole in (False, True):
        got = leaf.classify(text, whole)  # type: ignore[attr-defined]
        if got != UNKNOWN:
            assert got == expected(scanner, text, whole), (text, whole)


@pytest.mark.parametrize("name", ["default", "ip", "nofields", "odd"])
def test_answers_are_the_scanners(name: str) -> None:
    scanner = _SCANNERS[name]
    leaves = (leaf_config(scanner), leaf_config(scanner, names=False))

    @_SETTINGS
    @given(_JSON_TEXT)
    def run(text: str) -> None:
        for leaf in leaves:
            _check(scanner, leaf, text)

    run()


@pytest.mark.parametrize("name", ["default", "odd"])
def test_answers_are_the_scanners_on_any_text(name: str) -> None:
    """Outside the JSON contract too (quotes, backslashes, control characters: what a
    base64 run may decode to)."""
    scanner = _SCANNERS[name]
    leaf = leaf_config(scanner)

    @_SETTINGS
    @given(
        st.lists(
            st.one_of(st.sampled_from([*_PIECES, '"', "\\", "\n", "\r\n", "\x0b", "\x00"]), _TEXT),
            max_size=8,
        ).map("".join)
    )
    def run(text: str) -> None:
        _check(scanner, leaf, text)

    run()


def test_base64_of_text_is_decided_by_its_decoded_text() -> None:
    scanner = _SCANNERS["default"]
    leaf = leaf_config(scanner)
    plain = base64.b64encode(b"just some harmless words here").decode()
    secret = base64.b64encode(b"password=hunter2 and more").decode()
    binary = base64.b64encode(bytes(range(200, 230))).decode()
    for text in (plain, binary):
        assert leaf.classify(text) == CLEAN == expected(scanner, text, False)
    assert expected(scanner, secret, False) == UNKNOWN  # a "base64" finding
    assert leaf.classify(secret) == UNKNOWN


_TYPICAL = {
    # titles, tags, words
    "alpha beta gamma delta epsilon zeta": CLEAN,
    "kappa": CLEAN,
    "Café crème brûlée": CLEAN,
    "": CLEAN,
    "password": CLEAN,
    "access_token": CLEAN,
    # e-mails, cards (and their pseudonyms)
    "user123456@corp3.io": EMAIL,
    "u5f3a9c1e2b@example.com": EMAIL,
    "jane.doe+news@mail.example.co.uk": EMAIL,
    "user%40example.com": EMAIL,
    "4111 1111 1111 1111": CARD,
    "4111111111111111": CARD,
    "4111-1111-1111-1111": CARD,
    "4000000000000002": CARD,
    "4000000012345678": CLEAN,
    # passwords, tokens, identifiers, times, addresses, numbers
    "pw-123456789": CLEAN,
    "tok_0123456789abcdef01234567": CLEAN,
    "550e8400-e29b-41d4-a716-446655440000": CLEAN,
    "550E8400-E29B-41D4-A716-446655440000": CLEAN,
    "2024-01-01T10:00:00Z": CLEAN,
    "2024-01-01T10:00:00.123+01:00": CLEAN,
    "https://example.com/items?page=2&q=shoes": CLEAN,
    "https://api.example.com/v1/products/42": CLEAN,
    "12345": CLEAN,
    "3.14": CLEAN,
    "1234567890123": CLEAN,
    "[redacted:abc123]": CLEAN,
    "application/json": CLEAN,
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36": CLEAN,
}


def test_typical_strings_are_decided() -> None:
    for name in ("default", "ip", "nofields"):
        scanner = _SCANNERS[name]
        leaf = leaf_config(scanner)
        for text, answer in _TYPICAL.items():
            assert expected(scanner, text, False) == answer, (name, text)
            assert leaf.classify(text) == answer, (name, text)
            assert leaf.classify(text, True) == expected(scanner, text, True), (name, text)


def test_bench_like_strings_are_decided() -> None:
    """The strings of ``python -m bench mask`` bodies: every one answered."""
    scanner = _SCANNERS["default"]
    leaf = leaf_config(scanner)
    rng = random.Random(3)
    for i in range(300):
        for text in (
            f"user{rng.randrange(10**6)}@corp{i % 7}.io",
            f"pw-{rng.randrange(10**9)}",
            f"tok_{rng.getrandbits(96):024x}",
            "4111 1111 1111 1111",
        ):
            for whole in (False, True):
                got = leaf.classify(text, whole)
                assert got != UNKNOWN and got == expected(scanner, text, whole), text


def test_config_arguments() -> None:
    assert CORE is not None
    with pytest.raises(TypeError):
        CORE.LeafConfig((), (), True, ["password"])  # type: ignore[arg-type]
    leaf = CORE.LeafConfig(("card",), (), False)
    assert leaf.classify("4111111111111111") == CARD
    assert leaf.classify("a@b.io") == CLEAN  # e-mail is not enabled
