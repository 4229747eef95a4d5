from __future__ import annotations

import base64
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.compare._tokens import (
    find_tokens,
    is_random_token,
    mask_tokens,
    only_tokens_differ,
)

B64U = string.ascii_letters + string.digits + "-_"


@pytest.mark.parametrize(
    "token",
    [
        "kXbRmQvTzPaWfLsNcYeHgUjD",  # base64url, no digit at all
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ==",  # standard base64 with padding
        "9f86d081884c7d659a2feaa0c55ad015",  # hex
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301",  # UUID
        "1733467200123",  # epoch millis
        "2026-12-06T07:00:00.123Z",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        # itsdangerous / Flask-WTF CSRF: value.timestamp.signature, digit-less signature
        "IjRlYjQ1NmQ0ZjMyYjQ2Zjc5ZGFiIg.Z1Mbkw.kXbRmQvTzPaWfLsNcYeHgUjDvBr",
        # Django signing: value:timestamp:signature
        "alice:1tJjFa:PzqWxRkLmNbVcXsDfGhJkLpOiUyTrEwQaS",
        # Django's masked CSRF token: 64 alphanumerics
        "wJrYkLpQzXcVbNmAsDfGhJkLqWeRtYuIoPlKjHgFdSaZxCvBnMqWeRtYuIoPaSdF",
    ],
)
def test_tokens_recognised(token: str) -> None:
    text = f'<input type="hidden" name="csrf" value="{token}"> and more'
    assert find_tokens(text) == [token]
    assert mask_tokens(text) == '<input type="hidden" name="csrf" value="\x00"> and more'


@pytest.mark.parametrize(
    "word",
    [
        "getElementsByTagName",
        "XMLHttpRequestUpload",
        "internationalization",
        "AbstractSingletonProxyFactoryBean",
        "csrfmiddlewaretoken",
        "HTTP_X_FORWARDED_PROTO",
        "font-awesome-4-7-0-webfont",
        "application/x-www-form-urlencoded",
        "static/css/bootstrap-4.min.css",
        "www.example.com:8080",
        "3.14159",
    ],
)
def test_words_are_not_tokens(word: str) -> None:
    assert find_tokens(f"see {word} here") == []
    assert not only_tokens_differ(f"see {word} here", f"see {word}x here")


def test_digitless_tokens_by_entropy() -> None:
    rng = random.Random(7)
    letters = string.ascii_letters + "-_"
    for n in (24, 32, 43):
        misses = sum(
            not is_random_token("".join(rng.choice(letters) for _ in range(n))) for _ in range(500)
        )
        assert misses <= 5, (n, misses)


def test_pairs_of_regenerated_values() -> None:
    a = '<meta name="csrf-token" content="abcdefghijklmnopqrstuvwx">'
    b = '<meta name="csrf-token" content="QWERTYUIOPASDFGHJKLZXCVB">'
    assert only_tokens_differ(a, b)  # same length, every position regenerated
    assert not only_tokens_differ("<p>Total: 10 items</p>", "<p>Total: 11 items</p>")
    assert not only_tokens_differ("<p>hello</p>", "<p>HELLO</p>")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=12, max_size=48), st.binary(min_size=12, max_size=48), st.booleans())
def test_any_random_token_pair_is_a_token_change(x: bytes, y: bytes, url: bool) -> None:
    """Whatever bytes a server signs or encodes, two renders of a page that differ only in the
    token are a token change, never a changed line (equal lengths: same byte count)."""
    enc = base64.urlsafe_b64encode if url else base64.b64encode
    y = (y * 4)[: len(x)]
    tx, ty = enc(x).decode(), enc(y).decode()
    if tx == ty:
        return
    page = '<form>\n<input name="csrf_token" value="{}">\n<p>Welcome back</p>\n</form>\n'
    # random bytes may encode to a word-like run; a token pair differing in most positions
    # is what regenerated tokens look like
    same = sum(1 for a, b in zip(tx, ty, strict=True) if a == b)
    if same <= len(tx) // 4 or (is_random_token(tx) and is_random_token(ty)):
        assert only_tokens_differ(page.format(tx), page.format(ty))
    assert not only_tokens_differ(page.format(tx), page.format(tx).replace("Welcome", "Goodbye"))
