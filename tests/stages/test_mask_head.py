"""The head path's memos (header fields, query and form pairs) change nothing: the same bytes,
the same counts and the same locations as masking every field again, for generated heads
with tricky pieces under several configurations, and the same as before the memos existed
(a digest of the outputs, frozen from the engine without them)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import random
from typing import Any

import pytest

import replaygate.stages._mask_head as head
from replaygate.model import Exchange, Request, Response
from replaygate.stages._mask_engine import Masker, resolve_loc
from replaygate.stages.mask import MaskConfig, MaskStage
from replaygate.testing import make_exchange

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZW1haWwiOiJhQGIuaW8iLCJl"
    "eHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA"
)
TARGETS = [
    "/api/v1/items/{i}?page=2&q=shoes&token=t{i}",
    "/api/v1/items/{i}?page=2&q=shoes",
    "/cb#access_token=abc{i}def&id_token=" + JWT,
    "/cb?x=1#state=s{i}&code=c{i}",
    "/u/john%40example.com/x?email=a%40b.io",
    "/u/{i}/a%2Fb%20c?q=%E2%82%AC&r=caf%C3%A9",
    "http://user:pass{i}@host.test/p?x=1",
    "https://host.test/login?password=hunter{i}&user=bob",
    "?a=1&a=2&token=x{i}&token=y",
    "/caf\xe9/\xfcber?q=\xe9l\xe8ve&sid=\xe9{i}",
    "/search?t0k3nvalue{i}",
    "/p?&&=v&k=&=&password=",
    '/q?filter={"password":"p{i}","a":1}&list=[1,2]',
    "/b64/dXNlcjpwYXNzd29yZEBleGFtcGxlLmNvbQ==/x",
    "/cards/4111111111111111/pay?card=4111-1111-1111-1111",
    "/mail/bob{i}@corp.example.com/inbox",
    "/ip/10.0.{i}.1/x?ip=192.168.1.1",
    "/x?q=a+b+c%2B&email=a+b%40c.io",
    "/x?session=abc&Session_Id={i}&SID=9",
    "*",
]
HEADERS = [
    ("Authorization", "Bearer " + JWT),
    ("Authorization", "Basic dXNlcjpwYXNzd29yZA=="),
    ("Authorization", "Token abc{i}def"),
    ("authorization", "bearer  tok{i}tok{i}tok"),
    ("Cookie", "sid=s{i}; lang=en"),
    ("Cookie", 'sid="quoted{i}"; theme=dark'),
    ("Cookie", "  sid = spaced{i} ;lang=en; empty=; noeq"),
    ("Cookie", "a=b@c.io; t=eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxMjM0In0.sig{i}"),
    ("Set-Cookie", "sid=s{i}; Path=/; HttpOnly"),
    ("Set-Cookie", "a=1{i}; Path=/, b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT; HttpOnly"),
    ("Set-Cookie", 'c="q{i}"; Domain=bob@corp.io; Secure, d=4; Max-Age=10'),
    ("X-Api-Key", "key-{i}-abcdef"),
    ("X-Custom-Token", "ct{i}"),
    ("X-Forwarded-For", "10.0.0.{i}, 192.168.0.1"),
    ("Location", "https://app.test/cb#id_token=" + JWT + "&state={i}"),
    ("Referer", "https://u:p{i}@site.test/u/bob@x.io?q=1"),
    ("User-Agent", "bench/1.0"),
    ("User-Agent", "contact john{i}@example.com"),
    ("X-Note", "card 4111 1111 1111 1111 and +1 415 555 2671"),
    ("X-Data", "dXNlcj1ib2JAZXhhbXBsZS5jb20gcGFzc3dvcmQ9eA=="),
    ("X-Plain", "nothing here {i}"),
    ("X-Request-Id", "req-{i}"),
    ("X-Empty", ""),
    ("X-Latin", "caf\xe9 \xfcber {i}"),
    ("X-Kv", "password={i}secret; token=abc"),
    ("X-Masked", "[redacted:1a2b3c]"),
    ("X-Url", "see https://x.test/?token=abc{i}"),
    ("Content-Type", "application/json"),
]
BODIES = [
    ("application/json", b'{"email":"a{i}@b.io","n":1}'),
    ("application/x-www-form-urlencoded", b"user=bob&password=p{i}&note=x%40y.io"),
    ("text/plain", b"mail bob{i}@x.io"),
]
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "redact": {"action": "redact"},
    "mixed": {
        "actions": {"cookie:sid": "drop", "header:x-api-key": "drop", "email": "redact"},
        "cookies": ["lang", "theme"],
        "query_params": ["q", "x"],
        "headers": ["x-note"],
        "keep_headers": ["user-agent"],
    },
    "patterns": {"patterns": ["ref-[0-9]+", "shoes"], "ip_addresses": True},
}


def corpus(n: int = 120, seed: int = 5) -> list[Exchange]:
    """Heads that repeat in part (values from a small range, as sessions do), with every
    tricky piece; some with small bodies, a folded field and chunked trailers."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        j = i % 15

        def fill(s: str, i: int = i, j: int = j) -> str:
            return s.replace("{i}", str(j if rng.random() < 0.6 else i))

        target = fill(rng.choice(TARGETS))
        req_h = [(k, fill(v)) for k, v in rng.sample(HEADERS, rng.randint(0, 6))]
        resp_h = [(k, fill(v)) for k, v in rng.sample(HEADERS, rng.randint(0, 5))]
        rb = sb = b""
        if rng.random() < 0.3:
            ct, b = rng.choice(BODIES)
            req_h.append(("Content-Type", ct))
            rb = b.replace(b"{i}", str(j).encode())
        if rng.random() < 0.3:
            ct, b = rng.choice(BODIES)
            resp_h += [("Content-Type", ct), ("Content-Encoding", "gzip")]
            sb = gzip.compress(b.replace(b"{i}", str(j).encode()), mtime=0)
        ex = make_exchange(
            rng.choice(["GET", "POST"]),
            target,
            request_headers=req_h,
            request_body=rb,
            response_headers=resp_h,
            response_body=sb,
            id=f"{i:040x}",
        )
        if i % 9 == 0:
            raw = (
                f"GET {target} HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n  {fill(HEADERS[j][1])}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                f"X-Api-Key: k{j}\r\nodd line b{j}@c.io\r\n\r\n"
            ).encode("latin-1", "replace")
            resp = Response(
                f"HTTP/1.1 200 OK\nSet-Cookie: sid=z{j}\nContent-Length: 2\n\nok".encode()
            )
            ex = dataclasses.replace(ex, request=Request(raw), response=resp)
        out.append(ex)
    return out


