"""The lean ``--max`` path: request bytes in, counters out, no per-request objects.

When nothing looks at the exchanges of a file replay (no stages, hooks, output or reports),
the engine's usual work per request (an Exchange built by the reader, a unit, the order gate,
``record`` putting the outcome on the exchange) only feeds the counters. The lean path skips
it: the source hands over each request's bytes (:meth:`LeanFeed.next`), a lane writes them
on its keep-alive connection and, when the answer is complete (inside ``data_received``),
adds it to the stats and writes the next request right there.

It applies (:func:`lean_source`) when all of these hold, else the full path runs:

* ``--max`` without ``--loop``, ``--limit``, ``--duration``, ``--sessions``, ``--split``,
  ``--baseline``, ``--redirects``, ``--http2``; one target; ``--order none`` or ``recorded``;
* no replay hooks but those that do nothing without recorded responses (the default token
  correlation: ``idle_without_responses``; the input here has no responses), so no
  middleware/plugin stage; no sink (no ``--output``,
  no report flags), and the source offers ``lean_requests`` (the runner's file source: no
  traffic stages, every input an uncompressed ``.gor`` file of request records, see
  :mod:`replaygate.formats.gor_lean`); with ``--order recorded`` no record may carry a
  connection or session (requests with no recorded end and no session: nothing waits).

The counts, drops, errors, statuses, latencies and rates are the full path's (same checks,
same client, same retry of a stale keep-alive connection); the tests replay the same files
both ways and compare.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import httptools

from ..model import Exchange, Flag, Request
from ._config import ReplayConfig
from ._rate import SendClock
from ._stats import ReplayStats
from .client import ConnectError, Connection, Result, Tracker, open_transport, prepare_request
from .pool import TargetPool

__all__ = ["LeanConnection", "LeanFeed", "LeanLane", "lean_source"]

_perf_ns = time.perf_counter_ns

Batches = Iterator[list[bytes | Exchange]]

_SAFE_PREFIXES = (b"GET ", b"HEAD ", b"OPTIONS ")
_BROKEN = frozenset((Flag.REQUEST_GAP, Flag.REQUEST_TRUNCATED))


def lean_source(
    source: object,
    config: ReplayConfig,
    hooks: Sequence[object],
    sink: object | None,
    pool: TargetPool | None,
) -> Batches | None:
    """The request batches when the lean path applies (see the module docstring), else None."""
    c = config
    if (
        any(not getattr(h, "idle_without_responses", False) for h in hooks)
        or sink is not None
        or pool is None
        or not c.max_speed
        or c.loop
        or c.limit is not None
        or c.duration is not None
        or c.sessions
        or c.split
        or c.baseline
        or c.redirects
        or c.http2
        or c.order not in ("none", "recorded")
    ):
        return None
    lean = getattr(source, "lean_requests", None)
    if not callable(lean):
        return None
    batches: Batches | None = lean(sessions_ok=c.order == "none")
    return batches


class LeanFeed:
    """Prepared request bytes, one at a time, from the batches; the engine's checks applied
    (incomplete requests dropped, the safety rule), ``stats.exchanges`` counted."""

    __slots__ = (
        "_batch",
        "_batches",
        "_host",
        "_is_unsafe",
        "_pos",
        "_prefix",
        "_stop",
        "answered",
        "clock",
        "latencies",
        "stats",
    )

    def __init__(
        self,
        batches: Batches,
        pool: TargetPool,
        stats: ReplayStats,
        is_unsafe: Callable[[Exchange], bool] | None,
        stop: threading.Event,
        clock: SendClock,
    ) -> None:
        self._batches: Batches | None = batches
        self.clock = clock
        self._batch: list[bytes | Exchange] = []
        self._pos = 0
        self._host = pool.host_bytes
        self._prefix = pool.prefix
        self._is_unsafe = is_unsafe  # None: the targets are not where the traffic came from
        self.stats = stats
        self._stop = stop  # set on Ctrl-C and on the first error (Engine.fail)
        # latencies (us) not yet in stats.latency: counted by value, in bulk (flush)
        self.latencies: list[int] = []
        # answers the connections counted since the last flush, not yet in stats.sent,
        # stats.answered and clock.units_sent (one addition instead of three per answer)
        self.answered = 0

    def flush(self) -> None:
        """Put the latencies and answers recorded since the last flush into the stats."""
        lats = self.latencies  # the lanes' list: emptied in place
        st = self.stats
        st.latency.record_all(lats)
        lats.clear()
        n, self.answered = self.answered, 0
        st.sent += n
        st.answered += n
        self.clock.units_sent += n

    def close(self) -> None:
        batches, self._batches = self._batches, None
        close = getattr(batches, "close", None)
        if close is not None:
            close()

    def next(self) -> bytes | None:
        """The next request's bytes as they go out, or None at the end (or when stopped)."""
        while True:
            batch = self._batch
            i = self._pos
            if not i & 63 and self._stop.is_set():  # looked at every 64 requests
                return None
            if i >= len(batch):
                if self._batches is None:
                    return None
                if len(self.latencies) >= 4096:
                    self.flush()
                try:
                    self._batch = batch = next(self._batches)
                except StopIteration:
                    self.close()
                    return None
                i = 0
            self._pos = i + 1
            item = batch[i]
            if type(item) is bytes:
                raw = item
                # the head's length by the rule of model.Request (first blank line)
                crlf = raw.find(b"\r\n\r\n")
                lf = raw.find(b"\n\n", 0, crlf if crlf >= 0 else len(raw))
                if lf >= 0:
                    head_len = lf + 2
                elif crlf >= 0:
                    head_len = crlf + 4
                else:
                    # a request cut short would only hang a connection until the timeout
                    self.stats.dropped["incomplete_request"] += 1
                    continue
                check = self._is_unsafe
                if (
                    check is not None
                    and raw[:4] != b"GET "  # the usual safe one, cheaper than startswith
                    and not raw.startswith(_SAFE_PREFIXES)
                    and check(Exchange(id="", request=Request(raw, head_len=head_len)))
                ):
                    continue
            else:
                assert isinstance(item, Exchange)
                req = item.request
                raw = req.raw
                head_len = req.head_len
                if (item.flags and not item.flags.isdisjoint(_BROKEN)) or (
                    head_len >= len(raw) and not raw.endswith((b"\r\n\r\n", b"\n\n"))
                ):
                    self.stats.dropped["incomplete_request"] += 1
                    continue
                check = self._is_unsafe
                if check is not None and not raw.startswith(_SAFE_PREFIXES) and check(item):
                    continue
            self.stats.exchanges += 1
            return prepare_request(raw, head_len, self._host, self._prefix)


