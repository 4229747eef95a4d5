"""The leaks of issue #13, one by one, on real HTTP bytes: each case is masked, masking it
again changes nothing, and scan-style recording counts it (unmasked before, masked after)."""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.model import Exchange, Request, Response
from replaygate.stages._detectors import b64_encode, b64_text
from replaygate.stages._mask_body import chunk_trailers, map_multipart
from replaygate.stages._mask_engine import Loc
from replaygate.stages.mask import MaskConfig, MaskStage
from replaygate.testing import make_exchange

KEY = b"leaks-key"
SECRET = "Pl4ntedS3cretValueQ9"
EMAIL = "victim@leaky-corp.com"


def masked(ex: Exchange) -> tuple[Exchange, Counter[bool]]:
    """Mask ``ex``; then count what a scan of the result sees (True = already masked)."""
    out = MaskStage(MaskConfig(), KEY).mask_exchange(ex)
    seen: Counter[bool] = Counter()

    def rec(rule: str, loc: Loc, m: bool) -> None:
        if rule != "skipped_binary":
            seen[m] += 1

    scan = MaskStage(MaskConfig(), b"another-key")
    scan.masker.record = rec
    again = scan.mask_exchange(out)
    assert again.request.raw == out.request.raw  # idempotent, whatever the key
    if out.response is not None and again.response is not None:
        assert again.response.raw == out.response.raw
    return out, seen


def raw_of(ex: Exchange) -> bytes:
    return ex.request.raw + (ex.response.raw if ex.response else b"")


def assert_clean(ex: Exchange, *secrets: str) -> None:
    data = raw_of(ex)
    for s in secrets:
        assert s.encode() not in data, s
        assert base64.b64encode(s.encode())[:12] not in data, s


def test_fragment_of_request_target_and_location() -> None:
    ex = make_exchange(
        "GET",
        f"/cb#id_token={SECRET}&state=1",
        status=302,
        response_headers=[("Location", f"https://app.test/done#access_token={SECRET}x&x=1")],
    )
    out, seen = masked(ex)
    assert_clean(out, SECRET)
    assert out.request.target.startswith("/cb#id_token=") and "&state=1" in out.request.target
    loc = out.response.header("location") if out.response else None
    assert loc is not None and loc.startswith("https://app.test/done#access_token=")
    assert seen[False] == 0 and seen[True] >= 2


def test_fragment_without_pairs_and_bare_query_names() -> None:
    ex = make_exchange("GET", f"/p?{EMAIL}#{EMAIL}")
    out, seen = masked(ex)
    assert_clean(out, EMAIL)
    assert seen[False] == 0


def _chunked(head: bytes, body: bytes, trailers: bytes) -> bytes:
    return head + b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailers)


def test_chunked_trailers_masked_in_requests_and_responses() -> None:
    req = Request(
        _chunked(
            b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Api-Key\r\n\r\n",
            b'{"n": 1}',
            f"X-Api-Key: {SECRET}\r\nX-Checksum: abc\r\n".encode(),
        )
    )
    resp = Response(
        _chunked(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n",
            f"mail {EMAIL}".encode(),
            f"Authorization: Bearer {SECRET}\r\n".encode(),
        )
    )
    out, seen = masked(Exchange(id="t", request=req, response=resp))
    assert_clean(out, SECRET, EMAIL)
    assert out.request.is_chunked and out.request.body() == b'{"n": 1}'  # chunks kept
    assert b"X-Checksum: abc\r\n" in out.request.raw
    assert out.response is not None and out.response.is_chunked
    tr = chunk_trailers(bytes(out.response.body_raw))
    assert tr is not None and tr[1].startswith(b"Authorization: Bearer ")
    assert seen[False] == 0 and seen[True] >= 3


def test_every_cookie_of_a_folded_set_cookie() -> None:
    ex = make_exchange(
        response_headers=[
            (
                "Set-Cookie",
                f"a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/, refresh={SECRET}; Secure",
            )
        ]
    )
    out, seen = masked(ex)
    assert_clean(out, SECRET)
    v = out.response.header("set-cookie") if out.response else ""
    assert v is not None and "Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/, refresh=" in v
    assert seen[False] == 0


