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
* no replay hooks (``--no-correlate``, no middleware/plugin stage), no sink (no ``--output``,
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
from collections.abc import Callable, Iterator, Sequence

from ..model import Exchange, Flag, Request
from ._config import ReplayConfig
from ._rate import SendClock
from ._stats import ReplayStats
from .client import ConnectError, ReplayConnection, Result, prepare_request
from .pool import TargetPool

__all__ = ["LeanFeed", "LeanLane", "lean_source"]

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
        hooks
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
    ) -> None:
        self._batches: Batches | None = batches
        self._batch: list[bytes | Exchange] = []
        self._pos = 0
        self._host = pool.host_bytes
        self._prefix = pool.prefix
        self._is_unsafe = is_unsafe  # None: the targets are not where the traffic came from
        self.stats = stats
        self._stop = stop  # set on Ctrl-C and on the first error (Engine.fail)
        # latencies (us) not yet in stats.latency: counted by value, in bulk (flush)
        self.latencies: list[int] = []

    def flush(self) -> None:
        """Put the latencies recorded since the last flush into ``stats.latency``."""
        lats = self.latencies  # the lanes' list: emptied in place
        self.stats.latency.record_all(lats)
        lats.clear()

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
    ``done`` resolves when the feed runs dry (or on the first error, given to ``fail``)."""

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
        self.conn: ReplayConnection | None = None
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

    def pump(self) -> None:
        """Write the next request (never blocks; the answer calls :meth:`on_result`)."""
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
            conn.send(raw, raw[0] == 72 and raw.startswith(b"HEAD "), self.on_result)  # 72: "H"
        except BaseException as e:
            self._failed(e)

    async def _connect_and_send(self, retry: bool) -> None:
        try:
            if retry:
                self.stats.retries += 1
            try:
                conn = await self.pool.connect(self.loop)
            except ConnectError as e:
                self.conn = None
                self.on_result(Result(error=e.kind))
                return
            self.conn = conn
            self.reused = False  # a fresh connection is never retried
            raw = self.raw
            conn.send(raw, raw[0] == 72 and raw.startswith(b"HEAD "), self.on_result)  # 72: "H"
        except BaseException as e:
            self._failed(e)

    def on_result(self, res: Result) -> None:
        """Count the outcome (what ``Engine.record`` counts) and write the next request."""
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
