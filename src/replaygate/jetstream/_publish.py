"""JetStream publishing with asynchronous acks at the cost of a plain NATS publish.

nats-py's ``publish_async`` pays per message for a future, a done callback, a semaphore wait,
a random token (an ``urandom`` system call) and a JSON decode into a ``PubAck`` dataclass.
:class:`AckPublisher` sends with ``Client.publish`` and a reply subject on one ack inbox of
its own (``<inbox>.<sequence number>``), keeps what is unacknowledged in one insertion-ordered
dict, and handles each ack in one function called from nats-py's parser (:mod:`._fastsub`):
no object, task or coroutine per message beyond the dict entry.

While connected, the ``HPUB`` command is built here and handed to the client's outgoing
buffer directly (``_send_command``, then ``_flush_pending`` exactly as ``publish`` does): the
header block is the same bytes nats-py builds (trimmed values, CR/LF turned into spaces), made
without a regex and five small encodes per header. When those internals are missing (another
nats-py) or the client is not connected (reconnect buffering and its limits), ``publish``
itself is used.

Delivery: a message whose ack reports an error, or that has no ack after ``ack_timeout``
(lost while NATS reconnected), is sent again with its ``Nats-Msg-Id`` (JetStream drops the
repeat within its duplicate window). ``give_up()`` stops retrying: what is still unacknowledged
is counted in ``unacked``. A message NATS can never take (bigger than the server's
``max_payload``, a header it cannot carry) is counted in ``refused`` instead of retried.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client

from .._clock import SYSTEM_CLOCK, Clock
from ._fastsub import fast_subscribe, fast_unsubscribe

__all__ = ["AckPublisher", "PubItem", "header_block"]

_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch  # nats-py's header name rule
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})
_BAD_SUBJECT = re.compile(r"[ \t\r\n]").search
# errors no retry can fix (BadHeaderError is recent in nats-py; UnicodeEncodeError is a
# ValueError)
_REFUSED: tuple[type[BaseException], ...] = (
    nats.errors.MaxPayloadError,
    getattr(nats.errors, "BadHeaderError", ValueError),
    ValueError,
)


_GOOD_KEYS: set[str] = set()  # names already checked (a publisher uses a handful)


def header_block(headers: dict[str, str]) -> bytes:
    """``NATS/1.0`` header block, byte for byte what ``Client.publish(headers=...)`` sends."""
    out = ["NATS/1.0"]
    for k, v in headers.items():
        if k not in _GOOD_KEYS:
            key = k.strip()
            if not key:
                continue
            if not _KEY(key):
                raise ValueError(f"bad NATS header name {key!r}")
            if key != k or len(_GOOD_KEYS) >= 256:
                k = key
            else:
                _GOOD_KEYS.add(k)
        v = v.strip()
        if "\r" in v or "\n" in v:
            v = v.translate(_NEWLINES)
        out.append(f"{k}: {v}")
    out.append("\r\n")
    return "\r\n".join(out).encode()


def _has_fast_path(nc: Client) -> bool:
    send = getattr(nc, "_send_command", None)
    flush = getattr(nc, "_flush_pending", None)
    return (
        inspect.iscoroutinefunction(send)
        and inspect.iscoroutinefunction(flush)
        and hasattr(nc, "_flush_queue")
    )


# called once per message when it is stored: True if JetStream reported a duplicate
OnStored = Callable[[bool], None]
# what publish_many takes: subject, payload, headers, done
PubItem = tuple[str, bytes, dict[str, str] | None, OnStored | None]


class _Entry:
    __slots__ = ("done", "headers", "payload", "subject", "t0")

    def __init__(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | None,
        done: OnStored | None,
        t0: float,
    ) -> None:
        self.subject = subject
        self.payload = payload
        self.headers = headers
        self.done = done
        self.t0 = t0


class AckPublisher:
    """Publish with at most ``in_flight`` messages waiting for their ack; see the module doc."""

    def __init__(
        self,
        nc: Client,
        *,
        in_flight: int = 512,
        ack_timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._nc = nc
        self._clock = clock  # ack_timeout and wait_all's timeout are measured on it
        self._in_flight = max(1, in_flight)
        self._low = max(1, self._in_flight * 3 // 4)
        self.ack_timeout = ack_timeout
        self._pending: dict[int, _Entry] = {}
        self._retry: list[_Entry] = []
        self._seq = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._giving_up = False
        self._prefix = ""
        self._sub: Any = None
        self._timer: asyncio.Task[None] | None = None
        self._fast = _has_fast_path(nc)
        self.stored = 0
        self.duplicates = 0
        self.unacked = 0
        self.refused = 0  # never sendable: over the server's max_payload, or bad headers

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        self._sub = await fast_subscribe(
            self._nc, self._prefix + "*", self._on_raw_ack, cb=self._on_ack
        )
        self._timer = asyncio.ensure_future(self._expire_loop())

    @property
    def pending(self) -> int:
        """Messages sent and not acknowledged yet, plus those waiting to be sent again."""
        return len(self._pending) + len(self._retry)

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | None = None,
        done: OnStored | None = None,
    ) -> None:
        """Send one message (waits only while ``in_flight`` acks are outstanding)."""
        if self._retry:
            await self._resend()
        if len(self._pending) >= self._in_flight:
            await self._wait_room()
        await self._send(_Entry(subject, payload, headers, done, 0.0))

    async def _send(self, e: _Entry) -> None:
        while True:
            if self._giving_up:
                self.unacked += 1
                return
            self._seq += 1
            seq = self._seq
            e.t0 = self._clock.monotonic()
            self._pending[seq] = e
            self._idle.clear()
            reply = self._prefix + str(seq)
            nc = self._nc
            try:
                if self._fast and nc.is_connected and not nc.is_draining:
                    await self._send_fast(e, reply)
                else:
                    await nc.publish(e.subject, e.payload, reply=reply, headers=e.headers)
                return
            except _REFUSED:
                self._pending.pop(seq, None)
                self.refused += 1
                return
            except Exception:  # closed or reconnect buffer full: try again shortly
                self._pending.pop(seq, None)
                await asyncio.sleep(0.2)

    async def publish_many(self, items: list[PubItem]) -> None:
        """:meth:`publish` each of ``items`` (subject, payload, headers, done) in order: while
        connected, one write to the client's buffer for as many as ``in_flight`` allows."""
        nc: Any = self._nc
        i = 0
        while i < len(items):
            if self._retry:
                await self._resend()
            if len(self._pending) >= self._in_flight:
                await self._wait_room()
            if not (self._fast and nc.is_connected and not nc.is_draining) or self._giving_up:
                await self._send(_Entry(*items[i], 0.0))
                i += 1
                continue
            room = max(1, self._in_flight - len(self._pending))
            chunk, i = items[i : i + room], i + room
            cmds: list[bytes] = []
            seqs: list[int] = []
            now = self._clock.monotonic()
            for subject, payload, headers, done in chunk:
                e = _Entry(subject, payload, headers, done, now)
                self._seq += 1
                try:
                    cmd = self._command(e, self._prefix + str(self._seq))
                except _REFUSED:
                    self.refused += 1
                    continue
                if cmd is None:  # nats-py says why it refuses: one at a time, in order
                    await self._flush_commands(cmds, seqs)
                    cmds, seqs = [], []
                    await self._send(e)
                    continue
                self._pending[self._seq] = e
                seqs.append(self._seq)
                cmds.append(cmd)
            await self._flush_commands(cmds, seqs)

    async def _flush_commands(self, cmds: list[bytes], seqs: list[int]) -> None:
        if not cmds:
            return
        nc: Any = self._nc
        self._idle.clear()
        try:
            await nc._send_command(b"".join(cmds))
            if nc._flush_queue is not None and nc._flush_queue.empty():
                await nc._flush_pending()
        except Exception:  # closed or reconnect buffer full: sent again shortly
            for seq in seqs:
                e = self._pending.pop(seq, None)
                if e is not None:
                    self._retry.append(e)
            await asyncio.sleep(0.2)

    def _command(self, e: _Entry, reply: str) -> bytes | None:
        """The ``HPUB``/``PUB`` command, or None when nats-py should refuse it itself."""
        hdr = header_block(e.headers) if e.headers is not None else b""
        size = len(hdr) + len(e.payload)
        if size > self._nc.max_payload or _BAD_SUBJECT(e.subject) or not e.subject:
            return None
        if e.headers is not None:
            line = f"HPUB {e.subject} {reply} {len(hdr)} {size}\r\n"
        else:
            line = f"PUB {e.subject} {reply} {size}\r\n"
        return b"".join((line.encode(), hdr, e.payload, b"\r\n"))

    async def _send_fast(self, e: _Entry, reply: str) -> None:
        nc: Any = self._nc
        cmd = self._command(e, reply)
        if cmd is None:  # let nats-py raise what it raises for these
            await nc.publish(e.subject, e.payload, reply=reply, headers=e.headers)
            return
        await nc._send_command(cmd)
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()

    async def send_plain(self, subjects: list[str], payload: bytes) -> None:
        """Fire-and-forget ``payload`` to each subject (acks of consumed messages): one write
        for all of them when connected."""
        nc: Any = self._nc
        if (
            self._fast
            and nc.is_connected
            and not nc.is_draining
            and not any(_BAD_SUBJECT(s) or not s for s in subjects)
        ):
            tail = b" %d\r\n%b\r\n" % (len(payload), payload)
            await nc._send_command(b"".join(b"PUB " + s.encode() + tail for s in subjects))
            if nc._flush_queue is not None and nc._flush_queue.empty():
                await nc._flush_pending()
            return
        for s in subjects:
            await nc.publish(s, payload)

    async def _wait_room(self) -> None:
        while len(self._pending) >= self._in_flight and not self._giving_up:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), 0.5)
            except TimeoutError:
                pass
            if self._retry:
                await self._resend()

    async def _resend(self) -> None:
        todo, self._retry = self._retry, []
        for e in todo:
            await self._send(e)

    async def _on_ack(self, msg: Any) -> None:
        self._ack(msg.subject[len(self._prefix) :], msg.data)

    def _on_raw_ack(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        self._ack(subject[len(self._prefix) :], data)

    def _ack(self, tail: str | bytes, data: bytes) -> None:
        """The ack of the message sent with reply subject ``<prefix><tail>``."""
        try:
            seq = int(tail)
        except ValueError:
            return
        e = self._pending.pop(seq, None)
        if e is None:
            return  # an ack after its message timed out: the re-send counts instead
        duplicate = False
        try:
            ack = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            ack = None
        if not isinstance(ack, dict) or "error" in ack or "seq" not in ack:
            self._retry.append(e)  # no responders (status message), or a JetStream error
        else:
            duplicate = bool(ack.get("duplicate"))
            if duplicate:
                self.duplicates += 1
            else:
                self.stored += 1
            if e.done is not None:
                e.done(duplicate)
        if len(self._pending) <= self._low:
            self._room.set()
        if not self._pending and not self._retry:
            self._idle.set()

    async def _expire_loop(self) -> None:
        """Move messages without an ack after ``ack_timeout`` to the re-send list."""
        while True:
            await asyncio.sleep(min(0.5, self.ack_timeout / 4))
            self.expire()
            if self._retry and not self._giving_up:
                await self._resend()

    def expire(self, now: float | None = None) -> None:
        now = self._clock.monotonic() if now is None else now
        late = []
        for seq, e in self._pending.items():  # oldest first (insertion order)
            if now - e.t0 <= self.ack_timeout:
                break
            late.append(seq)
        for seq in late:
            self._retry.append(self._pending.pop(seq))
        if late:
            self._room.set()

    async def wait_all(self, timeout: float | None) -> bool:
        """Wait until everything sent was acknowledged (re-sending as needed)."""
        deadline = None if timeout is None else self._clock.monotonic() + timeout
        while self._pending or self._retry:
            if self._retry:
                await self._resend()
                continue
            left = None if deadline is None else deadline - self._clock.monotonic()
            if left is not None and left <= 0:
                return False
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), min(0.2, left or 0.2))
            except TimeoutError:
                self.expire()
        return True

    def give_up(self) -> None:
        """Stop re-sending; count whatever is unacknowledged as lost."""
        self._giving_up = True
        self.unacked += len(self._pending) + len(self._retry)
        self._pending.clear()
        self._retry.clear()
        self._room.set()
        self._idle.set()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
        if self._sub is not None:
            fast_unsubscribe(self._nc, self._sub)
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
