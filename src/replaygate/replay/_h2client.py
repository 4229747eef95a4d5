"""The replay HTTP/2 client: streams multiplexed over a few connections per target.

``--http2`` sends every request as an HTTP/2 stream: cleartext targets (``http://``) with
prior knowledge (h2c, RFC 9113 section 3.3), ``https://`` targets over TLS with ALPN ``h2``
(a target that does not agree is a ``alpn`` connect error, never a silent HTTP/1.1).
Framing, HPACK and flow control are the ``h2`` library's (sans-I/O); this module is the I/O.

Shape: one :class:`H2Mux` per target holds up to ``--h2-connections`` :class:`H2Conn`, each
carrying at most ``--h2-streams`` streams at once (or fewer, when the server's
``SETTINGS_MAX_CONCURRENT_STREAMS`` says so). The engine's lanes and workers keep a
:class:`H2Handle` in their slot where an HTTP/1 lane keeps its connection; a request handed
to a handle goes to the least busy connection, a new one being opened while fewer than
``--h2-connections`` exist, and waits in the mux's queue when every stream is busy. So
``--concurrency`` still bounds the requests in flight, and the timing modes, sessions, order
and correlation of the engine apply unchanged.

Flow control: request bodies are sent as the peer's windows allow (resumed on
``WINDOW_UPDATE``), received data is acknowledged as it is consumed; our windows are large
(16 MiB per stream, 1 GiB per connection) so one slow stream never stalls the others.

Outcomes, as :class:`~replaygate.replay.client.Result` (the HTTP/1 client's error kinds, and
``alpn``, ``not_http2`` (no SETTINGS came back: an HTTP/1.x server), ``stream_reset``,
``bad_request``): the response is written as HTTP/1-style text
(:func:`replaygate.protocol.h2msg.build_response`: ``HTTP/2 <status>``, fields, the body, and
the trailers as a chunked body, so ``grpc-status`` reaches the gRPC comparison). A stream the
server never processed (``RST_STREAM REFUSED_STREAM``, or above the last stream id of a
``GOAWAY``, or on a connection that died before answering anything after earlier answers) is
sent again once on another connection; ``stats.http2`` counts ``goaway``, ``rst_stream``,
``refused_stream`` and ``retried``. A response over ``max_response`` bytes is kept cut
(``truncated``) and its stream cancelled; a head over ``max_header`` is ``headers_too_large``;
no answer within the response timeout is ``timeout`` (that stream is cancelled, the
connection goes on).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Callable

from ._config import ReplayConfig, Target
from ._h2conn import H2Conn, Stream
from ._h2convert import to_h2
from ._stats import ReplayStats
from .client import ConnectError, Result, Tracker, open_transport

__all__ = ["H2Handle", "H2Mux"]


class H2Handle:
    """What a lane or worker keeps in its slot for an HTTP/2 target: it sends through the
    target's :class:`H2Mux`; closing it closes nothing (the connections are shared)."""

    __slots__ = ("closed", "mux", "uses")

    def __init__(self, mux: H2Mux) -> None:
        self.mux = mux
        self.closed = False
        self.uses = 0  # never "reused": the mux retries unprocessed streams itself

    def send(self, raw: bytes, head_only: bool, cb: Callable[[Result], None]) -> None:
        """Send ``raw`` as a stream; ``cb(result)`` is called once, later, from the loop."""
        mux = self.mux
        try:
            fields, body, trailers = to_h2(raw, mux.scheme, mux.authority)
        except (IndexError, ValueError):
            mux.loop.call_soon(cb, Result(error="bad_request"))
            return
        mux.submit(Stream(fields, body, trailers, cb))  # results always come from the loop

    def request(self, raw: bytes, head_only: bool) -> asyncio.Future[Result]:
        fut: asyncio.Future[Result] = self.mux.loop.create_future()

        def done(res: Result) -> None:
            if not fut.done():
                fut.set_result(res)

        self.send(raw, head_only, done)
        return fut

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def check_timeout(self, now: float) -> None:
        pass


