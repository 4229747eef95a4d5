"""Pairs the request and response framers of one proxied connection into exchanges
(sans-I/O): :class:`ConnectionRecorder` gets the bytes of both directions and emits
:class:`~replaygate.model.Exchange` objects with exact raw bytes, in request order, with
interim (1xx) responses, upgrade/CONNECT tunnels and honest flags for whatever ended early.
The framing itself is :mod:`.h1framer`'s; the rules a client's bytes must follow are
:mod:`.h1rules`'.

Fast path: most reads carry exactly one whole message (a request head, with its body when
it has a ``Content-Length``; a response with a ``Content-Length`` body). When both framers
are between messages, such a read is framed here in a few steps (the same rules, the same
head check, the same resulting messages) instead of by the framers' general state machine;
anything else (chunked, upgrades, 1xx, HEAD, pipelining, a message split over reads, a
refusal) goes the general way. ``tests/protocol/test_h1recorder.py`` holds the two paths to
the same exchanges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import ConnectionId, Exchange, Flag, Request, Response, new_exchange_id
from .h1framer import MAX_HEAD, STATE_HEAD, STATE_WAIT, Framer, Message
from .h1rules import Limits, find_blank_line, whole_request

__all__ = ["ConnectionRecorder"]


@dataclass(slots=True)
class _Pending:
    head_method: str
    request: Message | None = None
    interim: list[Message] = field(default_factory=list)
    response: Message | None = None


class ConnectionRecorder:
    """Pairs the two framers of one proxied connection into exchanges.

    ``emit`` receives each exchange as soon as it is complete (request and final response
    both seen), in request order. ``on_tunnel`` is called when the connection switches to a
    tunnel (101 Switching Protocols, or 2xx to CONNECT).

    ``strict`` (the proxy): client bytes are checked before they may be forwarded;
    :meth:`feed_request` returns what may go upstream now, :meth:`take_forward` what was
    released later by the upstream's answer (an upgrade accepted or refused), and
    :attr:`rejected` says why the client is refused, once it is.
    """

    def __init__(
        self,
        conn: ConnectionId | None,
        emit: Callable[[Exchange], None],
        *,
        max_record: int = 256 << 20,
        on_tunnel: Callable[[], None] | None = None,
        strict: bool = False,
        limits: Limits = Limits(),
        emit_whole: Callable[[bytes, int, int, bytes, int, int], None] | None = None,
    ) -> None:
        self.conn = conn
        self._emit = emit
        # The fast path's plain exchange (a whole request, alone in flight, and its whole
        # response) as (request bytes, its first and last byte times, response bytes, its
        # time, seq) instead of an Exchange. Such a request waits in ``_plain`` as a tuple
        # rather than as a _Pending in ``_pending`` (no objects built for it); anything
        # else first turns it into one (``_materialize``): _plain is set only while
        # _pending is empty.
        self._emit_whole = emit_whole
        self._plain: tuple[str, bytes, int, int] | None = None
        self._on_tunnel = on_tunnel
        self._pending: deque[_Pending] = deque()
        self._answered = 0  # how many entries of _pending have a final response
        self.req = Framer(
            is_response=False,
            max_record=max_record,
            on_message=self._on_request,
            strict=strict,
            limits=limits,
        )
        self.resp = Framer(
            is_response=True,
            request_method=self._method,
            max_record=max_record,
            on_message=self._on_response,
            limits=limits,
        )
        self._seq = 0
        self.requests = 0
        self.final_responses = 0
        self.without_response = 0
        self._partial = 0  # 1 once a refused request was recorded as far as it was forwarded
        self.fast = True  # the fast path (see the module's docstring); off: general path only

    @property
    def rejected(self) -> tuple[int, str] | None:
        """(status, reason) once the client's bytes were refused (strict only)."""
        return self.req.rejected

    @property
    def buffered(self) -> int:
        return self.req.buffered + self.resp.buffered

    @property
    def rejected_after(self) -> int:
        """Complete requests forwarded before the refused one."""
        return self.requests - self._partial

    @property
    def answered_before_rejection(self) -> bool:
        """Every request forwarded before the refused one has its whole answer."""
        return self.final_responses >= self.rejected_after and self.resp._cur is None

    def take_forward(self) -> bytes:
        return self.req.take_forward()

    @property
    def idle(self) -> bool:
        """No request is waiting for its answer and no message is half-framed."""
        return (
            self._plain is None
            and not self._pending
            and self.req._cur is None
            and self.resp._cur is None
        )

    def _method(self) -> str:
        if self._answered < len(self._pending):
            return self._pending[self._answered].head_method
        return ""

    def feed_request(self, data: bytes, ts_ns: int) -> bytes:
        """Frame client bytes; returns the bytes that may be forwarded now (strict), or
        ``data`` itself (observing)."""
        r = self.req
        if r._state == STATE_HEAD and r._cur is None and not r._buf and r.strict and self.fast:
            whole = whole_request(data, r.limits)
            if whole is not None and len(data) <= r._max_record:
                method, end = whole
                self.requests += 1
                if self._emit_whole is not None and not self._pending and self._plain is None:
                    self._plain = (method, data, end, ts_ns)
                    return data
                if self._plain is not None:
                    self._materialize()
                self._pending.append(_Pending(method, Message(data, end, ts_ns, ts_ns, method)))
                return data
        if self._plain is not None:
            self._materialize()
        r.feed(data, ts_ns)
        # a head whose body is still coming must be known before its response can arrive
        self._note_head()
        return self.req.take_forward() if self.req.strict else data

    def _materialize(self) -> None:
        """The request waiting in ``_plain`` becomes the (only) entry of ``_pending``."""
        assert self._plain is not None and not self._pending
        method, data, end, ts_ns = self._plain
        self._plain = None
        self._pending.append(_Pending(method, Message(data, end, ts_ns, ts_ns, method)))

    def _note_head(self) -> None:
        cur = self.req._cur
        if (
            cur is not None
            and cur.method
            and not any(p.request is None and p.head_method for p in self._pending)
        ):
            self._pending.append(_Pending(cur.method))

    def _on_request(self, m: Message) -> None:
        self.requests += 1
        if self.req.rejected is not None:
            self._partial = 1
        for p in self._pending:
            if p.request is None:
                p.request = m
                break
        else:
            self._pending.append(_Pending(m.method, m))
        self._release()

    def feed_response(self, data: bytes, ts_ns: int) -> None:
        s = self.resp
        plain = self._plain
        if plain is not None:
            if s._state == STATE_HEAD and s._cur is None and not s._buf and self.fast:
                method, raw, _, ts = plain
                if method.upper() not in _BODYLESS_METHODS:
                    framed = _whole_response(data, s._max_record)
                    if framed is not None:
                        # the answer to the one request in flight, whole: done
                        self._plain = None
                        self.final_responses += 1
                        assert self._emit_whole is not None
                        self._emit_whole(raw, ts, ts, data, ts_ns, self._seq)
                        self._seq += 1
                        if self.req._state == STATE_WAIT:
                            self.req.resume(ts_ns)
                        return
            self._materialize()
        if (
            s._state == STATE_HEAD
            and s._cur is None
            and not s._buf
            and self._answered == 0
            and self._pending
            and self.fast
        ):
            p = self._pending[0]
            framed = _whole_response(data, s._max_record)
            req = p.request
            if (
                framed is not None
                and req is not None
                and p.head_method.upper() not in _BODYLESS_METHODS
            ):
                # the answer to the oldest request, whole: the exchange is complete
                self._pending.popleft()
                self.final_responses += 1
                if self._emit_whole is not None and not req.flags and not p.interim:
                    self._emit_whole(
                        req.raw, req.ts_first_ns, req.ts_last_ns, data, ts_ns, self._seq
                    )
                    self._seq += 1
                else:
                    resp = Response(data, ts_first_ns=ts_ns, ts_last_ns=ts_ns, head_len=framed)
                    self._emit(self._exchange(p, resp))
                if self.req._state == STATE_WAIT:
                    self.req.resume(ts_ns)
                return
        s.feed(data, ts_ns)

    def _on_response(self, m: Message) -> None:
        if self._answered >= len(self._pending):
            # a response nobody asked for (or whose request we could not frame)
            ex = Exchange(id=new_exchange_id(), request=Request(b"", head_len=0), conn=self.conn)
            ex.response = _response(m)
            ex.flags |= {Flag.ORPHAN_RESPONSE, *m.flags}
            self._emit(ex)
            return
        p = self._pending[self._answered]
        if 100 <= m.status < 200 and m.status != 101:
            p.interim.append(m)
            return
        p.response = m
        self._answered += 1
        self.final_responses += 1
        switching = m.status == 101 or (
            p.head_method.upper() == "CONNECT" and 200 <= m.status < 300
        )
        if switching:
            self.req.to_tunnel()
            self.resp.to_tunnel()
            m.flags.add(Flag.CONNECT if p.head_method.upper() == "CONNECT" else Flag.UPGRADE)
            if self._on_tunnel is not None:
                self._on_tunnel()
        self._release()
        if not switching:
            self.req.resume(m.ts_last_ns)

    def _release(self) -> None:
        while self._pending and self._answered > 0:
            p = self._pending[0]
            if p.request is None or p.response is None:
                return
            self._pending.popleft()
            self._answered -= 1
            self._emit(self._exchange(p))

    def _exchange(self, p: _Pending, response: Response | None = None) -> Exchange:
        r = p.request
        assert r is not None
        ex = Exchange(
            new_exchange_id(),
            Request(r.raw, ts_first_ns=r.ts_first_ns, ts_last_ns=r.ts_last_ns, head_len=r.head_len),
            conn=self.conn,
            seq=self._seq,
        )
        self._seq += 1
        if r.flags:
            ex.flags |= r.flags
        if response is not None:
            ex.response = response
        elif p.response is not None:
            ex.response = _response(p.response)
            ex.flags |= p.response.flags
        else:
            ex.flags.add(Flag.NO_RESPONSE)
            self.without_response += 1
        if p.interim:
            ex.interim = [_response(i) for i in p.interim]
        return ex

    def close(self, ts_ns: int) -> None:
        """The connection ended: emit what is left, flagged for what is missing."""
        if self._plain is not None:
            self._materialize()
        self.req.eof(ts_ns)
        self.resp.eof(ts_ns)
        while self._pending:
            p = self._pending.popleft()
            if self._answered:
                self._answered -= 1
            if p.request is None:
                if p.response is None:
                    continue  # head seen then connection lost: eof() emitted it truncated
                p.request = Message(b"", 0, 0, 0, flags={Flag.REQUEST_TRUNCATED})
            self._emit(self._exchange(p))


