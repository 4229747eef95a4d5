"""The replay HTTP/1.x client: an asyncio ``Protocol`` that writes recorded bytes as they are.

Why not aiohttp/httpx: they rebuild requests from parsed parts (losing header order, case and
duplicates) and cost 10-400x more per request. This client writes the request bytes it is
given, unchanged, and frames the response with httptools (llhttp): Content-Length, chunked,
close-delimited, no body for HEAD/204/304, 1xx interim responses kept apart. One connection
carries one request at a time (no pipelining); the raw response bytes are kept exactly.

Error kinds (recorded per exchange in ``ex.replay_error``): ``connect_refused``,
``connect_timeout``, ``connect_error``, ``dns``, ``tls``, ``reset``, ``closed`` (the server
closed before the response was complete), ``timeout`` (no complete response within the
response timeout, counted from the first byte written to the last byte received, interim
``1xx`` responses included), ``bad_response`` (bytes that are not HTTP),
``headers_too_large`` (the response head, interim heads included, exceeds ``max_header``
bytes, or more than :data:`MAX_INTERIM` interim responses came).

A response longer than ``max_response`` bytes is not an error: its first ``max_response``
bytes are kept (``Result.truncated``; the engine flags the exchange ``replay_truncated``)
and the connection is closed, since the rest of the body would desynchronise it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import httptools

from ._config import Target

__all__ = [
    "DEFAULT_MAX_HEADER",
    "DEFAULT_MAX_RESPONSE",
    "MAX_INTERIM",
    "ConnectError",
    "Connection",
    "ReplayConnection",
    "Result",
    "Tracker",
    "connect",
    "make_ssl_context",
    "prepare_request",
]

_perf_ns = time.perf_counter_ns
_time_ns = time.time_ns

DEFAULT_MAX_RESPONSE = 64 << 20  # bytes of one response (head + body) kept
DEFAULT_MAX_HEADER = 1 << 20  # bytes of response heads (interim ones included)
MAX_INTERIM = 32  # interim (1xx) responses before the final one


@dataclass(slots=True)
class Result:
    """What one request got: a raw final response or an error kind, with timings."""

    raw: bytes | None = None
    head_len: int = 0
    status: int = 0
    interim: tuple[bytes, ...] = ()  # 1xx heads before the final response (rare)
    error: str | None = None
    sent_ns: int = 0  # wall clock, first byte written
    sent_perf: int = 0  # perf counter, first byte written
    done_perf: int = 0  # perf counter, last byte received
    received_any: bool = False
    truncated: bool = False  # longer than max_response: only its first bytes are kept


class Tracked(Protocol):
    """A connection the engine closes at the end and sweeps for timeouts."""

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def check_timeout(self, now: float) -> None: ...


class ReplayConnection(Tracked, Protocol):
    """What a lane or worker keeps in its slot per target: an HTTP/1 :class:`Connection`,
    or a handle on a target's HTTP/2 streams (:mod:`._h2client`)."""

    closed: bool
    uses: int

    def send(self, raw: bytes, head_only: bool, cb: Callable[[Result], None]) -> None: ...

    def request(self, raw: bytes, head_only: bool) -> asyncio.Future[Result]: ...


class Tracker:
    """The engine's view of its connections: all open ones, and those awaiting a response."""

    def __init__(self) -> None:
        self.open: set[Tracked] = set()
        self.waiting: set[Tracked] = set()

    async def close_all(self, timeout: float = 2.0) -> None:
        """Close every open connection and wait (bounded) until the transports are gone, so
        TLS shutdowns complete before the loop closes."""
        for c in list(self.open):
            c.close()
        deadline = time.monotonic() + timeout
        while self.open and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for c in list(self.open):
            c.abort()
        await asyncio.sleep(0)