class LeanLane:
    """One of ``--concurrency`` senders: one keep-alive connection, one request at a time;
    ``done`` resolves when the feed runs dry (or on the first error, given to ``fail``).

    An answer that comes whole and plain is counted by its :class:`LeanConnection` (no
    :class:`~.client.Result`); anything else (errors, timeouts, interim responses, limits,
    HEAD) reaches :meth:`on_result` with a Result, as on the full path."""

    __slots__ = (
        "_connecting",
        "clock",
        "conn",
        "done",
        "fail",
        "feed",
        "latencies",
        "loop",
        "pool",
        "raw",
        "reused",
        "stats",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        feed: LeanFeed,
        pool: TargetPool,
        stats: ReplayStats,
        clock: SendClock,
        fail: Callable[[BaseException], None],
    ) -> None:
        self.loop = loop
        self.feed = feed
        self.latencies = feed.latencies
        self.pool = pool
        self.stats = stats
        self.clock = clock
        self.fail = fail
        self.conn: LeanConnection | None = None
        self.raw = b""
        self.reused = False
        self._connecting: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = loop.create_future()

    def start(self) -> None:
        self.loop.call_soon(self.pump)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if not self.done.done():
            self.done.set_result(None)

    def _failed(self, e: BaseException) -> None:
        self.close()
        self.fail(e)

    def check_timeout(self, now: float) -> None:
        """The engine's sweeper: time out the request in flight, if any."""
        conn = self.conn
        if conn is not None:
            conn.check_timeout(now)

    def pump(self) -> None:
        """Write the next request (never blocks; the answer comes back through the
        connection)."""
        try:
            raw = self.feed.next()
            if raw is None:
                self.close()
                return
            self.raw = raw
            conn = self.conn
            if conn is None or conn.closed:
                self._connecting = self.loop.create_task(self._connect_and_send(False))
                return
            self.reused = conn.uses > 0
            conn.send_lean(raw)
        except BaseException as e:
            self._failed(e)

    async def _connect_and_send(self, retry: bool) -> None:
        try:
            if retry:
                self.stats.retries += 1
            pool = self.pool
            c = pool.config
            conn = LeanConnection(
                self.loop,
                c.response_timeout,
                pool.tracker,
                self,
                max_response=c.max_response_size,
                max_header=c.max_header_size,
            )
            self.stats.connections += 1
            try:
                await open_transport(
                    self.loop, conn, conn.abort, pool.target, pool.ssl_context, c.connect_timeout
                )
            except ConnectError as e:
                self.conn = None
                self.on_result(Result(error=e.kind))
                return
            self.conn = conn
            self.reused = False  # a fresh connection is never retried
            conn.send_lean(self.raw)
        except BaseException as e:
            self._failed(e)

    def on_result(self, res: Result) -> None:
        """Count an outcome that came as a Result (what ``Engine.record`` counts) and write
        the next request."""
        try:
            conn = self.conn
            if conn is not None and conn.closed:
                self.conn = None
            if res.error in ("closed", "reset") and self.reused and not res.received_any:
                # the server closed an idle keep-alive connection as we wrote: once more
                self._connecting = self.loop.create_task(self._connect_and_send(True))
                return
            st = self.stats
            st.sent += 1
            st.bytes_sent += len(self.raw)
            sent = res.sent_perf
            if sent:
                clock = self.clock
                if not clock.first_send:
                    clock.first_send = sent
                if sent > clock.last_send:
                    clock.last_send = sent
                clock.units_sent += 1
            error = res.error
            if error is not None:
                st.errors[error] += 1
            else:
                body = res.raw
                assert body is not None
                if res.truncated:
                    st.truncated += 1
                st.answered += 1
                st.status[res.status] += 1
                st.bytes_received += len(body)
                self.latencies.append((res.done_perf - sent) // 1000)
            self.pump()
        except BaseException as e:
            self._failed(e)


class LeanConnection(Connection):
    """The HTTP/1 client connection of a :class:`LeanLane`, with a short way for the usual
    answer: a request goes out with no :class:`~.client.Result` and no timeout registration
    (the lane is swept instead), and a final response with a status (no interim response,
    within the limits) is counted right in ``data_received`` (what ``LeanLane.on_result``
    counts for an answer) before the lane writes the next request.

    Everything else takes :class:`~.client.Connection`'s own code: the request's Result is
    made at that moment (:meth:`_materialize`) and handed to ``LeanLane.on_result``, so
    errors, timeouts, interim responses, limits, truncation, close-delimited bodies and HEAD
    are handled and counted exactly as on the full path."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        tracker: Tracker,
        lane: LeanLane,
        *,
        max_response: int,
        max_header: int,
    ) -> None:
        super().__init__(loop, timeout, tracker, max_response=max_response, max_header=max_header)
        self._parser = httptools.HttpResponseParser(self)
        self.lane = lane
        self._on_result = lane.on_result
        self._stats = lane.stats
        self._clock = lane.clock
        self._latencies = lane.latencies
        self._timeout_ns = int(timeout * 1e9)
        self._feed = lane.feed
        self._lean = False  # a request sent by send_lean is in flight, with no Result yet
        self._sent = 0  # perf ns of the first byte of a request sent by send_lean, else 0
        self._dirty = False  # the last request took Connection's code: reset its fields

    def send_lean(self, raw: bytes) -> None:
        """Write ``raw`` (``Connection.send`` for HEAD and on a closing connection)."""
        transport = self.transport
        if (
            (raw[0] == 72 and raw.startswith(b"HEAD "))  # 72: "H"
            or self.closed
            or transport is None
            or transport.is_closing()
        ):
            self._sent = 0
            self._lean = False
            self._dirty = True
            self.send(raw, raw[0] == 72 and raw.startswith(b"HEAD "), self._on_result)
            return
        if self._dirty:  # what Connection.send resets and the short way leaves alone
            self._dirty = False
            self._chunks = []
            self._msg_start = 0
            self._check_at = self.max_header
            self._too_large = None
            self._head_only = False
            self._status = 0
        self._cb = self._on_result
        self._lean = True
        self._size = 0
        self._complete = False
        self._keep_alive = True
        self.uses += 1
        self._sent = _perf_ns()
        transport.write(raw)

    def _materialize(self) -> None:
        """Give the request in flight its Result: Connection's code takes it from here."""
        if self._lean:
            self._lean = False
            self._dirty = True
            self._res = Result(sent_perf=self._sent, received_any=self._size > 0)
            self.deadline = time.monotonic() + max(
                0.0, (self._timeout_ns - (_perf_ns() - self._sent)) / 1e9
            )

    def data_received(self, data: bytes) -> None:
        if not self._lean:
            Connection.data_received(self, data)
            return
        size = self._size + len(data)
        if size > self._check_at:
            self._materialize()
            Connection.data_received(self, data)
            return
        self._size = size
        chunks = self._chunks
        chunks.append(data)
        try:
            self._parser.feed_data(data)  # type: ignore[union-attr]
        except httptools.HttpParserUpgrade:
            self._complete = True
            self._keep_alive = False
        except httptools.HttpParserError:
            self._materialize()
            self._finish_error("bad_response")
            self.close()
            return
        if not self._lean:  # an interim response came: Connection's code
            if self._too_large is not None:
                self._finish_error(self._too_large)
                self.close()
            elif self._complete:
                self._finish_ok()
            return
        status = self._status  # set with _complete by a final response's end
        if not status:
            if self._complete:  # an upgrade: the status comes from the bytes
                self._finish_ok()
            return
        # the usual answer, counted as LeanLane.on_result counts it
        done = _perf_ns()
        sent = self._sent
        self._status = 0
        self._cb = None
        self._lean = False
        chunks.clear()
        if not self._keep_alive:
            self.close()
        lane = self.lane
        try:
            self._feed.answered += 1  # stats.sent, stats.answered, clock.units_sent
            st = self._stats
            st.bytes_sent += len(lane.raw)
            clock = self._clock
            if not clock.first_send:
                clock.first_send = sent
            if sent > clock.last_send:
                clock.last_send = sent
            st.status[status] += 1
            st.bytes_received += size
            self._latencies.append((done - sent) // 1000)
        except BaseException as e:
            lane._failed(e)
            return
        lane.pump()

    def on_message_complete(self) -> None:
        p = self._parser
        assert p is not None
        status = p.get_status_code()
        if status >= 200 or status < 100 or status == 101:  # final (Connection's test)
            self._complete = True
            self._status = status
            self._keep_alive = p.should_keep_alive()
        else:
            Connection.on_message_complete(self)

    def _interim(self, buf: bytes, end: int) -> None:
        self._materialize()
        super()._interim(buf, end)

    def _finish_ok(self) -> None:
        self._materialize()
        super()._finish_ok()

    def _finish_error(self, kind: str) -> None:
        self._materialize()
        super()._finish_error(kind)

    def check_timeout(self, now: float) -> None:
        if self._cb is None:
            return
        if self._lean:
            if _perf_ns() - self._sent >= self._timeout_ns:
                self._finish_error("timeout")
                self.close()
            return
        super().check_timeout(now)
