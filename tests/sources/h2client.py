"""A small blocking HTTP/2 client (the ``h2`` library over a socket) for the proxy tests:
many streams on one connection, request bodies sent as the peer's windows allow, answers
read as they come (optionally acknowledged late, to exercise the proxy's flow control)."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

__all__ = ["Answer", "H2Request", "h2_exchange"]


@dataclass
class H2Request:
    path: str
    method: str = "GET"
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] | None = None
    reset_after_headers: bool = False  # send RST_STREAM (CANCEL) right after the headers


@dataclass
class Answer:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    reset: int | None = None
    ended: bool = False


def _dec(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode(), v.decode()) for k, v in headers]


def h2_exchange(
    port: int,
    requests: list[H2Request],
    *,
    tls: ssl.SSLContext | None = None,
    authority: str | None = None,
    ack_every: int = 1,
    goaway: bool = True,
    timeout: float = 60,
) -> list[Answer]:
    """Send every request at once on one connection and wait for every answer."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    answers = [Answer() for _ in requests]
    by_sid: dict[int, int] = {}
    pending: dict[int, bytes] = {}
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock: socket.socket = raw
    if tls is not None:
        sock = tls.wrap_socket(raw, server_hostname="localhost")
        assert sock.selected_alpn_protocol() == "h2"  # type: ignore[attr-defined]
    scheme = "https" if tls is not None else "http"
    with sock:
        for i, r in enumerate(requests):
            sid = conn.get_next_available_stream_id()
            by_sid[sid] = i
            fields = [(":method", r.method), (":scheme", scheme),
                      (":authority", authority or f"localhost:{port}"), (":path", r.path),
                      *r.headers]  # fmt: skip
            end = not r.body and r.trailers is None
            conn.send_headers(sid, fields, end_stream=end)
            if r.reset_after_headers:
                conn.reset_stream(sid)
                answers[i].ended = True
            elif not end:
                pending[sid] = r.body
        unacked: dict[int, int] = {}
        while True:
            for sid in list(pending):
                body = pending[sid]
                while body:
                    room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                    if room <= 0:
                        break
                    conn.send_data(sid, body[:room])
                    body = body[room:]
                pending[sid] = body
                if not body:
                    del pending[sid]
                    tr = requests[by_sid[sid]].trailers
                    if tr is not None:
                        conn.send_headers(sid, tr, end_stream=True)
                    else:
                        conn.end_stream(sid)
            sock.sendall(conn.data_to_send())
            if all(a.ended for a in answers):
                break
            data = sock.recv(65536)
            assert data, "the proxy closed the connection"
            for ev in conn.receive_data(data):
                i = by_sid.get(getattr(ev, "stream_id", 0), -1)
                if isinstance(ev, h2.events.ResponseReceived):
                    h = _dec(ev.headers)
                    answers[i].status = int(dict(h)[":status"])
                    answers[i].headers = h
                elif isinstance(ev, h2.events.DataReceived):
                    answers[i].body += ev.data
                    unacked[ev.stream_id] = unacked.get(ev.stream_id, 0) + ev.flow_controlled_length
                    if len(unacked) >= ack_every or ev.stream_ended:
                        for s, n in unacked.items():
                            conn.acknowledge_received_data(n, s)
                        unacked.clear()
                elif isinstance(ev, h2.events.TrailersReceived):
                    answers[i].trailers = _dec(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded):
                    answers[i].ended = True
                elif isinstance(ev, h2.events.StreamReset):
                    answers[i].reset = ev.error_code
                    answers[i].ended = True
                    pending.pop(ev.stream_id, None)
        if goaway:
            conn.close_connection()
            sock.sendall(conn.data_to_send())
    return answers
