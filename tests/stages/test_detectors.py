"""Detectors: tables of true and false positives per detector, validators, and arbitrary
text never breaking the scanner (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.stages._detectors import (
    ALL_DETECTORS,
    DEFAULT_DETECTORS,
    FieldMatcher,
    TextScanner,
    normalize_field,
)
from replaygate.stages._mask_fp import iban_valid, luhn_valid

SCAN = TextScanner(ALL_DETECTORS, ["*password", "*api_key", "*token"])


def found(text: str) -> list[tuple[str, str]]:
    return [(f.rule, text[f.start : f.end]) for f in SCAN.findings(text)]


POSITIVES = [
    ("mail alice.smith+tag@corp-mail.co.uk now", "email", "alice.smith+tag@corp-mail.co.uk"),
    ("q=bob%40corp.io&x", "email", "bob%40corp.io"),
    ("card 4111 1111 1111 1111.", "card", "4111 1111 1111 1111"),
    ("pan=5500-0000-0000-0004", "card", "5500-0000-0000-0004"),
    ("amex 3782 822463 10005", "card", "3782 822463 10005"),
    ('"n":"4012888888881881"', "card", "4012888888881881"),
    (
        "t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_DEF-123 ",
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_DEF-123",
    ),
    ("Authorization: Bearer abc.DEF-123_xyz~", "bearer", "abc.DEF-123_xyz~"),
    ("auth Basic dXNlcjpwYXNzd29yZA==", "basic", "dXNlcjpwYXNzd29yZA=="),
    ("key AKIAIOSFODNN7EXAMPLE,", "aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
    (
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("gh ghp_" + "x" * 36, "github_token", "ghp_" + "x" * 36),
    (
        "gh github_pat_11ABCDEFG0123456789_abcdefghij",
        "github_token",
        "github_pat_11ABCDEFG0123456789_abcdefghij",
    ),
    ("s sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("r rk_test_abcdefghij12", "stripe_key", "rk_test_abcdefghij12"),
    ("slack xoxb-123456789012-abcdefABCDEF", "slack_token", "xoxb-123456789012-abcdefABCDEF"),
    ("iban DE89370400440532013000;", "iban", "DE89370400440532013000"),
    ("iban GB82 WEST 1234 5698 7654 32", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("tel +44 20 7946 0958.", "phone", "+44 20 7946 0958"),
    ("tel (212) 555-0143", "phone", "(212) 555-0143"),
    ("from 203.0.113.9:443", "ipv4", "203.0.113.9"),
    ("v6 2a00:1450:4001:81c::200e here", "ipv6", "2a00:1450:4001:81c::200e"),
    ("password=hunter2&x", "field", "hunter2"),
    ('"api_key": "k-123"', "field", "k-123"),
    ("csrf-token: abcdef", "field", "abcdef"),
]


@pytest.mark.parametrize(("text", "rule", "value"), POSITIVES)
def test_detects(text: str, rule: str, value: str) -> None:
    assert (rule, value) in found(text), found(text)


def test_private_key_block() -> None:
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----"
    assert found(f"x {pem} y") == [("private_key", pem)]


NEGATIVES = [
    "ts 1700000000000000000",  # 19-digit timestamp (starts with 1)
    "order 4111111111111112",  # Luhn fails
    "version 1.2.3.4.5",
    "pi 3.14159265358979323",
    "time 12:30:45 and std::vector",
    "iban DE00370400440532013000",  # mod-97 fails
    "max_tokens: 256",
    "token_type=Bearer",
    "call 555-1234",  # too short / no country code: conservative
    "hash a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
    "Basic",
    "user@localhost",  # no TLD
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_does_not_detect(text: str) -> None:
    assert found(text) == []


def test_default_detectors_exclude_ip() -> None:
    assert "ipv4" not in DEFAULT_DETECTORS and "ipv6" not in DEFAULT_DETECTORS
    assert set(DEFAULT_DETECTORS) | {"ipv4", "ipv6"} == set(ALL_DETECTORS)
    assert TextScanner(DEFAULT_DETECTORS).might_match("10.0.0.1") is False


def test_validators() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE89370400440532013001") and not iban_valid("XX")


def test_field_matcher_patterns() -> None:
    m = FieldMatcher(["*token", "password*", "ssn", "*secret*"])
    for yes in ("csrf_token", "X-Auth-Token", "token", "passwordConfirm", "SSN", "my_secret_key"):
        assert m.matches(yes), yes
    for no in ("max_tokens", "token_type", "tokens", "ssn_last_seen", "pass"):
        assert not m.matches(no), no
    assert normalize_field("X-Access_Token") == "xaccesstoken"
    assert m.mentioned('{"csrf_token": 1}') and not m.mentioned('{"a": 1}')
    assert FieldMatcher([]).matches("token") is False


def test_custom_patterns_use_group_one() -> None:
    import re

    s = TextScanner(
        [], custom=[("pattern:1", re.compile(r"ORD-(\d+)")), ("pattern:2", re.compile(r"zz"))]
    )
    text = "ORD-123 zz"
    assert [(f.rule, text[f.start : f.end]) for f in s.findings(text)] == [
        ("pattern:1", "123"),
        ("pattern:2", "zz"),
    ]


def test_whole_value() -> None:
    assert SCAN.whole("alice@corp.io") == "email"
    assert SCAN.whole("mail alice@corp.io") is None


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_spans_are_in_bounds(text: str) -> None:
    for f in SCAN.findings(text):
        assert 0 <= f.start < f.end <= len(text)


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[a-z]{1,10}@[a-z]{2,10}\.(com|io|de)", fullmatch=True))
def test_generated_emails_found(addr: str) -> None:
    assert ("email", addr) in found(f"x {addr} y")


_PIECES = [
    "a@b.io",
    "%40",
    "eyJhbGciOi.eyJzdWIi.sig",
    "Bearer abcdefgh123",
    "basic dXNlcjpwYXNz",
    "AKIAABCDEFGHIJKLMNOP",
    "ghp_" + "a" * 36,
    "sk_live_abcdefghij12",
    "xoxb-1234567890-abc",
    "4111 1111 1111 1111",
    "GB82WEST12345698765432",
    "+44 20 7946 0958",
    "(212) 555-0143",
    "password=hunter2",
    "PassWord: x",
    "\u212aey",  # KELVIN SIGN: lower() makes it an ASCII k
    "dXNlciBhQGIuaW8gb2s/Pz4+",
    "10.0.0.1",
    "fe80::1",
    " ",
    "x",
    "1234",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=8))
def test_prefilter_never_hides_a_finding(parts: list[str]) -> None:
    """The one-pass prefilter (hyperscan, or its pure-Python twin) only gates the detectors:
    with it, without it, the findings are the same."""
    from replaygate.stages._detectors import DEFAULT_DETECTORS, TextScanner, _Quick

    text = "".join(parts)
    names = ["*password", "*token", "*api_key", "pin"]
    sc = TextScanner([*DEFAULT_DETECTORS, "ipv4", "ipv6"], names)
    with_pre = sorted(map(repr, sc.findings(text)))
    sc.prefilter = False
    without = sorted(map(repr, sc.findings(text)))
    assert with_pre == without
    py = _Quick(sc.detectors, sc.quick.words)
    py._db = None
    if without:
        assert sc.quick(text) and py(text)


_KV_TEXT = st.lists(
    st.sampled_from(["pin", "PIN", "sid", "otp", "x", "-", "_", "=", ":", " ", '"', "'", "é", "1"]),
    max_size=30,
).map("".join)


@given(_KV_TEXT)
@settings(max_examples=300)
def test_field_patterns_with_the_boundary_after_the_name_match_as_before(text: str) -> None:
    """``pin(?<![\\w-]pin)`` (fast: starts with a literal) finds what ``(?<![\\w-])pin``
    found, ignoring case or not."""
    import re

    from replaygate.stages._detectors import _field_patterns

    for _n, pat in _field_patterns(["pin", "sid", "*otp", "pass*"]):
        old = re.sub(r"^(\w+)\(\?<!\[\\w-\]\1\)", r"(?<![\\w-])\1", pat)
        for flags in (re.ASCII, re.ASCII | re.IGNORECASE):
            new_rx, old_rx = re.compile(pat, flags), re.compile(old, flags)
            assert [m.span() for m in new_rx.finditer(text)] == [
                m.span() for m in old_rx.finditer(text)
            ]


@given(
    st.lists(
        st.sampled_from(
            ["A", "b", "9", "+", "/", "-", "_", "=", " ", '"', "é", "AAAAAAAAAAAAAAAA"]
        ),
        max_size=40,
    ).map("".join)
)
@settings(max_examples=400)
def test_b64_runs_are_the_base64_run_pattern_s_spans(text: str) -> None:
    from replaygate.stages._detectors import _B64_RUN, _b64_runs_py, b64_runs

    spans = [m.span() for m in _B64_RUN.finditer(text)]
    assert list(b64_runs(text)) == spans  # the compiled core's, when it is built
    assert list(_b64_runs_py(text)) == spans


@given(st.text(alphabet="0123456789 -4x\u0660\u00b2", max_size=30))
@settings(max_examples=400)
def test_card_check_of_the_compiled_core_is_python_s(text: str) -> None:
    from replaygate.stages._detectors import _card_ok, _card_ok_py

    assert _card_ok(text) == _card_ok_py(text)


_EMAIL_PIECES = ["a", "Z", "0", ".", "-", "_", "%", "+", "@", "%40", "io", "com", " ", '"']
_EMAIL_PIECES += ["é", "٣", "x" * 30, "a" * 62 + "b", "corp.io", "u@x.co", "é@a.io", "a.b.c.de"]


@given(
    st.lists(
        st.sampled_from(_EMAIL_PIECES),
        max_size=30,
    ).map("".join)
)
@settings(max_examples=600)
def test_email_spans_of_the_compiled_core_are_python_s(text: str) -> None:
    from replaygate.stages._detectors import _emails, _emails_py

    assert list(_emails(text)) == list(_emails_py(text))