@pytest.mark.parametrize(
    "body",
    [
        # cut short: no closing delimiter, a single part
        b'--B\r\nContent-Disposition: form-data; name="password"\r\n\r\n' + SECRET.encode(),
        # the boundary in the content type is not the one used
        b'--Other\r\nContent-Disposition: form-data; name="password"\r\n\r\n'
        + SECRET.encode()
        + b"\r\n--Other--\r\n",
        # a part without a blank line after its headers, then a preamble and an epilogue
        b"preamble "
        + EMAIL.encode()
        + b"\r\n--B\r\npassword: "
        + SECRET.encode()
        + b"\r\n--B--\r\nepilogue password="
        + SECRET.encode(),
    ],
)
def test_broken_multipart_falls_back_to_text(body: bytes) -> None:
    ex = make_exchange(
        "POST",
        "/u",
        request_headers=[("Content-Type", "multipart/form-data; boundary=B")],
        request_body=body + b" card 4539148803436467",
    )
    out, seen = masked(ex)
    assert_clean(out, SECRET, EMAIL, "4539148803436467")
    assert seen[False] == 0


def test_base64_values_decoded_scanned_and_reencoded() -> None:
    inner = json.dumps({"password": SECRET, "email": EMAIL}).encode()
    std = base64.b64encode(inner).decode()
    url = base64.urlsafe_b64encode(b"user " + EMAIL.encode() + b" ok??>>").decode().rstrip("=")
    body = json.dumps({"blob": std, "ref": url, "plain": "x"}).encode()
    ex = make_exchange(
        "POST", "/b", request_headers=[("Content-Type", "application/json")], request_body=body
    )
    out, seen = masked(ex)
    assert_clean(out, SECRET, EMAIL)
    doc = json.loads(out.request.body())
    new = json.loads(base64.b64decode(doc["blob"]))
    assert set(new) == {"password", "email"} and new["email"].endswith("@example.com")
    assert "=" not in doc["ref"] and b"@example.com" in base64.urlsafe_b64decode(doc["ref"] + "==")
    assert seen[False] == 0 and seen[True] >= 3


def test_octet_stream_text_is_scanned_but_real_binary_is_not() -> None:
    ex = make_exchange(
        "POST",
        "/o",
        request_headers=[("Content-Type", "application/octet-stream")],
        request_body=f"api_key={SECRET}\nmail {EMAIL}\n".encode(),
    )
    out, _ = masked(ex)
    assert_clean(out, SECRET, EMAIL)
    st_ = MaskStage(MaskConfig(), KEY)
    png = make_exchange(
        response_body=b"\x89PNG\r\n\x1a\n" + EMAIL.encode(),
        response_headers=[("Content-Type", "application/octet-stream")],
    )
    assert st_.mask_exchange(png) is png and st_.stats.skipped_binary == 1


def test_masked_basic_credentials_scan_as_masked() -> None:
    cred = base64.b64encode(f"ann:{SECRET}".encode()).decode()
    ex = make_exchange(request_headers=[("Authorization", f"Basic {cred}")])
    out, seen = masked(ex)
    assert_clean(out, SECRET)
    auth = out.request.header("authorization")
    assert auth is not None and auth.startswith("Basic ")
    assert b":" in base64.b64decode(auth.split(" ", 1)[1])
    assert seen == Counter({True: 1})


def test_map_multipart_passes_everything_unparsed_to_rest() -> None:
    seen: list[bytes] = []

    def rest(b: bytes) -> bytes | None:
        seen.append(b)
        return None

    body = b"pre\r\n--B\r\nno blank line here\r\n--B--\r\nepi"
    assert map_multipart(body, "B", lambda *a: None, rest) is None
    assert seen == [b"pre\r\n", b"\r\nno blank line here\r\n", b"\r\nepi"]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=12, max_size=80).filter(lambda t: t.isprintable()), st.booleans())
def test_base64_text_round_trip(text: str, urlsafe: bool) -> None:
    raw = text.encode()
    enc = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    dec = b64_text(enc)
    assert dec is not None and dec[0] == text
    assert b64_encode(dec[0], enc, dec[1]) == enc


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_chunk_trailers_never_raises(data: bytes) -> None:
    tr = chunk_trailers(data)
    assert tr is None or (0 <= tr[0] <= len(data) and data[tr[0] :] == tr[1])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Accept: application/json",
                "X-Note: call +44 20 7946 0958",
                "X-Folded: 4111\r\n 1111 1111 1111",
                "X-Blob: dXNlciBhQGIuaW8gb2s/Pz4+",
                "X-Trace: abcdefghijklmnopqrstuv",
                "Referer: /a/b%40c.io",
                "X-Pass-Word: hunter2",
            ]
        ),
        max_size=4,
    ),
    st.sampled_from(
        [
            "/",
            "/api/v1/items?q=1",
            "/u/a%40b.io",
            "/cb#id_token=x",
            "/p?p_w_d=1",
            "/api/token/x?page=2",
            "/api/v1/x?q=api_key:abc",
            "/session=abc/pin",
            "/a/secret:x#pin",
            "/a?x=1&password=y",
            "/tokens?sort=otp",
        ]
    ),
)
def test_clean_head_shortcut_changes_nothing(lines: list[str], target: str) -> None:
    """The one-scan shortcut for clean heads and targets gives the same bytes and the same
    counts as scanning every value."""
    raw = (
        f"GET {target} HTTP/1.1\r\nHost: h\r\n" + "".join(f"{ln}\r\n" for ln in lines) + "\r\n"
    ).encode()
    fast = MaskStage(MaskConfig(), KEY)
    slow = MaskStage(MaskConfig(), KEY)
    slow.masker.rules.scanner.prefilter = False  # no prefilter, no shortcut
    a = fast.mask_exchange(Exchange(id="a", request=Request(raw)))
    b = slow.mask_exchange(Exchange(id="a", request=Request(raw)))
    assert a.request.raw == b.request.raw
    assert fast.stats.as_dict() == slow.stats.as_dict()


