"""Masking throughput: the mask stage vs plain ``orjson.loads + dumps`` of the same bodies.

Traffic is generated, mixed like an API: requests with ``Authorization: Bearer <JWT>`` and
session cookies, ~2 KB JSON bodies with e-mails, tokens, passwords, card numbers and
innocent fields; responses with Set-Cookie and ~2 KB JSON (a third gzip-encoded). Measured
in the same run:

* ``mask``: ``MaskStage.mask_exchange`` over every exchange (request + response);
* ``mask, clean``: the same shapes without any secret (the fast path: one regex pre-check);
* ``mask, again``: masking the masked output (idempotence check cost);
* ``mask, secrets in heads only``: the secret traffic's heads without their bodies (the
  head path: target, headers, cookies; Content-Length 0);
* ``mask, clean, heads not parsed yet``: the clean row on fresh copies each repetition
  (the rows above reuse the same exchanges, whose heads are parsed after the first one);
* reference ``orjson``: ``orjson.loads`` + ``orjson.dumps`` of the same bodies (the least a
  JSON-aware masker must do) and ``gzip``-decode of the compressed ones.

Reported: MB/s (request + response bytes), exchanges/s, ratio to the reference, all from
process CPU time (best of N), since on a shared machine wall-clock time mostly measures the
neighbours.

    python -m bench mask              # 3 000 exchanges, best of 3
    python -m bench mask --full       # 20 000 exchanges, best of 5
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import random
import time
from collections.abc import Callable

import orjson

from replaygate.model import Exchange, HTTPMessage, decode_content
from replaygate.stages._mask_fp import CORE, fp_is_pseudonym
from replaygate.stages.mask import MaskConfig, MaskStage
from replaygate.testing import make_exchange

_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
]
_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZW1haWwiOiJhQGIuaW8iLCJl"
    "eHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA"
)


def _doc(rng: random.Random, secrets: bool, target: int = 2048) -> bytes:
    items = []
    while True:
        i = len(items)
        item: dict[str, object] = {
            "id": rng.randrange(10**6),
            "title": " ".join(rng.choices(_WORDS, k=6)),
            "price": round(rng.random() * 100, 2),
            "tags": rng.choices(_WORDS, k=3),
            "active": bool(i % 2),
        }
        if secrets:
            item["email"] = f"user{rng.randrange(10**6)}@corp{i % 7}.io"
            if i % 3 == 0:
                item["password"] = f"pw-{rng.randrange(10**9)}"
            if i % 4 == 0:
                item["card"] = "4111 1111 1111 1111"
            if i % 5 == 0:
                item["access_token"] = f"tok_{rng.getrandbits(96):024x}"
        items.append(item)
        body = orjson.dumps({"items": items, "page": 1})
        if len(body) >= target:
            return body


def traffic(n: int, secrets: bool, seed: int = 7) -> list[Exchange]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        req_h = [("Content-Type", "application/json"), ("User-Agent", "bench/1.0")]
        resp_h = [("Content-Type", "application/json")]
        if secrets:
            req_h += [("Authorization", f"Bearer {_JWT}"), ("Cookie", f"sid=s{i:012d}; lang=en")]
            resp_h += [("Set-Cookie", f"sid=s{i:012d}; Path=/; HttpOnly")]
        resp_body = _doc(rng, secrets)
        if i % 3 == 0:
            resp_body = gzip.compress(resp_body, mtime=0)
            resp_h.append(("Content-Encoding", "gzip"))
        out.append(
            make_exchange(
                "POST",
                f"/api/v1/items/{i}?page=2&q=shoes" + (f"&token=t{i:010d}" if secrets else ""),
                request_headers=req_h,
                request_body=_doc(rng, secrets),
                response_headers=resp_h,
                response_body=resp_body,
                id=f"{i:040x}",
            )
        )
    return out


def heads_only(exchanges: list[Exchange]) -> list[Exchange]:
    """The same heads without bodies (and without the body's framing headers)."""
    framing = ("content-length", "content-encoding", "host")
    out = []
    for e in exchanges:
        rq, rs = e.request, e.response
        assert rs is not None
        out.append(
            make_exchange(
                rq.start_line[0],
                rq.start_line[1],
                request_headers=[(k, v) for k, v in rq.headers if k.lower() not in framing],
                response_headers=[(k, v) for k, v in rs.headers if k.lower() not in framing],
                id=e.id,
            )
        )
    return out


def _size(exchanges: list[Exchange]) -> int:
    return sum(len(e.request.raw) + (len(e.response.raw) if e.response else 0) for e in exchanges)


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()  # CPU time: the shared 2-core VM makes wall time noise
        fn()
        best = min(best, time.process_time() - t)
    return best


def _unparsed(exchanges: list[Exchange]) -> list[Exchange]:
    """Copies whose heads are not parsed yet, as a reader hands them over (the other rows
    reuse the same objects: from the second repetition on, their heads are parsed)."""

    def copy(m: HTTPMessage | None) -> HTTPMessage | None:
        return None if m is None else type(m)(m.raw, head_len=m.head_len)

    return [
        dataclasses.replace(e, request=copy(e.request), response=copy(e.response))
        for e in exchanges
    ]


def _reference(exchanges: list[Exchange]) -> None:
    for e in exchanges:
        for m in (e.request, e.response):
            if m is None:
                continue
            body = m.body()
            enc = m.header_values("content-encoding")
            if enc:
                body = decode_content(body, enc)
            orjson.dumps(orjson.loads(body))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench mask")
    ap.add_argument("--full", action="store_true", help="20 000 exchanges, best of 5")
    ap.add_argument("--count", type=int, default=None, help="number of exchanges (--count=N)")
    args = ap.parse_args(argv)
    n = args.count or (20_000 if args.full else 3_000)
    repeat = 5 if args.full else 3
    dirty = traffic(n, secrets=True)
    clean = traffic(n, secrets=False)
    stage = MaskStage(MaskConfig(), b"bench-key")
    masked = [stage.mask_exchange(e) for e in dirty]
    assert all(m is not e for m, e in zip(masked, dirty, strict=True))

    def run(exchanges: list[Exchange]) -> Callable[[], object]:
        # a fresh stage and cold caches each time: nothing carried over between repetitions
        def go() -> object:
            fp_is_pseudonym.cache_clear()
            st = MaskStage(MaskConfig(), b"bench-key")
            return [st.mask_exchange(e) for e in exchanges]

        return go

    rows = []
    t_ref = _best(lambda: _reference(dirty), repeat)
    rows.append(("reference orjson loads+dumps (+gunzip)", _size(dirty), t_ref))
    rows.append(("mask (secrets everywhere)", _size(dirty), _best(run(dirty), repeat)))
    rows.append(("mask, clean traffic", _size(clean), _best(run(clean), repeat)))
    rows.append(("mask, already masked (idempotent)", _size(masked), _best(run(masked), repeat)))
    heads = heads_only(dirty)
    rows.append(("mask, secrets in heads only", _size(heads), _best(run(heads), repeat)))
    fresh = [_unparsed(clean) for _ in range(repeat)]  # made before timing, one per repetition
    rows.append(
        (
            "mask, clean, heads not parsed yet",
            _size(clean),
            _best(lambda: run(fresh.pop())(), repeat),
        )
    )
    core = "compiled (make accel)" if CORE is not None else "pure Python"
    print(
        f"masking {n} exchanges (avg {_size(dirty) / n / 1024:.1f} KiB/exchange), best of"
        f" {repeat}, pseudonym core: {core}"
    )
    print(f"{'case':<40} {'MB/s':>8} {'exch/s':>9} {'x ref time':>11}")
    for name, size, t in rows:
        print(f"{name:<40} {size / t / 1e6:>8.1f} {n / t:>9.0f} {t / t_ref:>10.2f}x")
    return 0
