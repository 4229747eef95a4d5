"""Compare throughput: exchanges/s through ``Comparator.add`` on ~2 KB JSON bodies, one core.

Reference measured in the same run: ``orjson.loads`` of both bodies plus ``==`` (the least
any JSON-aware comparison must do). Every replayed body differs from its original in a
volatile field (request id, timestamp), and 10% also in a real field, so the structural
diff runs on every exchange: the realistic worst case, not the ``raw ==`` fast path.

    python -m bench compare [--n 20000] [--baseline]
"""

from __future__ import annotations

import argparse
import time
import uuid

import orjson

from replaygate.compare import Comparator, GateConfig, judge
from replaygate.model import Exchange
from replaygate.testing import make_exchange


def _body(i: int, rid: str, price: float) -> bytes:
    items = [
        {
            "sku": f"SKU-{i % 97}-{k}",
            "name": f"Item number {k}",
            "qty": k % 5 + 1,
            "price": price + k,
            "tags": ["blue", "large", "sale"][: k % 3 + 1],
        }
        for k in range(20)
    ]
    doc = {
        "id": i,
        "user": {"id": i % 500, "name": f"User {i % 500}", "email": f"user{i % 500}@example.com"},
        "items": items,
        "total": round(sum(x["price"] * x["qty"] for x in items), 2),  # type: ignore[operator]
        "meta": {"request_id": rid, "generated_at": time.time()},
    }
    return orjson.dumps(doc)


def build(n: int, baseline: bool) -> list[Exchange]:
    out = []
    hdr = [("Content-Type", "application/json"), ("Date", "Tue, 01 Dec 2026 07:00:00 GMT")]
    for i in range(n):
        orig = _body(i, str(uuid.uuid4()), 10.0)
        rep = _body(i, str(uuid.uuid4()), 10.5 if i % 10 == 0 else 10.0)
        ex = make_exchange(
            "GET",
            f"/orders/{i}",
            response_body=orig,
            response_headers=hdr,
            replayed_status=200,
            replayed_body=rep,
            replayed_headers=[
                ("Content-Type", "application/json"),
                ("Date", "Tue, 01 Dec 2026 07:00:01 GMT"),
            ],
            id=f"{i:040x}",
        )
        out.append(ex)
        if baseline:
            b = make_exchange(
                "GET",
                f"/orders/{i}",
                response_body=orig,
                response_headers=hdr,
                replayed_status=200,
                replayed_body=_body(i, str(uuid.uuid4()), 10.0),
                id=f"{i:040x}",
            )
            b.meta["role"] = "baseline"
            out.append(b)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench compare")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument(
        "--baseline", action="store_true", help="also feed a baseline replay per request"
    )
    a = ap.parse_args(argv)
    exs = build(a.n, a.baseline)
    size = sum(len(e.response.decoded_body()) for e in exs if e.response) / len(exs)  # type: ignore[union-attr]
    # reference: parse both bodies and compare
    t, cpu = time.perf_counter(), time.process_time()
    for e in exs:
        assert e.response is not None and e.replayed is not None
        _ = orjson.loads(e.response.decoded_body()) == orjson.loads(e.replayed.decoded_body())
    ref = len(exs) / (time.perf_counter() - t)
    ref_cpu = len(exs) / (time.process_time() - cpu)
    # fresh exchanges (parsed views are cached on the messages)
    exs = build(a.n, a.baseline)
    c = Comparator()
    t, cpu = time.perf_counter(), time.process_time()
    for e in exs:
        c.add(e)
    rate = len(exs) / (time.perf_counter() - t)
    rate_cpu = len(exs) / (time.process_time() - cpu)
    t = time.perf_counter()
    v = judge(c.result(), GateConfig())
    s = v.summary()
    jt = time.perf_counter() - t
    print(f"exchanges: {len(exs)}, mean body {size:.0f} B, baseline replays: {a.baseline}")
    print(f"reference orjson.loads x2 + ==: {ref:,.0f} exchanges/s wall, {ref_cpu:,.0f}/CPU-s")
    print(
        f"Comparator.add:                {rate:,.0f} exchanges/s wall, {rate_cpu:,.0f}/CPU-s "
        f"({rate_cpu / ref_cpu:.2f}x reference)"
    )
    print(
        f"judge + summary: {jt * 1000:.0f} ms; verdict {s['verdict']}, diff rate {s['totals']['diff_rate']:.1%}"
    )
    # one core = CPU seconds of this process (wall time counts other tenants of a shared VM)
    print("bar: >= 10,000 exchanges/s per core ->", "OK" if rate_cpu >= 10_000 else "BELOW")
    return 0
