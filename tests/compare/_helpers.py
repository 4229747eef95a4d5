"""Builders for compare tests: exchanges with JSON bodies, candidate or baseline role."""

from __future__ import annotations

from typing import Any

import orjson

from replaygate.model import Exchange
from replaygate.testing import make_exchange

J = [("Content-Type", "application/json")]


def jex(
    target: str,
    orig: Any,
    rep: Any | None,
    *,
    method: str = "GET",
    status: int = 200,
    rstatus: int = 200,
    role: str | None = None,
    latency_ms: float = 10.0,
    rlatency_ms: float = 10.0,
    error: str | None = None,
    ts_s: float = 0.0,
) -> Exchange:
    ex = make_exchange(
        method,
        target,
        status=status,
        response_body=orjson.dumps(orig),
        response_headers=J,
        replayed_status=None if rep is None else rstatus,
        replayed_body=b"" if rep is None else orjson.dumps(rep),
        replayed_headers=J,
        latency_ns=int(latency_ms * 1e6),
        replay_latency_ns=int(rlatency_ms * 1e6),
        ts_ns=1_700_000_000_000_000_000 + int(ts_s * 1e9),
    )
    if rep is None:
        ex.replay_latency_ns = None
    if error:
        ex.replay_error = error
        ex.replayed = None
    if role:
        ex.meta["role"] = role
    return ex
