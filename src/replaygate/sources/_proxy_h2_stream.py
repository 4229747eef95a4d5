"""One HTTP/2 stream of a proxied client connection: its state, what the upstream side
calls on it, and the exchange it is recorded as (written as :mod:`replaygate.protocol.h2msg`
describes). The connection it belongs to is :class:`~._proxy_h2.H2Conn`."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import h2.errors

from ..model import ConnectionId, Exchange, Flag, new_exchange_id
from ..protocol import h2msg

if TYPE_CHECKING:
    from ._proxy_h2 import H2Conn
    from ._proxy_h2_up import Upstream

__all__ = ["GRPC_NEEDS_HTTP2", "Stream", "decode", "error_name", "exchange_of"]

GRPC_NEEDS_HTTP2 = (
    "gRPC calls arrived but the upstream is HTTP/1.1: they were answered UNAVAILABLE and not "
    "recorded (counted grpc_needs_http2_upstream); start the proxy with --upstream-http2"
)

LOW = 64 << 10  # below this, a paused side is read again
HIGH = 256 << 10  # above this, the side that fills a stream's queue is paused


def error_name(code: int) -> str:
    try:
        return str(h2.errors.ErrorCodes(code).name)
    except ValueError:
        return str(code)


def decode(headers: Any) -> list[tuple[str, str]]:
    return [
        (
            k.decode("latin-1") if isinstance(k, bytes) else k,
            v.decode("latin-1") if isinstance(v, bytes) else v,
        )
        for k, v in headers
    ]


class Stream:
    """One client stream: what is recorded of it, and its way through the proxy."""

    def __init__(self, conn: H2Conn, sid: int, fields: list[tuple[str, str]], seq: int) -> None:
        self.conn = conn
        self.sid = sid
        self.seq = seq
        self.fields = fields
        now = time.time_ns()
        self.req_ts = [now, now]
        self.req_body: list[bytes] = []
        self.req_kept = 0
        self.req_cut = False
        self.req_trailers: list[tuple[str, str]] | None = None
        self.req_ended = False
        self.unacked = 0  # client DATA taken but not yet acknowledged (upstream is full)
        self.up: Upstream | None = None
        self.up_state: Any = None  # the upstream's own per-stream state
        self.forwarded = False  # the upstream accepted the request (connected)
        self.interim: list[tuple[list[tuple[str, str]], int]] = []
        self.resp_fields: list[tuple[str, str]] | None = None
        self.resp_ts = [0, 0]
        self.resp_body: list[bytes] = []
        self.resp_kept = 0
        self.resp_cut = False
        self.resp_trailers: list[tuple[str, str]] | None = None
        self.headers_sent = False  # a final response head went to the client
        self.resp_done = False  # the upstream finished the response
        self.resp_sent = False  # ... and the client was told (END_STREAM)
        self.out: deque[bytes] = deque()
        self.out_bytes = 0
        self.up_paused = False
        self.reset: str | None = None
        self.closed = False

    def keep(self, body: list[bytes], kept: int, data: bytes) -> tuple[int, bool]:
        room = self.conn.front.sh.max_record - kept
        if len(data) > room:
            data = data[: max(room, 0)]
            cut = True
        else:
            cut = False
        if data:
            body.append(data)
        return kept + len(data), cut

    # -- called by the upstream ----------------------------------------------------------------
    def on_informational(self, fields: list[tuple[str, str]]) -> None:
        self.interim.append((fields, time.time_ns()))
        self.conn.send_headers(self, fields, end=False)

    def on_response(self, fields: list[tuple[str, str]], end: bool = False) -> None:
        now = time.time_ns()
        self.resp_fields = fields
        self.resp_ts = [now, now]
        self.headers_sent = True
        self.conn.send_headers(self, fields, end=end)
        if end:
            self.resp_done = self.resp_sent = True
            self.conn.maybe_done(self)

    def on_data(self, data: bytes) -> None:
        self.resp_ts[1] = time.time_ns()
        self.resp_kept, cut = self.keep(self.resp_body, self.resp_kept, data)
        self.resp_cut |= cut
        self.out.append(data)
        self.out_bytes += len(data)
        self.conn.flush(self)

    def on_end(self, trailers: list[tuple[str, str]] | None) -> None:
        self.resp_ts[1] = time.time_ns()
        self.resp_trailers = trailers
        self.resp_done = True
        self.conn.flush(self)

    def on_error(self, message: str, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        """The upstream failed this stream: a 502 if nothing was answered yet, else reset."""
        if self.closed:
            return
        self.resp_done = True
        if self.resp_fields is None and not self.conn.closing:
            self.conn.bad_gateway(self, message)
        else:
            self.conn.reset_stream(self, code)

    def on_reset(self, code: int) -> None:
        self.conn.front.count("h2_resets_from_upstream")
        self.resp_done = True
        self.conn.reset_stream(self, code)

    def up_drained(self) -> None:
        self.conn.ack(self)


def exchange_of(
    st: Stream, cid: ConnectionId, scheme: str, via: str, count: Callable[[str], None]
) -> Exchange | None:
    """The recording of a finished stream (None, counted, if its request cannot be written)."""
    try:
        req, meta = h2msg.build_request(
            st.fields, b"".join(st.req_body), st.req_trailers,
            ts_first_ns=st.req_ts[0], ts_last_ns=st.req_ts[1],
        )  # fmt: skip
    except h2msg.FieldError:
        count("h2_bad_fields")
        return None
    meta.setdefault("scheme", scheme)
    meta["h2.stream"] = str(st.sid)
    meta["h2.via"] = via
    if st.reset is not None:
        meta["h2.reset"] = st.reset
    ex = Exchange(id=new_exchange_id(), request=req, conn=cid, seq=st.seq, meta=meta)
    if st.req_cut or not st.req_ended:
        ex.flags.add(Flag.REQUEST_TRUNCATED)
    try:
        for fields, ts in st.interim:
            ex.interim.append(h2msg.build_response(fields, ts_first_ns=ts, ts_last_ns=ts))
        if st.resp_fields is not None:
            ex.response = h2msg.build_response(
                st.resp_fields, b"".join(st.resp_body), st.resp_trailers,
                ts_first_ns=st.resp_ts[0], ts_last_ns=st.resp_ts[1] or st.resp_ts[0],
            )  # fmt: skip
            if st.resp_cut or not st.resp_sent:
                ex.flags.add(Flag.RESPONSE_TRUNCATED)
    except h2msg.FieldError:
        count("h2_bad_fields")
        ex.flags.add(Flag.PARSE_ERROR)
    if ex.response is None:
        ex.flags.add(Flag.NO_RESPONSE)
    return ex
