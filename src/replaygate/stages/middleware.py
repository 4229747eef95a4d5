"""External middleware speaking GoReplay's protocol, so existing GoReplay middleware runs as is.

Protocol (GoReplay's ``--middleware``): every message is written to the child's stdin as ONE
line: the hex encoding of ``"<type> <id> <timestamp_ns> <latency_ns>\\n" + <raw HTTP bytes>``
followed by ``\\n``. Types: 1 request, 2 original response, 3 replayed response. The child
writes lines in the same encoding on stdout: echo a line to keep the message, change it to
modify it, omit it to drop it, write new lines to inject messages. Lines that are not hex are
reported and skipped (as GoReplay does); the child's stderr is passed through to ours, each
line prefixed with ``[middleware]``.

How exchanges come back together. Messages are matched to exchanges by id. An exchange is
*settled* when every message sent for it has come back, or when the child has answered a
message sent *after* it (middleware processes its input in order, so anything it skipped it
dropped), or when its output ends, or - only while the in-flight window is full, so that a
middleware that drops everything cannot stall the run - when the child has been silent for
``settle_timeout``. Silence alone is never taken as a drop: middleware such as GoReplay's
``echo.py`` block-buffers its stdout. Settled exchanges are released in the order they were sent:

* request not echoed -> the exchange is dropped, counted under ``dropped["middleware"]``;
* original response not echoed -> the response is kept unchanged (GoReplay middleware often
  only echoes requests) and counted under ``notes["middleware.response_not_echoed"]``;
* a new id with type 1 -> an injected exchange (:attr:`~replaygate.model.Flag.INJECTED`).

Backpressure: at most ``max_inflight`` exchanges (and ``max_inflight_bytes``) are in flight;
``process`` blocks until the child catches up, so memory stays bounded. There is no line-length
limit: a 50 MB body passes (written and read in 1 MiB hex chunks through 1 MiB pipes).

Failure: a child that exits before its input ended raises :class:`~replaygate.errors.
MiddlewareError` with its exit status and last stderr line (``on_error="stop"``), or, with
``on_error="skip"``, the stage passes every exchange through unchanged from then on and counts
them under ``notes["middleware.bypassed"]``.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .._clock import SYSTEM_CLOCK, Clock
from ..config import parse_duration, parse_size
from ..errors import ConfigError, MiddlewareError
from ..model import Exchange, Flag, Request, Response, new_exchange_id
from ..pipeline import Counters
from ._mw_child import Message, MiddlewareChild
from ._mwproto import decode_message, encode_message, honest_framing, latency_ns

__all__ = [
    "MiddlewareConfig",
    "MiddlewareStage",
    "decode_message",
    "encode_message",
]

_SAFE_ID = re.compile(r"[!-~]{1,200}")  # printable, no spaces
_MAX_BAD_LINE_REPORTS = 5
# dropped exchanges remembered (count and bytes), so a late (reordered) reply is not lost
_RECENT_DROPS = 4096
_RECENT_DROPS_BYTES = 64 << 20


@dataclass
class MiddlewareConfig:
    """The ``[middleware]`` section of replaygate.toml."""

    command: str | None = None
    on_error: str = "stop"
    max_inflight: int = 1024
    max_inflight_bytes: str | int = "256mb"
    settle_timeout: str | float = "5s"
    close_timeout: str | float = "30s"
    linger: str | float = "50ms"
    send_responses: bool = True
    stderr_prefix: str = "[middleware] "
    env: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Entry:
    ex: Exchange
    wire_id: str
    last_seq: int
    sent_at: float
    size: int
    want_resp: bool
    injected: bool = False
    late: bool = False
    req_reply: tuple[int, bytes] | None = None
    resp_reply: tuple[int, bytes] | None = None


class MiddlewareStage:
    """Run ``config.command`` and pass every exchange through it (see module doc).

    Also a replay hook: :meth:`after_response` (or :meth:`send_replayed`) sends the replayed
    response as a type-3 message, for middleware that learns from staging's answers.
    """

    name = "middleware"
    counts_own_drops = True

    def __init__(
        self,
        config: MiddlewareConfig,
        counters: Counters | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not config.command or not config.command.strip():
            raise ConfigError("--middleware: empty command")
        if config.on_error not in ("stop", "skip"):
            raise ConfigError(
                f"--middleware-on-error: expected 'stop' or 'skip', got {config.on_error!r}"
            )
        try:
            self.argv = shlex.split(config.command)
        except ValueError as e:
            raise ConfigError(f"--middleware: cannot parse {config.command!r}: {e}") from None
        self.config = config
        self.counters = counters or Counters()
        self._clock = clock  # settle_timeout, linger and close_timeout are measured on it
        self._settle = parse_duration(config.settle_timeout, name="[middleware] settle_timeout")
        self._close_wait = parse_duration(config.close_timeout, name="[middleware] close_timeout")
        self._linger = parse_duration(config.linger, name="[middleware] linger")
        self._last_call = 0.0
        self._max_bytes = parse_size(
            config.max_inflight_bytes, name="[middleware] max_inflight_bytes"
        )
        if isinstance(config.max_inflight, bool) or not isinstance(config.max_inflight, int):
            raise ConfigError(
                f"[middleware] max_inflight: expected a number, got {config.max_inflight!r}"
            )
        if config.max_inflight < 1 or self._max_bytes < 1:
            raise ConfigError("[middleware] max_inflight / max_inflight_bytes: must be positive")
        self._max_n = config.max_inflight
        self._cond = threading.Condition()
        self._pending: dict[str, _Entry] = {}
        self._order: collections.deque[_Entry] = collections.deque()
        self._inflight_bytes = 0
        self._seq = 0
        self._max_replied = -1
        self._last_answered: _Entry | None = None
        self._recent_drops: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._recent_bytes = 0
        self._last_output = self._clock.monotonic()
        self._eof = False
        self._closing = False
        self._failed: str | None = None
        self._raised = False
        self._bypass = False
        self._blocked = False
        self._closed = False
        self._bad_lines = 0
        env = dict(os.environ)
        env.update(config.env)
        self._env = env
        if not self.argv or shutil.which(self.argv[0], path=env.get("PATH")) is None:
            what = self.argv[0] if self.argv else ""
            raise MiddlewareError(
                f"middleware {config.command!r} could not start: {what!r} is not an "
                "executable file or a command on PATH"
            )
        self._child = MiddlewareChild(
            self.argv,
            env,
            command=config.command,
            max_queued_bytes=self._max_bytes,
            stderr_prefix=config.stderr_prefix,
            on_message=self._on_message,
            on_bad_line=self._report_bad_line,
            on_exit=self._on_exit,
            on_crash=self._reader_crashed,
            failed=lambda: self._failed is not None,
        )

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        """The child process (started on first use, so a command that fails before any
        traffic flows leaves no process behind)."""
        return self._child.proc

    def bind_counters(self, counters: Counters) -> None:
        self.counters = counters

    # -- reading (called by the child's stdout thread) ------------------------------------
    def _on_message(self, msg: Message) -> None:
        with self._cond:
            self._apply(*msg)
            self._last_output = self._clock.monotonic()
            self._cond.notify_all()

    def _on_exit(self, rc: int) -> None:
        if self._closing:
            self._child.join_writer(1.0)  # let the writer finish or hit a broken pipe
        with self._cond:
            self._eof = True
            early = not self._closing or self._child.write_broken
            if self._failed is None and (early or rc != 0):
                how = f"exited with status {rc}" if rc >= 0 else f"was killed by signal {-rc}"
                if early:
                    how += " before its input ended"
                self._failed = how
            self._cond.notify_all()

    def _reader_crashed(self, e: BaseException) -> None:
        with self._cond:
            self._failed = self._failed or f"could not be read ({type(e).__name__}: {e})"
            self._eof = True
            self._cond.notify_all()

    def _report_bad_line(self, line: bytes, e: Exception) -> None:
        with self._cond:
            self._bad_lines += 1
            self.counters.notes["middleware.bad_line"] += 1
        if self._bad_lines <= _MAX_BAD_LINE_REPORTS:
            preview = line[:60].decode("latin-1", "replace").rstrip()
            sys.stderr.write(
                f"replaygate: middleware: skipped a stdout line that is not a hex message "
                f"({len(line)} bytes: {preview!r}): {e}\n"
            )

    def _apply(self, typ: int, wire_id: str, ts: int, lat: int | None, raw: bytes) -> None:
        """Record one message that came back (called with the lock held)."""
        e = self._pending.get(wire_id)
        if typ == 3:
            self.counters.notes["middleware.replayed_echo"] += 1
            return
        if e is not None and typ == 1 and e.req_reply is None and not e.injected:
            e.req_reply = (ts, raw)
            self._max_replied = max(self._max_replied, e.last_seq - (1 if e.want_resp else 0))
            self._last_answered = e
            return
        if e is not None and typ == 2 and e.want_resp and e.resp_reply is None:
            e.resp_reply = (ts, raw)
            self._max_replied = max(self._max_replied, e.last_seq)
            self._last_answered = e
            return
        if typ == 2:
            if e is not None and e.injected and e.resp_reply is None:
                e.resp_reply = (ts, raw)
            else:
                self.counters.notes["middleware.orphan_response"] += 1
            return
        late = self._recent_drops.pop(wire_id, None) if e is None else None
        if late is not None:
            self._recent_bytes -= late.size
        if late is not None:
            # answered after we had counted it dropped (the child reorders): release it now
            late.req_reply = (ts, raw)
            late.late = True
            ent = late
            self.counters.dropped["middleware"] -= 1
            if not self.counters.dropped["middleware"]:
                del self.counters.dropped["middleware"]
            self.counters.notes["middleware.late_reply"] += 1
        else:
            # a new request: injected (new id or an id echoed twice)
            new_id = wire_id if wire_id not in self._pending else new_exchange_id()
            req = Request(raw, ts_first_ns=ts, ts_last_ns=ts)
            ex = Exchange(id=new_id, request=req, flags={Flag.INJECTED})
            ent = _Entry(
                ex,
                new_id,
                self._seq,
                self._clock.monotonic(),
                len(raw),
                False,
                True,
                req_reply=(ts, raw),
            )
            self.counters.notes["middleware.injected"] += 1
        self._pending[ent.wire_id] = ent
        # released where the child wrote it: right after the last message it answered
        pos = 0
        if self._last_answered is not None:
            try:
                pos = self._order.index(self._last_answered) + 1
            except ValueError:
                pos = 0  # already released: everything before it is gone too
        self._order.insert(pos, ent)
        self._last_answered = ent
        self._inflight_bytes += ent.size

    # -- settling ------------------------------------------------------------------------
    def _settled(self, e: _Entry, now: float) -> bool:
        if e.injected or e.late or self._eof or self._bypass:
            return True
        if e.req_reply is not None and (not e.want_resp or e.resp_reply is not None):
            return True
        if self._max_replied > e.last_seq:
            return True
        # Silence alone proves nothing (middleware often buffers its stdout), so it settles
        # exchanges only while the in-flight window is full and we would otherwise wait forever.
        return (
            self._blocked
            and now - self._last_output >= self._settle
            and now - e.sent_at >= self._settle
        )

    def _release(self) -> list[Exchange]:
        """Pop settled exchanges from the front (lock held) and build what goes on."""
        out: list[Exchange] = []
        now = self._clock.monotonic()
        while self._order and self._settled(self._order[0], now):
            e = self._order.popleft()
            if self._pending.get(e.wire_id) is e:
                del self._pending[e.wire_id]
            self._inflight_bytes -= e.size
            ex = self._finish(e)
            if ex is not None:
                out.append(ex)
        if out:
            self._cond.notify_all()
        return out

    def _finish(self, e: _Entry) -> Exchange | None:
        ex = e.ex
        if e.injected:
            if e.resp_reply is not None:
                ex.response = Response(e.resp_reply[1], ts_first_ns=e.resp_reply[0])
            return ex
        if e.req_reply is None:
            if self._failed is not None and self.config.on_error == "skip":
                # unanswered because the child died, not because it dropped it
                self.counters.notes["middleware.bypassed"] += 1
                return ex
            self.counters.dropped["middleware"] += 1
            self._recent_drops[e.wire_id] = e
            self._recent_bytes += e.size
            while len(self._recent_drops) > _RECENT_DROPS or (
                self._recent_bytes > _RECENT_DROPS_BYTES and len(self._recent_drops) > 1
            ):
                self._recent_bytes -= self._recent_drops.popitem(last=False)[1].size
            return None
        ts, raw = e.req_reply
        if raw != ex.request.raw:
            ts = ts if ts > 0 else ex.request.ts_first_ns
            d = ts - ex.request.ts_first_ns
            ex.request = honest_framing(
                Request(raw, ts_first_ns=ts, ts_last_ns=ex.request.ts_last_ns + d)
            )  # type: ignore[assignment]
            ex.flags.add(Flag.MODIFIED)
            ex.meta["middleware"] = "modified"
            self.counters.notes["middleware.modified"] += 1
        if e.want_resp and ex.response is not None:
            if e.resp_reply is None:
                self.counters.notes["middleware.response_not_echoed"] += 1
            elif e.resp_reply[1] != ex.response.raw:
                old = ex.response
                ex.response = honest_framing(  # type: ignore[assignment]
                    Response(
                        e.resp_reply[1], ts_first_ns=old.ts_first_ns, ts_last_ns=old.ts_last_ns
                    )
                )
                self.counters.notes["middleware.response_modified"] += 1
        return ex

    # -- the Stage interface --------------------------------------------------------------
    def _check_failed(self) -> None:
        if self._failed is None or self._bypass:
            return
        if self.config.on_error == "skip":
            self._bypass = True
            sys.stderr.write(
                f"replaygate: warning: middleware {self.config.command!r} {self._failed}"
                f"{self._stderr_hint()}; passing exchanges through unchanged\n"
            )
            return
        self._raised = True
        raise MiddlewareError(
            f"middleware {self.config.command!r} {self._failed}{self._stderr_hint()}"
        )

    def _stderr_hint(self) -> str:
        last = self._child.last_stderr
        return f" (last stderr line: {last!r})" if last else ""

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        if self._child.popen is None:
            self._child.start()
        now = self._clock.monotonic()
        # Sparse input (live traffic): wait briefly for this exchange's answer so it goes on
        # now rather than with the next exchange, which may be minutes away. Bulk input
        # (files) never waits here: it is pipelined through the window instead.
        sparse = now - self._last_call >= self._linger  # gap since the previous call returned
        with self._cond:
            self._check_failed()
            if self._bypass:
                out = self._release()
                self.counters.notes["middleware.bypassed"] += 1
                out.append(ex)
                return out
            out = self._release()
            while (
                len(self._order) >= self._max_n or self._inflight_bytes >= self._max_bytes
            ) and self._order:
                self._blocked = True
                try:
                    self._cond.wait(min(0.25, self._settle))
                    self._check_failed()
                    out.extend(self._release())
                finally:
                    self._blocked = False
                if self._bypass:
                    break
            if self._bypass:
                self.counters.notes["middleware.bypassed"] += 1
                out.append(ex)
                return out
            wire_id = ex.id if _SAFE_ID.fullmatch(ex.id) and ex.id not in self._pending else None
            wire_id = wire_id or new_exchange_id()
            req = ex.request
            resp = ex.response if self.config.send_responses else None
            size = len(req.raw) + (len(resp.raw) if resp is not None else 0)
            self._seq += 2 if resp is not None else 1
            e = _Entry(ex, wire_id, self._seq - 1, self._clock.monotonic(), size, resp is not None)
            self._pending[wire_id] = e
            self._order.append(e)
            self._inflight_bytes += size
            # a recording that already holds a replayed response (type 3) shows it too, as
            # GoReplay's file input does; what comes back for it is ignored
            replayed = ex.replayed if self.config.send_responses else None
            if replayed is not None:
                self._seq += 1
        self._child.send(1, wire_id, req.ts_first_ns, -1, req.raw, True)
        if resp is not None:
            self._child.send(
                2,
                wire_id,
                resp.ts_first_ns or resp.ts_last_ns,
                latency_ns(req, resp),
                resp.raw,
                True,
            )
        if replayed is not None:
            lat = ex.replay_latency_ns if ex.replay_latency_ns is not None else -1
            ts = ex.replay_ts_ns or replayed.ts_first_ns
            self._child.send(3, wire_id, ts, lat, replayed.raw, True)
        if sparse and self._linger > 0:
            deadline = now + self._linger
            with self._cond:
                while not self._eof and (
                    e.req_reply is None or (e.want_resp and e.resp_reply is None)
                ):
                    left = deadline - self._clock.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                out.extend(self._release())
        self._last_call = self._clock.monotonic()
        return out

    def drain(self) -> list[Exchange]:
        """Release everything still held *without* ending the child's input, so it keeps
        receiving type-3 messages while a replay finishes (then call :meth:`close`).

        Unanswered exchanges are settled as usual: by a later answer, or once the child has
        been silent for ``settle_timeout``."""
        if self._child.popen is None or self._closed:
            return []
        out: list[Exchange] = []
        with self._cond:
            while True:
                self._check_failed()
                out.extend(self._release())
                if not self._order or self._eof:
                    break
                self._blocked = True  # nothing more will come: silence may settle the rest
                try:
                    self._cond.wait(min(0.05, self._settle))
                finally:
                    self._blocked = False
        return out

    def close(self) -> Iterable[Exchange]:
        if self._closed:
            return ()
        self._closed = True
        if self._child.popen is None:
            return ()  # never used: no process was started
        with self._cond:
            self._closing = True
        self._child.end_input()
        deadline = self._clock.monotonic() + self._close_wait
        try:
            with self._cond:
                while not self._eof and self._clock.monotonic() < deadline:
                    self._cond.wait(0.25)
        except BaseException:  # Ctrl-C while waiting: do not leave the process behind
            self._child.terminate()
            self._child.join(5)
            self._child.close_pipes()
            raise
        if not self._eof:
            self._child.terminate()
            with self._cond:
                self._failed = f"did not exit within {self._close_wait:g}s after its input ended"
        self._child.join(5)
        self._child.close_pipes()
        with self._cond:
            self._eof = True
            if self._failed is not None and not self._raised:
                self._check_failed()
            return self._release()

    def abort(self) -> None:
        """Stop the child now (error paths); pending exchanges are discarded."""
        self._closed = True
        self._closing = True
        if self._child.popen is None:
            return
        self._child.terminate()
        self._child.end_input()
        self._child.join(5)
        self._child.close_pipes()

    # -- replay side ---------------------------------------------------------------------
    def send_replayed(self, ex: Exchange) -> bool:
        """Send ``ex.replayed`` as a type-3 message; never blocks. False (counted under
        ``notes["middleware.replayed_skipped"]``) when the queue is full or the middleware
        has already been closed (replies that arrive after the input ended) or has failed."""
        if ex.replayed is None:
            return False
        if self._failed is not None or self._closed:
            with self._cond:
                self.counters.notes["middleware.replayed_skipped"] += 1
            return False
        if self._child.popen is None:
            self._child.start()
        wire_id = ex.id if _SAFE_ID.fullmatch(ex.id) else new_exchange_id()
        lat = ex.replay_latency_ns if ex.replay_latency_ns is not None else -1
        ts = ex.replay_ts_ns or ex.replayed.ts_first_ns
        with self._cond:
            self._seq += 1
        ok = self._child.send(3, wire_id, ts, lat, ex.replayed.raw, False)
        if not ok:
            with self._cond:
                self.counters.notes["middleware.replayed_skipped"] += 1
        return ok

    def before_send(self, ex: Exchange, request: Request) -> Request:
        return request

    def after_response(self, ex: Exchange) -> None:
        self.send_replayed(ex)

    def __enter__(self) -> MiddlewareStage:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            list(self.close())
        else:
            self.abort()
