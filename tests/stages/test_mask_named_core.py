"""``CORE.mask_named`` (the compiled ``ValueMasker.named`` for plain values) against Python.

A stage whose recorder only counts lets the compiled core mask the common values under
secret names (cookies, query values, secret headers, JSON fields); a second stage with
``masker.named_core = None`` does it all in Python. Both must give the same value and the
same counts for any value, and leave the first stage's results alone when the recorder in
place is not the counting one (``text`` collects its findings to replay them).

Skipped without the compiled core (CI reruns the masking tests in pure Python).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.model import Request
from replaygate.stages._mask_fp import CORE, Keyed
from replaygate.stages.mask import MaskConfig, MaskStage

pytestmark = pytest.mark.skipif(CORE is None, reason="the compiled core is not built")

KEY = b"named-core-key"
K = Keyed(KEY)


def _pair() -> tuple[MaskStage, MaskStage]:
    fast = MaskStage(MaskConfig(), KEY)
    slow = MaskStage(MaskConfig(), KEY)
    slow.masker.named_core = None
    slow.masker.json_core = None
    slow.masker.head_core = None
    assert fast.masker.named_core is not None
    return fast, slow


def _counts(stage: MaskStage) -> tuple[dict[str, int], dict[str, int]]:
    return dict(stage.stats.findings), dict(stage.stats.already_masked)


_PIECES = [
    "alice@corp.io",
    "Bob.Smith+x@Example.ORG",
    "u5f3a9c1e2b@example.com",
    "4111 1111 1111 1111",
    "4111111111111111",
    "4000000012345678",
    "[redacted:abc123]",
    "[redacted:",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
    "Bearer ",
    "basic ",
    "Token ",
    "tok_0123456789abcdef01234567",
    "pw-123456789",
    "s000000000001",
    "DE89 3704 0044 0532 0130 00",
    "+1 (555) 010-9999",
    "password=",
    "%40",
    "é",
    " ",
    "=",
    ":",
    "ghp_" + "a" * 36,
    "AKIAABCDEFGHIJKLMNOP",
    "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=",
]


@st.composite
def values(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from(_PIECES), st.text("ab09@.-_ +/=%AZ", max_size=12)),
            max_size=4,
        )
    )
    return "".join(parts)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(values(), min_size=1, max_size=6), st.sampled_from(["cookie", "field", "query"]))
def test_named_values_mask_alike(vals: list[str], kind: str) -> None:
    fast, slow = _pair()
    for v in [*vals, *vals]:  # twice: the cached answers too
        got = fast.masker.named(v, kind, "sid", "loc")
        want = slow.masker.named(v, kind, "sid", "loc")
        assert got == want, v
    assert _counts(fast) == _counts(slow)
    # masked values are recognised as masked, both ways
    for v in vals:
        out = slow.masker.named(v, kind, "sid", "loc")
        assert fast.masker.named(v, kind, "sid", "loc") == out
        if out:
            assert fast.masker.named(out, kind, "sid", "loc") == slow.masker.named(
                out, kind, "sid", "loc"
            )
    assert _counts(fast) == _counts(slow)


@pytest.mark.parametrize("value", [*_PIECES, "", "x", "a b", "user1@corp3.io"])
def test_each_piece_masks_alike(value: str) -> None:
    fast, slow = _pair()
    assert fast.masker.named(value, "header", "x-api-key", "h") == slow.masker.named(
        value, "header", "x-api-key", "h"
    )
    assert _counts(fast) == _counts(slow)


def test_heads_mask_alike() -> None:
    fast, slow = _pair()
    for i in range(30):
        raw = (
            f"GET /a/b?page=2&token=t{i:010d}&api_key=k{i}&q=x%40y.io HTTP/1.1\r\n"
            f"Host: h\r\nCookie: sid=s{i:012d}; lang=en; email=u{i}@corp.io\r\n"
            f"X-Api-Key: key-{i % 3}\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n"
        ).encode()
        a = fast.masker.message(Request(raw), "request")
        b = slow.masker.message(Request(raw), "request")
        assert a.raw == b.raw
    assert _counts(fast) == _counts(slow)


def test_not_used_while_another_recorder_is_in_place() -> None:
    """Inside ``text`` the recorder collects findings to replay them from its cache: the
    compiled core must not count behind its back."""
    fast, slow = _pair()
    for text in ["password=hunter2 and more", "token: abc123def", "password=hunter2 and more"]:
        assert fast.masker.text(text, "t") == slow.masker.text(text, "t")
    assert _counts(fast) == _counts(slow)
    assert fast.stats.findings["field"] == 3


_TARGET_PIECES = ["api", "v1", "u@x.io", "4111111111111111", "a+b", "%40", "x", "123", "tok_ab"]
_PARAMS = ["page", "q", "token", "api_key", "sid", "email", "password", "next", "", "PIN"]
_VALS = ["2", "shoes", "t0000000001", "u@x.io", "{json}", "[1]", "", "a b", "x%40y", "eyJx.y.z"]
_HEADERS = [
    ("User-Agent", "bench/1.0"),
    ("X-Api-Key", "k-123"),
    ("Authorization", "Bearer abcdefghijklmnop"),
    ("Authorization", "Basic dXNlcjpwYXNz"),
    ("Referer", "https://app.test/p?token=abc&x=1"),
    ("Referer", "https://user:pw@app.test/p"),
    ("Location", "/next#access_token=zzz"),
    ("X-Note", "mail me at a@b.io"),
    ("X-Password", "hunter2"),
    ("Content-Type", "application/json"),
    ("Set-Cookie", "sid=abc123; Path=/; HttpOnly"),
    ("Set-Cookie", "a=1; Path=/, b=2; Path=/"),
    ("Set-Cookie", 'sid="quoted"; Expires=Wed, 21 Oct 2026 07:28:00 GMT'),
    ("Cookie", "sid=s1; lang=en; email=u@x.io"),
    ("Cookie", " sid = s2 ;theme=dark ; flag"),
    ("X-Empty", " "),
    ("X-Latin", "caf\xe9"),
]


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    segs = draw(st.lists(st.sampled_from(_TARGET_PIECES), min_size=1, max_size=4))
    pairs = draw(st.lists(st.tuples(st.sampled_from(_PARAMS), st.sampled_from(_VALS)), max_size=4))
    target = "/" + "/".join(segs)
    if pairs:
        target += "?" + "&".join(f"{k}={v}" if k else v for k, v in pairs)
    if draw(st.booleans()):
        target += "#id_token=" + draw(st.sampled_from(_VALS))
    fields = draw(st.lists(st.sampled_from(_HEADERS), max_size=6))
    head = f"GET {target} HTTP/1.1\r\nHost: h\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields)
    return (head + "\r\n").encode("latin-1")


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(heads(), min_size=1, max_size=4))
def test_generated_heads_mask_alike(raws: list[bytes]) -> None:
    """The compiled head masker (``CORE.mask_head``) against ``Masker.headers``/``target``."""
    fast, slow = _pair()
    for raw in [*raws, *raws]:
        a = fast.masker.message(Request(raw), "request")
        b = slow.masker.message(Request(raw), "request")
        assert a.raw == b.raw, raw
    assert _counts(fast) == _counts(slow)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["Content-Type", "content-encoding", "Transfer-Encoding", "X-A", "Cookie"]
            ),
            st.sampled_from(
                ["application/json", "gzip, br", " , gzip,", "chunked", "gzip, chunked", "", "x"]
            ),
        ),
        max_size=6,
    )
)
def test_mask_head_gives_the_head_facts(fields: list[tuple[str, str]]) -> None:
    """The third part of ``CORE.mask_head``'s answer is ``_head_facts`` of the fields it
    leaves (the message does not compute them again)."""
    from replaygate.stages._mask_engine import CORE_MASK_HEAD, _head_facts

    fast, _slow = _pair()
    raw = "GET /x HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    msg = Request(raw.encode("latin-1"))
    assert CORE_MASK_HEAD is not None
    answer = CORE_MASK_HEAD("/x", msg.headers, fast.masker.head_core)
    if answer is NotImplemented:
        return
    _target, new_fields, facts = answer
    assert facts == _head_facts(msg.headers if new_fields is None else new_fields)


def test_the_named_cache_is_cleared_at_the_same_size_both_ways() -> None:
    """The head path's memos replay findings only while the named cache holds what they
    read: the compiled core must clear that cache at the size the Python code does."""
    from replaygate.stages import _mask_values

    assert CORE is not None
    assert CORE.NAMED_MAX == _mask_values._NAMED_MAX


def test_across_a_clear_of_the_named_cache() -> None:
    """More distinct values than the named cache holds, some repeated across its clear:
    the compiled and Python paths (and the head path's memos) mask and count alike."""
    from replaygate.stages import _mask_values

    fast, slow = _pair()
    n = _mask_values._NAMED_MAX + 300
    for i in range(n):
        j = i if i % 5 else i // 5  # repeats: values seen before the clear, asked again
        raw = f"GET /a?token=t{j:08d} HTTP/1.1\r\nCookie: sid=s{j:08d}\r\n\r\n".encode()
        assert fast.masker.message(Request(raw), "request").raw == (
            slow.masker.message(Request(raw), "request").raw
        )
    assert _counts(fast) == _counts(slow)
