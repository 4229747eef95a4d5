"""Fuzz targets for the replay HTTP/2 client: arbitrary server bytes after the handshake
through one connection carrying three streams (each callback fires exactly once, with an
HTTP/2 response or a known error kind; nothing raises), and arbitrary prepared requests
through the HTTP/1-text -> HTTP/2 fields conversion and the h2 encoder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import hpack

from replaygate.replay._config import ReplayConfig, Target
from replaygate.replay._h2client import H2Mux
from replaygate.replay._h2conn import H2Conn, Stream
from replaygate.replay._h2convert import to_h2
from replaygate.replay._stats import ReplayStats
from replaygate.replay.client import Result, Tracker

from ..protocol import h2frames as f

__all__ = ["SEEDS", "TARGETS"]

_KINDS = {"closed", "reset", "bad_response", "stream_reset", "headers_too_large", "timeout"}
_CUT = b"\x00|\x00"


class _Task:
    def add_done_callback(self, cb: Callable[..., Any]) -> None:
        pass

    def cancel(self) -> None:
        pass


class _Loop:
    """Runs ``call_soon`` callbacks when :meth:`drain` is called."""

    def __init__(self) -> None:
        self.todo: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def call_soon(self, cb: Callable[..., Any], *args: Any) -> None:
        self.todo.append((cb, args))

    def create_task(self, coro: Any) -> _Task:
        coro.close()  # no new connections in the fuzz target
        return _Task()

    def drain(self) -> None:
        while self.todo:
            cb, args = self.todo.pop(0)
            cb(*args)


class _Transport:
    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str) -> None:
        return None


def h2_client_responses(data: bytes) -> None:
    """Server bytes (pieces cut at ``\\0|\\0``) to a connection with streams 1, 3 and 5."""
    loop = _Loop()
    cfg = ReplayConfig(targets=["http://127.0.0.1:1"], max_header_size=4096)
    mux = H2Mux(
        loop,  # type: ignore[arg-type]
        Target.parse("http://127.0.0.1:1"),
        cfg,
        None,
        ReplayStats(),
        Tracker(),
    )
    conn = H2Conn(mux)
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    conn.ready = True
    mux.conns.append(conn)
    got: dict[int, list[Result]] = {}
    for i in range(3):
        fields, body, trailers = to_h2(b"POST /x HTTP/1.1\r\nHost: a\r\n\r\nbody", b"http", b"a")
        st = Stream(fields, body, trailers, got.setdefault(i, []).append)
        conn.start(st)
    for piece in data.split(_CUT):
        if conn.closed:
            break
        conn.data_received(piece)
        loop.drain()
    conn.check_timeout(float("inf"))
    conn.connection_lost(None)
    loop.drain()
    for st in mux.queue:  # sent again: would go out on a new connection (not opened here)
        assert st.tries == 1
        st.cb(Result(error="closed"))
    for results in got.values():
        assert len(results) == 1, results
        res = results[0]
        if res.error is None:
            assert res.raw is not None and res.raw.startswith(b"HTTP/2 ")
        else:
            assert res.error in _KINDS, res.error


def h2_request_fields(data: bytes) -> None:
    """A prepared request as HTTP/2 fields, encoded by the h2 state machine we drive."""
    fields, body, trailers = to_h2(data, b"https", b"stage.test")
    c = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
        )
    )
    c.initiate_connection()
    c.send_headers(1, fields, end_stream=not body and trailers is None)
    if body:
        c.send_data(1, body[: c.local_flow_control_window(1)][:16384], end_stream=trailers is None)
    c.data_to_send()


def _server(*frames: bytes) -> bytes:
    return f.frame(f.SETTINGS, 0, 0, b"") + f.frame(f.SETTINGS, 1, 0, b"") + b"".join(frames)


def _seeds() -> list[bytes]:
    s = f.Side()
    ok = s.headers(1, [(":status", "200"), ("content-type", "application/json")])
    ok += s.data(1, b'{"a": 1}', end=True)
    grpc = s.headers(3, [(":status", "200"), ("content-type", "application/grpc")])
    grpc += s.data(3, b"\0\0\0\0\x02\x08\x01", end=False) + s.headers(
        3, [("grpc-status", "0")], end=True
    )
    rst = f.frame(f.RST, 0, 5, b"\0\0\0\x07")
    goaway = f.frame(f.GOAWAY, 0, 0, b"\0\0\0\x01\0\0\0\0")
    return [_server(ok, grpc, rst), _server(ok) + _CUT + grpc + _CUT + goaway]


TARGETS: dict[str, Callable[[bytes], None]] = {
    "h2_client_responses": h2_client_responses,
    "h2_request_fields": h2_request_fields,
}
SEEDS: dict[str, list[bytes]] = {
    "h2_client_responses": _seeds(),
    "h2_request_fields": [
        b"GET /a?b=1 HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n\r\n",
        b"POST /s.S/M HTTP/2\r\nhost: g\r\ncontent-type: application/grpc\r\nte: trailers\r\n"
        b"transfer-encoding: chunked\r\n\r\n7\r\n\0\0\0\0\x02\x08\x01\r\n0\r\ngrpc-x: 1\r\n\r\n",
        b"GET http://prod.test:81/x HTTP/1.1\r\nConnection: close\r\n\r\n",
        hpack.Encoder().encode([(b"x", b"y")]),
    ],
}