class H2Mux:
    """The HTTP/2 connections of one target and the requests waiting for a stream."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        target: Target,
        config: ReplayConfig,
        ssl_context: ssl.SSLContext | None,
        stats: ReplayStats,
        tracker: Tracker,
    ) -> None:
        self.loop = loop
        self.target = target
        self.ssl_context = ssl_context
        self.stats = stats
        self.tracker = tracker
        self.streams = config.h2_streams
        self.max_conns = config.h2_connections
        self.timeout = config.response_timeout
        self.connect_timeout = config.connect_timeout
        self.max_response = config.max_response_size
        self.max_header = min(config.max_header_size, config.max_response_size)
        self.scheme = target.scheme.encode()
        self.authority = target.host_header.encode("latin-1")
        self.conns: list[H2Conn] = []
        self.connecting = 0
        self._dialing: set[asyncio.Task[None]] = set()
        self.queue: collections.deque[Stream] = collections.deque()
        self.closed = False
        tracker.open.add(self)  # the engine's close_all closes us: no connect left pending

    def handle(self) -> H2Handle:
        return H2Handle(self)

    # -- dispatch --------------------------------------------------------------------------
    def submit(self, st: Stream) -> None:
        best: H2Conn | None = None
        room = 0
        for c in self.conns:
            cap = c.capacity
            if cap > room:
                best, room = c, cap
        busy = best is None or len(best.streams) > 0
        if busy and len(self.conns) + self.connecting < self.max_conns:
            self._open()
        if best is None:
            self.queue.append(st)
            return
        best.start(st)
        best.flush_soon()

    def pull(self, conn: H2Conn) -> None:
        """``conn`` has a free stream: start the oldest waiting request on it."""
        q = self.queue
        started = False
        while q and conn.capacity > 0:
            conn.start(q.popleft())
            started = True
        if started:
            conn.flush_soon()

    def deliver(self, st: Stream) -> None:
        self.loop.call_soon(st.cb, st.res)

    def conn_ready(self, conn: H2Conn) -> None:
        """``conn`` got the server's SETTINGS: it serves from now on. It is registered here,
        not when ``_connect`` resumes (a few loop turns later, after answers may have come)."""
        if not self.closed and not conn.closed and conn not in self.conns:
            self.conns.append(conn)
        self.pull(conn)

    def conn_gone(self, conn: H2Conn) -> None:
        """``conn`` takes no new streams (closed, or GOAWAY received)."""
        if conn in self.conns:
            self.conns.remove(conn)

    def refill(self) -> None:
        """Requests wait and no connection can take them: open one."""
        if (
            self.queue
            and not self.closed
            and not self.connecting
            and len(self.conns) < self.max_conns
            and not any(c.capacity > 0 for c in self.conns)
        ):
            self._open()

    # -- connections -----------------------------------------------------------------------
    def _open(self) -> None:
        self.connecting += 1
        task = self.loop.create_task(self._connect())
        self._dialing.add(task)
        task.add_done_callback(self._dialing.discard)

    async def _connect(self) -> None:
        try:
            conn = await self._dial()
        except ConnectError as e:
            self.connecting -= 1
            if not self.conns and not self.connecting:
                # nothing else will serve the waiting requests: they fail with the reason
                while self.queue:
                    st = self.queue.popleft()
                    st.res.error = e.kind
                    self.deliver(st)
            return
        self.connecting -= 1
        if self.closed or conn.closed:
            conn.close()
            self.refill()
            return
        if conn not in self.conns:
            self.conns.append(conn)
        if conn.ready:
            self.pull(conn)

    async def _dial(self) -> H2Conn:
        self.stats.connections += 1
        t = self.target
        conn = H2Conn(self)
        conn.settled = self.loop.create_future()
        start = time.monotonic()
        await open_transport(self.loop, conn, conn.abort, t, self.ssl_context, self.connect_timeout)
        if conn.alpn_refused:
            conn.abort()
            raise ConnectError("alpn", "the target did not agree to HTTP/2 (ALPN h2)")
        # connected when the server's SETTINGS came (within the connect timeout): a target
        # that answers the preface with HTTP/1.1 or nothing is a connect error, not a hang
        left = max(0.0, self.connect_timeout - (time.monotonic() - start))
        try:
            kind = await asyncio.wait_for(asyncio.shield(conn.settled), left)
        except TimeoutError:
            conn.abort()
            raise ConnectError("connect_timeout", "no HTTP/2 SETTINGS from the target") from None
        if kind is not None:
            conn.abort()
            raise ConnectError(kind, "the connection ended before HTTP/2 was set up")
        return conn

    def close(self) -> None:
        """Stop: connects in progress are cancelled, connections closed (GOAWAY)."""
        self.closed = True
        self.tracker.open.discard(self)
        for task in list(self._dialing):
            task.cancel()
        for c in list(self.conns):
            c.close()

    def abort(self) -> None:
        self.close()

    def check_timeout(self, now: float) -> None:
        pass  # the connections' streams are swept one by one