class ConnectError(Exception):
    """Connecting failed; ``kind`` is the error kind recorded on the exchange."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def _head_end(buf: bytes, start: int) -> int:
    """Index just after the blank line ending a head at ``start``, or -1."""
    i = buf.find(b"\r\n\r\n", start)
    j = buf.find(b"\n\n", start, i + 2 if i >= 0 else len(buf))  # bare-LF heads only
    if j >= 0:
        return j + 2
    return -1 if i < 0 else i + 4


def _status_of(head: bytes) -> int:
    parts = head.split(b" ", 2)
    try:
        return int(parts[1][:3]) if len(parts) > 1 else 0
    except ValueError:
        return 0


def _has_length_framing(head: bytes) -> bool:
    low = head.lower()
    return b"\ncontent-length:" in low or b"\ntransfer-encoding:" in low


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``request()`` returns a future of :class:`Result`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        tracker: Tracker | None = None,
        *,
        max_response: int = DEFAULT_MAX_RESPONSE,
        max_header: int = DEFAULT_MAX_HEADER,
    ) -> None:
        self.loop = loop
        self.timeout = timeout
        self.max_response = max_response
        self.max_header = min(max_header, max_response)
        t = tracker if tracker is not None else Tracker()
        # open connections (closed cleanly at the end) and those with a request in flight
        # (swept for timeouts by the engine)
        self.open = t.open
        self.waiting = t.waiting
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.uses = 0
        self._cb: Callable[[Result], None] | None = None
        self._res: Result | None = None
        self._chunks: list[bytes] = []
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False
        self._complete = False
        self._keep_alive = True
        self._msg_start = 0
        self._status = 0
        self._size = 0  # bytes received for the pending request
        self._check_at = 0  # _size beyond which the limits are checked (rarely reached)
        self._too_large: str | None = None  # set by a callback: finish with this error
        self.deadline = 0.0  # monotonic time by which the pending response must be complete

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.open.add(self)

    def data_received(self, data: bytes) -> None:
        if self._cb is None:
            # Bytes nobody asked for (no pipelining): the framing is lost, drop the connection.
            self.close()
            return
        res = self._res
        assert res is not None
        res.received_any = True
        self._size += len(data)
        if self._size > self._check_at and self._over_limits(data):
            return
        self._chunks.append(data)
        if self._head_only:
            self._scan_head_only()
        else:
            try:
                assert self._parser is not None
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._complete = True
                self._keep_alive = False
            except httptools.HttpParserError:
                self._finish_error("bad_response")
                self.close()
                return
        if self._too_large is not None:
            self._finish_error(self._too_large)
            self.close()
        elif self._complete:
            self._finish_ok()

    def _over_limits(self, data: bytes) -> bool:
        """``data`` takes the pending response past ``_check_at`` bytes. True when the
        response was finished here: a head longer than ``max_header`` (error), or a body
        cut at ``max_response`` bytes (kept, ``truncated``)."""
        if self._check_at < self.max_response:  # still checking the head
            buf = b"".join([*self._chunks, data])
            if _head_end(buf, self._msg_start) < 0:
                self._chunks = []
                self._finish_error("headers_too_large")
                self.close()
                return True
            self._chunks = [buf[: len(buf) - len(data)]]
            self._check_at = self.max_response  # the head is complete: next, the body limit
            if self._size <= self.max_response:
                return False
        assert self._res is not None
        self._res.truncated = True
        self._chunks.append(data[: len(data) - (self._size - self.max_response)])
        self._keep_alive = False
        self._finish_ok()
        return True

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost does the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.open.discard(self)
        if self._cb is None:
            return
        if not self._head_only and self._close_delimited():
            self._complete = True
            self._keep_alive = False
            self._finish_ok()
            return
        if isinstance(exc, ConnectionResetError):
            self._finish_error("reset")
        elif isinstance(exc, ssl.SSLError):
            self._finish_error("tls")
        else:
            self._finish_error("closed")

    # -- httptools callbacks ---------------------------------------------------------------
    def on_message_complete(self) -> None:
        p = self._parser
        assert p is not None
        status = p.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim response (100 Continue, 103 Early Hints): keep it apart, read on.
            buf = b"".join(self._chunks)
            end = _head_end(buf, self._msg_start)
            if end < 0:
                end = len(buf)
            self._interim(buf, end)
            return
        self._complete = True
        self._status = status
        self._keep_alive = p.should_keep_alive()

    def _interim(self, buf: bytes, end: int) -> None:
        """Keep the interim head ``buf[_msg_start:end]`` apart and move past it. Endless
        interim responses hit ``MAX_INTERIM`` or ``max_header`` (``_too_large``); the buffer is
        compacted so that many of them cost linear time."""
        res = self._res
        assert res is not None
        if len(res.interim) >= MAX_INTERIM or end > self.max_header:
            self._too_large = "headers_too_large"
            self._chunks = [buf]
            return
        res.interim += (buf[self._msg_start : end],)
        self._msg_start = end
        self._chunks = [buf]

    # -- requests ------------------------------------------------------------------------
    def request(self, raw: bytes, head_only: bool) -> asyncio.Future[Result]:
        """Write ``raw`` and return a future resolved with the response (never raises)."""
        fut: asyncio.Future[Result] = self.loop.create_future()

        def done(res: Result) -> None:
            if not fut.done():
                fut.set_result(res)

        self.send(raw, head_only, done)
        return fut

    def send(self, raw: bytes, head_only: bool, cb: Callable[[Result], None]) -> None:
        """Write ``raw``; ``cb(result)`` is called once, from the event loop, never from
        inside this call (the engine's fast lanes chain requests through it)."""
        res = Result()
        if self.closed or self.transport is None or self.transport.is_closing():
            res.error = "closed"
            self.loop.call_soon(cb, res)
            return
        self._cb = cb
        self._res = res
        self._chunks = []
        self._msg_start = 0
        self._size = 0
        self._check_at = self.max_header
        self._too_large = None
        self._complete = False
        self._keep_alive = True
        self._head_only = head_only
        if not head_only and self._parser is None:
            # one parser per connection: llhttp resets itself after each message
            self._parser = httptools.HttpResponseParser(self)
        self.deadline = time.monotonic() + self.timeout
        self.waiting.add(self)
        self.uses += 1
        res.sent_ns = _time_ns()
        res.sent_perf = _perf_ns()
        self.transport.write(raw)

    def _scan_head_only(self) -> None:
        buf = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        while True:
            end = _head_end(buf, self._msg_start)
            if end < 0:
                return
            status = _status_of(buf[self._msg_start : self._msg_start + 16])
            if 100 <= status < 200 and status != 101:
                self._interim(buf, end)
                if self._too_large is not None:
                    return
                buf = self._chunks[0]
                continue
            self._chunks = [buf[:end]]
            self._complete = True
            low = buf[self._msg_start : end].lower()
            self._keep_alive = b"connection: close" not in low and not low.startswith(b"http/1.0")
            return

    def _close_delimited(self) -> bool:
        buf = b"".join(self._chunks)
        end = _head_end(buf, self._msg_start)
        if end < 0:
            return False
        return not _has_length_framing(buf[self._msg_start : end])

    def _finish_ok(self) -> None:
        cb, res = self._cb, self._res
        assert cb is not None and res is not None
        res.done_perf = _perf_ns()
        chunks = self._chunks
        buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        raw = buf[self._msg_start :] if self._msg_start else buf
        res.raw = raw
        # the head's end (as _head_end(raw, 0), inline: this runs for every response)
        crlf = raw.find(b"\r\n\r\n")
        lf = raw.find(b"\n\n", 0, crlf + 2 if crlf >= 0 else len(raw))
        res.head_len = lf + 2 if lf >= 0 else crlf + 4 if crlf >= 0 else len(raw)
        res.status = self._status or _status_of(raw[:16])
        self._status = 0
        # _reset(), inline
        self._cb = None
        self._res = None
        self._chunks = []
        self.deadline = 0.0
        self.waiting.discard(self)
        if not self._keep_alive:
            self.close()
        cb(res)

    def _finish_error(self, kind: str) -> None:
        cb, res = self._cb, self._res
        assert cb is not None and res is not None
        res.error = kind
        res.done_perf = _perf_ns()
        self._reset()
        cb(res)

    def _reset(self) -> None:
        self._cb = None
        self._res = None
        self._chunks = []
        self.deadline = 0.0
        self.waiting.discard(self)

    def check_timeout(self, now: float) -> None:
        """Called by the engine's sweeper (cheaper than one timer per request)."""
        if self._cb is not None and self.deadline and now >= self.deadline:
            self._finish_error("timeout")
            self.close()  # the late response would desynchronise the connection

    def close(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def make_ssl_context(
    insecure: bool = False, ca_file: str | None = None, alpn: str = "http/1.1"
) -> ssl.SSLContext:
    """Verify by default (system CAs or ``ca_file``); ``insecure`` turns verification off.
    ``alpn``: the one protocol offered (``h2`` for ``--http2``)."""
    from ..errors import ConfigError

    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"--ca-file: cannot load {ca_file!r}: {e}") from None
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([alpn])
    return ctx


async def connect(
    loop: asyncio.AbstractEventLoop,
    target: Target,
    *,
    connect_timeout: float,
    response_timeout: float,
    ssl_context: ssl.SSLContext | None,
    tracker: Tracker | None = None,
    max_response: int = DEFAULT_MAX_RESPONSE,
    max_header: int = DEFAULT_MAX_HEADER,
) -> Connection:
    """Open a connection to ``target``; raises :class:`ConnectError` with the error kind."""
    conn = Connection(
        loop, response_timeout, tracker, max_response=max_response, max_header=max_header
    )
    await open_transport(loop, conn, conn.abort, target, ssl_context, connect_timeout)
    return conn


async def open_transport(
    loop: asyncio.AbstractEventLoop,
    conn: asyncio.BaseProtocol,
    abort: Callable[[], None],
    target: Target,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
) -> None:
    """Connect the protocol ``conn`` to ``target`` (HTTP/1 and HTTP/2 clients alike); raises
    :class:`ConnectError` with the error kind (``abort`` drops a connection that timed out)."""
    try:
        await asyncio.wait_for(
            loop.create_connection(
                lambda: conn,
                target.host,
                target.port,
                ssl=ssl_context if target.tls else None,
                server_hostname=target.host if target.tls else None,
            ),
            connect_timeout,
        )
    except TimeoutError:
        abort()
        raise ConnectError("connect_timeout") from None
    except ConnectionRefusedError as e:
        raise ConnectError("connect_refused", str(e)) from None
    except ssl.SSLError as e:
        raise ConnectError("tls", str(e)) from None
    except socket.gaierror as e:
        raise ConnectError("dns", str(e)) from None
    except ConnectionResetError as e:
        raise ConnectError("reset", str(e)) from None
    except OSError as e:
        raise ConnectError("connect_error", str(e)) from None


# ------------------------------------------------------------------------------------------
# Request preparation: the only changes made to recorded bytes
# ------------------------------------------------------------------------------------------


def prepare_request(raw: bytes, head_len: int, host: bytes | None, prefix: bytes = b"") -> bytes:
    """The bytes to send: ``raw`` with the Host value replaced by ``host`` (None keeps it),
    ``prefix`` prepended to an origin-form target, and Content-Length corrected when it does
    not match the (non-chunked) body; an ``HTTP/2`` request line says ``HTTP/1.1`` (the
    replay speaks HTTP/1.1; trailers already ride in a chunked body). Everything else is
    kept byte for byte.

    This runs for every request sent: the common case (an HTTP/1.1 line, a Host header)
    costs a handful of searches; single bytes are compared as ints (cheaper than slices),
    and a search only runs where it may find something (the request line's end only when
    ``HTTP/2`` occurs, the first space only when the target does not follow ``GET``, ``POST``
    and the like)."""
    head = raw if head_len >= len(raw) else raw[:head_len]
    low = head.lower()
    changed = False
    if head.find(b" HTTP/2") >= 0:  # rare: then look at the request line's end
        eol = head.find(b"\n")
        if (
            eol >= 7
            and (head[eol - 1] == 50 or (head[eol - 1] == 13 and head[eol - 2] == 50))
            and (head[eol - 8 : eol] == b" HTTP/2\r" or head[eol - 7 : eol] == b" HTTP/2")
        ):
            cut = head.rfind(b" HTTP/2", 0, eol)
            head = head[:cut] + b" HTTP/1.1" + head[cut + 7 :]
            low = head.lower()
            changed = True
    if host is not None:
        i = low.find(b"\nhost:")
        if i >= 0:
            j = head.find(b"\n", i + 6)
            if j < 0:
                j = len(head)
            end = j - 1 if head[j - 1] == 13 else j  # 13: "\r"
            # the value after "host:" and one space (32), the usual; else skip the blanks
            vstart = i + 7
            usual = vstart < end and head[i + 6] == 32 and head[vstart] not in (32, 9)
            if not usual:
                vstart = i + 6
                while vstart < end and head[vstart] in (32, 9):
                    vstart += 1
            if head[vstart:end] != host:
                # "host:" and one space, as they are: one concatenation less
                head = (head[:vstart] if usual else head[: i + 6] + b" ") + host + head[end:]
                changed = True
        elif b"http/1.1\r\n" in low[:8192] or b"http/1.1\n" in low[:8192]:
            eol = head.find(b"\n")
            if eol >= 0:
                head = head[: eol + 1] + b"Host: " + host + b"\r\n" + head[eol + 1 :]
                changed = True
    # origin-form after a 3- or 4-letter method (GET, POST, ...) with no prefix: nothing to
    # do for the target (the first space is at most at 4, so no "http://" can follow it)
    if prefix or (head[3:5] != b" /" and head[4:6] != b" /"):
        sp = head.find(b" ")
        if (
            host is not None
            and sp >= 0
            and (sp + 1 == len(head) or head[sp + 1] != 47)  # 47: "/"
            and head[sp + 1 : sp + 9].lower().startswith((b"http://", b"https://"))
        ):
            start = head.find(b"://", sp) + 3
            ends = [i for i in (head.find(b" ", start), head.find(b"\r", start)) if i >= 0]
            nl = head.find(b"\n", start)
            end = min([*ends, nl if nl >= 0 else len(head)])
            slash = head.find(b"/", start, end)
            qm = head.find(b"?", start, end)
            cut = min(x for x in (slash, qm, end) if x >= 0)
            rest = head[cut:end] if cut < end else b""
            if not rest.startswith(b"/"):
                rest = b"/" + rest
            head = head[: sp + 1] + rest + head[end:]
            changed = True
        if prefix and sp >= 0 and head[sp + 1 : sp + 2] == b"/":
            head = head[: sp + 1] + prefix + head[sp + 1 :]
            changed = True
    body_len = len(raw) - head_len
    if low.find(b"\ncontent-length:") >= 0 or (body_len and low.find(b"\ntransfer-encoding:") < 0):
        head, fixed = _fix_content_length(head, body_len)
        changed = changed or fixed
    if not changed:
        return raw
    return head + raw[head_len:] if head_len < len(raw) else head


def _fix_content_length(head: bytes, body_len: int) -> tuple[bytes, bool]:
    low = head.lower()
    if b"\ntransfer-encoding:" in low:
        return head, False
    want = str(body_len).encode()
    i = low.find(b"\ncontent-length:")
    if i < 0:
        # a body without framing: say how long it is (only for bodies that exist)
        end = len(head) - (4 if head.endswith(b"\r\n\r\n") else 2)
        return head[:end] + b"\r\nContent-Length: " + want + head[end:], True
    j = head.find(b"\n", i + 1)
    end = j - 1 if head[j - 1 : j] == b"\r" else j
    if head[i + 16 : end].strip() == want:
        return head, False
    return head[: i + 16] + b" " + want + head[end:], True