_JSON_VALUES = st.sampled_from(
    [
        "alice@corp.io",
        "u5f3a9c1e2b@example.com",
        "4111 1111 1111 1111",
        "card 4111-1111-1111-1111 on file",
        "pw-123456789",
        "tok_9f8e7d6c5b4a39281706f5e4",
        "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "Bearer abcdefghijklmnopqrstuvwxyz012345",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU",
        base64.b64encode(b"mail me at bob@corp.io please").decode(),
        "GB82 WEST 1234 5698 7654 32",
        "+44 20 7946 0958",
        "password=hunter2",
        "token=abc123 for carol@corp.io",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "-----BEGIN PRIVATE KEY----- MIIEvQIBADANBg -----END PRIVATE KEY-----",
        "[1, 2]",
        "plain words",
        "",
    ]
) | st.sampled_from([4111111111111111, 12, -3, 1.5, True, None])
_JSON_KEYS = st.sampled_from(["id", "email", "password", "access_token", "note", "card", "pin"])
_JSON_DOCS = st.recursive(
    _JSON_VALUES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_JSON_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_DOCS)
def test_json_raw_text_hits_change_nothing(doc: object) -> None:
    """The JSON fast path (detector hits found once in the raw text, the other strings not
    scanned, the whole-value detector taken from the hits) gives the same bytes and counts
    as scanning every string value."""
    import orjson

    from replaygate.stages._mask_engine import _enclosing

    text = orjson.dumps(doc).decode()
    fast = MaskStage(MaskConfig(), KEY)
    slow = MaskStage(MaskConfig(), KEY)
    found = list(fast.masker.rules.scanner.findings(text))
    a = fast.masker.json_doc(text, "request", hits=_enclosing(text, found))
    b = slow.masker.json_doc(text, "request", hits=None)
    assert a == b
    assert fast.stats.as_dict() == slow.stats.as_dict()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["api", "token", "session", "pin", "key", "=", ":", "/", "?", "&", "#", "x", "1_", "-"]
        ),
        max_size=12,
    ).map(lambda parts: "/" + "".join(parts))
)
def test_targets_with_field_words_mask_as_without_the_shortcut(target: str) -> None:
    """A target whose only trigger is a field word used by no field pattern is taken as
    clean: same bytes and counts as scanning every segment and pair."""
    raw = f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
    fast = MaskStage(MaskConfig(), KEY)
    slow = MaskStage(MaskConfig(), KEY)
    slow.masker.rules.scanner.prefilter = False
    a = fast.mask_exchange(Exchange(id="a", request=Request(raw)))
    b = slow.mask_exchange(Exchange(id="a", request=Request(raw)))
    assert a.request.raw == b.request.raw
    assert fast.stats.as_dict() == slow.stats.as_dict()


@pytest.mark.parametrize(
    "name", ["pass_word", "p assword", "PASS.WORD", "Pass-Word", "a.p.i-k.e.y"]
)
@pytest.mark.parametrize("ctype", ["application/json", "text/plain"])
def test_secret_names_split_by_separators(name: str, ctype: str) -> None:
    """Field names are compared without separators, so a JSON key like ``pass_word`` is a
    secret name: the prefilters that skip clean bodies must not skip it (they did)."""
    body = json.dumps({name: SECRET, "note": "x"}).encode()
    ex = make_exchange(
        "POST",
        "/x",
        request_headers=[("Content-Type", ctype)],
        request_body=body,
        response_headers=[("Content-Type", ctype)],
        response_body=body,
    )
    out, _seen = masked(ex)
    assert_clean(out, SECRET)
