"""Fuzz targets for the replay client: arbitrary server bytes through the response framing
(the callback fires exactly once, with raw bytes or a known error kind; nothing raises), and
arbitrary request bytes through request preparation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from replaygate.model import Exchange, Request, Response
from replaygate.replay._order import OrderGate, carried_values, credential, user_keys
from replaygate.replay.client import Connection, Result, prepare_request
from replaygate.replay.correlation import CorrelationHook

__all__ = ["SEEDS", "TARGETS", "frame_response"]

_KINDS = {"reset", "closed", "timeout", "bad_response", "tls"}
_CUT = b"\x00|\x00"


class _Loop:
    def call_soon(self, cb: Callable[..., Any], *args: Any) -> None:
        cb(*args)


class _Transport:
    def __init__(self) -> None:
        self.closing = False
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


def frame_response(data: bytes, head_only: bool = False) -> list[Result]:
    """Feed ``data`` (chunks cut at ``\\0|\\0``) as the server's answer, then EOF."""
    conn = Connection(_Loop(), 30.0)  # type: ignore[arg-type]
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    got: list[Result] = []
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", head_only, got.append)
    for chunk in data.split(_CUT):
        if conn.closed or got:
            break
        conn.data_received(chunk)
    if not got:
        conn.connection_lost(None)
    return got


def fuzz_response_framing(data: bytes) -> None:
    for head_only in (False, True):
        got = frame_response(data, head_only)
        assert len(got) == 1, got
        r = got[0]
        if r.error is None:
            assert r.raw is not None and r.raw in data.replace(_CUT, b"")
        else:
            assert r.error in _KINDS, r.error


def fuzz_prepare_request(data: bytes) -> None:
    out = prepare_request(data, Request(data).head_len, b"stage:1")
    assert isinstance(out, bytes)


_HOOK = CorrelationHook()


def fuzz_order_keys(data: bytes) -> None:
    """Request bytes (credentials, cookies, targets) and response bytes (issued values),
    split at ``\0|\0``, through the order gate's keys and both gate modes."""
    req_raw, _, resp_raw = data.partition(_CUT)
    ex = Exchange(id="x", request=Request(req_raw, ts_first_ns=1), response=Response(resp_raw))
    for spec in (None, "basic", "bearer", "auth", "cookie:sid", "header:X-User"):
        assert all(isinstance(k, str) for k in user_keys(ex, spec))
    list(carried_values(ex))
    for v in ex.request.header_values("authorization"):
        credential(v)
    for mode in ("recorded", "sessions"):
        gate = OrderGate(mode, issued=_HOOK.issued_values)
        for _ in range(2):
            item = gate.prepare(ex)
            assert gate.admit(item) in (True, False)
            gate.finish(item)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "replay.response_framing": fuzz_response_framing,
    "replay.prepare_request": fuzz_prepare_request,
    "replay.order_keys": fuzz_order_keys,
}

SEEDS: dict[str, list[bytes]] = {
    "replay.response_framing": [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nclose-delimited",
        b"HTTP/1.1 200 OK\r\nContent-Le\x00|\x00ngth: 5\r\n\r\nhel\x00|\x00lo",
    ],
    "replay.prepare_request": [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nabc",
        b"GET / HTTP/1.1\nhost:b\n\n",
    ],
    "replay.order_keys": [
        b"GET /items/abc?x=1 HTTP/1.1\r\nAuthorization: Basic YWxpY2U6cHc=\r\n"
        b"Cookie: sid=0123456789abcdef0123\r\n\r\n\x00|\x00HTTP/1.1 201 Created\r\n"
        b'Set-Cookie: sid=zz\r\nContent-Type: application/json\r\n\r\n{"id": "abc"}',
        b"POST /login HTTP/1.1\r\nAuthorization: Bearer a.eyJzdWIiOiJ1NDIifQ.b\r\n\r\n",
        b"GET / HTTP/1.1\r\nAuthorization: Basic !!!\r\nCookie: ;=;a\r\n\r\n\x00|\x00junk",
    ],
}