# methods whose answers are framed otherwise (no body; a tunnel)
_BODYLESS_METHODS = frozenset({"HEAD", "CONNECT"})
_STATUS_END = (b" ", b"\r", b"\n")


def _whole_response(data: bytes, max_record: int) -> int | None:
    """The head length of ``data`` when it is exactly one whole final response framed by one
    ``Content-Length`` (no ``Transfer-Encoding``; status 2xx-5xx other than 204 and 304) and
    kept whole; None for anything else (the general framer decides)."""
    if len(data) > max_record or data[8:9] != b" " or not data.startswith(b"HTTP/1."):
        return None
    code = data[9:12]
    if not code.isdigit() or data[12:13] not in _STATUS_END or code < b"200":
        return None
    if code == b"204" or code == b"304":
        return None
    end = find_blank_line(data, 0)
    if end < 0 or end > MAX_HEAD:
        return None
    low = data[:end].lower()
    pos = low.find(b"\ncontent-length")
    if (
        pos < 0
        or low.find(b"\ntransfer-encoding") >= 0  # find(), not ``in``: see h1rules
        or low.find(b"\ncontent-length", pos + 15) >= 0
    ):
        return None
    colon = pos + 15
    if low[colon] != 58:  # ':' right after the name (anything else: the general way)
        return None
    value = data[colon + 1 : low.find(b"\n", colon)].strip()
    if not value.isdigit() or len(value) > 18 or end + int(value) != len(data):
        return None
    return end


def _response(m: Message) -> Response:
    return Response(m.raw, ts_first_ns=m.ts_first_ns, ts_last_ns=m.ts_last_ns, head_len=m.head_len)