def run(config: dict[str, Any], exchanges: list[Exchange]) -> list[Any]:
    """What one stage makes of the exchanges in order (bytes, counts after each), what it
    makes of its own output, and the locations a recording masker reports."""
    st = MaskStage(MaskConfig(**config), b"memo-key")
    rows: list[Any] = []
    outs = []
    for e in exchanges:
        o = st.mask_exchange(e)
        outs.append(o)
        assert o.response is not None
        rows.append((o.request.raw, o.response.raw, o is e, repr(st.stats.as_dict())))
    again = MaskStage(MaskConfig(**config), b"memo-key")
    for o in outs:
        a = again.mask_exchange(o)
        rows.append((a.request.raw, a is o, repr(again.stats.as_dict())))
    log: list[tuple[str, str, bool]] = []
    m = Masker(
        MaskConfig(**config).rules(),
        b"memo-key",
        lambda rule, loc, masked: log.append((rule, resolve_loc(loc), masked)),
    )
    for e in exchanges:
        assert e.response is not None
        a = m.message(e.request, "request")
        b = m.message(e.response, "response")
        rows.append((a.raw, b.raw, tuple(log)))
        log.clear()
    return rows


def digest(rows: list[Any]) -> str:
    return hashlib.sha256(repr(rows).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_replayed_fields_give_what_masking_them_again_gives(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchanges = corpus()
    with_memo = run(CONFIGS[name], exchanges)
    monkeypatch.setattr(head, "replay", lambda m, memo: False)  # every field masked again
    assert run(CONFIGS[name], exchanges) == with_memo


#: the digests of :func:`run` by the engine before the memos (main at 0a2551a; the
#: same in pure-Python mode)
FROZEN = {
    "default": "12499f42ffedd796",
    "mixed": "e7a166f7bf42f1ca",
    "patterns": "629ddfe0ddc49427",
    "redact": "4e8ef8a74eb97c4a",
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_outputs_and_counts_are_the_ones_of_the_engine_before_the_memos(name: str) -> None:
    assert digest(run(CONFIGS[name], corpus())) == FROZEN[name]


def test_a_token_s_claims_are_counted_again_once_its_pseudonym_is_forgotten() -> None:
    """A JWT's claims are counted when its pseudonym is made, not when it is remembered: a
    replayed header counts them again exactly when masking it again would (its pseudonym
    forgotten: the cache cleared)."""
    st = MaskStage(MaskConfig(), b"memo-key")
    ex = make_exchange("GET", "/", request_headers=[("Authorization", f"Bearer {JWT}")])
    counts = []
    for i in range(4):
        if i == 2:
            st.masker._named_cache.clear()
        st.mask_exchange(ex)
        counts.append(sum(st.stats.findings.values()))
    steps = [b - a for a, b in zip([0, *counts], counts, strict=False)]
    assert steps[0] == steps[2] > steps[1] == steps[3] == 1


def test_a_masked_exchange_keeps_every_other_field() -> None:
    """The stage builds the masked copy field by field: none is lost."""
    ex = make_exchange("GET", "/?token=abc123", id="x" * 40)
    values: dict[str, Any] = {
        "session": "s1",
        "seq": 7,
        "replay_error": "timeout",
        "replay_ts_ns": 5,
        "replay_latency_ns": 9,
        "meta": {"k": "v"},
    }
    ex = dataclasses.replace(ex, **values)
    out = MaskStage(MaskConfig(), b"memo-key").mask_exchange(ex)
    assert out is not ex
    for f in dataclasses.fields(Exchange):
        if f.name not in ("request", "flags"):
            assert getattr(out, f.name) == getattr(ex, f.name), f.name
