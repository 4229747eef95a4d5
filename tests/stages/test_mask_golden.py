"""Pseudonyms are a contract: users hold masked captures already, so the same input and key
must keep masking to the same bytes across releases (and across speed-ups of the engine).

A varied corpus is generated with a fixed seed (JSON, nested JSON, forms, multipart, text with
every detector, cookies, query strings, gzip, chunked, several configurations), masked with a
fixed key, and a digest of every output byte and every count is compared with the one
recorded when the corpus was introduced. A change of the digest is a change of pseudonyms.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator

from replaygate.model import Exchange
from replaygate.stages.mask import MaskConfig, MaskStage
from replaygate.testing import make_exchange

KEY = b"golden-key-do-not-change"
_WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
_WORDS += ["lambda", "mu"]
_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZW1haWwiOiJhQGIuaW8iLCJl"
    "eHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA"
)
_PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx1y2\nabcDEF==\n-----END RSA PRIVATE KEY-----"
)


def _secret(rng: random.Random) -> str:
    n = rng.randrange(14)
    r = rng.getrandbits(64)
    return [
        f"user{r % 10**6}@corp{r % 7}.io",
        "4111 1111 1111 1111",
        "5500005555555559",
        _JWT,
        f"AKIA{r:016X}"[:20],
        f"ghp_{r:036x}"[:40].ljust(40, "a"),
        f"sk_live_{r:024x}",
        f"xoxb-{r % 10**11}-{r % 10**9}",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        f"+44 20 7946 {r % 10000:04d}",
        "(212) 555-0143",
        f"aws_secret_access_key = {r:040x}",
        f"password={r:x}",
    ][n]


def _doc(rng: random.Random, secrets: bool) -> dict[str, object]:
    d: dict[str, object] = {
        "id": rng.randrange(10**6),
        "title": " ".join(rng.choices(_WORDS, k=4)),
        "price": round(rng.random() * 100, 2),
        "tags": rng.choices(_WORDS, k=2),
        "ok": rng.random() < 0.5,
        "none": None,
    }
    if secrets:
        d["email"] = f"u{rng.randrange(10**6)}@corp.io"
        d["note"] = f"contact {_secret(rng)} today"
        d["password"] = f"pw-{rng.randrange(10**9)}"
        d["pin"] = rng.randrange(10**4)
        d["card_number"] = 4111111111111111
        d["nested"] = json.dumps({"access_token": f"t{rng.getrandbits(40):x}", "n": 1})
        d["list"] = [{"api_key": f"k{rng.getrandbits(40):x}"}, _secret(rng)]
        d["unicode"] = f'héllo {_secret(rng)} \\ "q"'
    return d


def _exchange(rng: random.Random, i: int) -> Exchange:
    secrets = rng.random() < 0.8
    kind = rng.randrange(6)
    req_h = [("User-Agent", "golden/1"), ("X-Request-Id", f"r{i}")]
    resp_h: list[tuple[str, str]] = []
    target = f"/api/v1/items/{i}?page={i % 3}&q=shoes"
    if secrets:
        req_h += [
            ("Authorization", rng.choice([f"Bearer {_JWT}", "Basic dXNlcjpwYXNzd29yZA==", "tok"])),
            ("Cookie", f'sid=s{i:012d}; lang=en; theme="dark"'),
            ("X-Debug", f"saw {_secret(rng)}"),
            ("Referer", f"https://shop.example.org/u/{_secret(rng)}?token=r{i}"),
        ]
        resp_h += [("Set-Cookie", f"sid=s{i:012d}; Path=/; HttpOnly"), ("X-Auth-Token", f"a{i}x")]
        target = f"/users/u{i}@corp.io/orders?access_token=q{i:08d}&email=m{i}%40corp.io&x=1"
    body: bytes
    if kind == 0:
        req_h.append(("Content-Type", "application/json"))
        body = json.dumps(_doc(rng, secrets), ensure_ascii=rng.random() < 0.5).encode()
    elif kind == 1:
        req_h.append(("Content-Type", "application/x-www-form-urlencoded"))
        body = f"user=ann&password=p{i}w&email=a{i}%40corp.io&note={_secret(rng)}".encode()
    elif kind == 2:
        b = "gB0undary"
        req_h.append(("Content-Type", f"multipart/form-data; boundary={b}"))
        body = (
            f'--{b}\r\nContent-Disposition: form-data; name="user"\r\n\r\nann {_secret(rng)}\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="password"\r\n\r\np{i}\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="meta"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(_doc(rng, secrets))}\r\n"
            f"--{b}--\r\n"
        ).encode()
    elif kind == 3:
        req_h.append(("Content-Type", "text/plain"))
        lines = [_secret(rng) if secrets else rng.choice(_WORDS) for _ in range(6)]
        body = (f"log line {i}\n" + "\n".join(lines) + f"\n{_PEM if secrets else ''}\n").encode()
    elif kind == 4:
        req_h.append(("Content-Type", "application/xml"))
        body = f"<user><password>x{i}</password><mail>{_secret(rng)}</mail></user>".encode()
    else:
        body = b""
    resp_body = json.dumps({"items": [_doc(rng, secrets) for _ in range(3)]}).encode()
    resp_h.append(("Content-Type", "application/json"))
    if i % 3 == 0:
        resp_body = gzip.compress(resp_body, mtime=0)
        resp_h.append(("Content-Encoding", "gzip"))
    ex = make_exchange(
        "POST" if body else "GET",
        target,
        request_headers=req_h,
        request_body=body,
        response_headers=resp_h,
        response_body=resp_body,
        id=f"{i:040x}",
    )
    if i % 5 == 0 and body:  # chunked framing on the wire
        raw = ex.request.raw
        head, _, b = raw.partition(b"\r\n\r\n")
        head = b"\r\n".join(
            ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"content-length")
        )
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(b), b)
        ex.request = type(ex.request)(head + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    return ex


def corpus(n: int = 240, seed: int = 20261206) -> list[Exchange]:
    rng = random.Random(seed)
    return [_exchange(rng, i) for i in range(n)]


CONFIGS: list[dict[str, object]] = [
    {},
    {"action": "redact", "ip_addresses": True},
    {
        "json_paths": ["$.items[*].title", "**.tags"],
        "actions": {"email": "drop", "header:x-debug": "drop", "card": "redact"},
        "patterns": [r"log line (\d+)"],
        "query_params": ["page"],
    },
]


def _outputs(cfg: dict[str, object], exchanges: list[Exchange]) -> Iterator[bytes]:
    st = MaskStage(MaskConfig(**cfg), KEY)  # type: ignore[arg-type]
    for ex in exchanges:
        out = st.mask_exchange(ex)
        yield out.request.raw
        yield b"\x00" if out.response is None else out.response.raw
        again = MaskStage(MaskConfig(**cfg), KEY).mask_exchange(out)  # type: ignore[arg-type]
        assert again.request.raw == out.request.raw  # idempotent: the same bytes
    yield json.dumps(st.stats.as_dict(), sort_keys=True).encode()


def digest() -> str:
    h = hashlib.sha256()
    exchanges = corpus()
    for cfg in CONFIGS:
        for chunk in _outputs(cfg, exchanges):
            h.update(len(chunk).to_bytes(8, "big"))
            h.update(chunk)
    return h.hexdigest()


GOLDEN = "02793ff53b3751341f298da6615f0ea088d2ade2b486faa69433a93676a9b8d2"


def test_masked_bytes_are_unchanged_for_the_same_key() -> None:
    assert digest() == GOLDEN
