"""Fetching from a durable pull consumer with one callback subscription.

nats-py's ``PullSubscription.fetch`` waits for every message with ``next_msg``: a uuid, a
task and a timer per message. :class:`PullConsumer` sends the same pull requests as nats-py
(first ``no_wait``; when that found nothing, one that lingers until ``expires``) to
``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``, and a callback appends each delivered
message to a buffer: a list append per message. With ``headers=False`` (the worker reads only
the body and the ack subject) the messages come through :mod:`._fastsub`: no header dict, no
queue and no coroutine per message, only a ``Msg`` without headers.

JetStream delivers a request's messages with their own subjects, so they cannot be told apart
by request; fetches on one consumer run one at a time, and a request ends with its last
message or with a status message on its reply subject (404 no messages, 408 request timeout,
409 leadership change...). Messages that arrive after ``fetch`` stopped waiting (a request
answered late) stay in the buffer and the next ``fetch`` returns them, so none is stranded
until ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg

from ._fastsub import fast_subscribe, fast_unsubscribe, status_of

__all__ = ["PullConsumer"]


class PullConsumer:
    """``fetch(n, timeout)`` from one existing durable consumer (see the module doc)."""

    def __init__(
        self, nc: Client, api_prefix: str, stream: str, consumer: str, *, headers: bool = True
    ) -> None:
        self._nc = nc
        self._headers = headers  # False: messages without their headers (see the module doc)
        self._next = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = ""
        self._sub: Any = None
        self._buf: list[Any] = []
        self._want = 0
        self._token = ""
        self._ready = asyncio.Event()
        self._n = 0

    async def start(self) -> PullConsumer:
        self._inbox = self._nc.new_inbox() + "."
        if self._headers:
            self._sub = await self._nc.subscribe(self._inbox + "*", cb=self._on_msg)
        else:
            self._sub = await fast_subscribe(
                self._nc, self._inbox + "*", self._on_raw, cb=self._on_msg
            )
        return self

    def _on_raw(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        if status_of(headers, data) is not None:
            if subject.decode() == self._token:  # the current request is over
                self._ready.set()
            return
        self._buf.append(Msg(self._nc, subject.decode(), reply.decode(), data))
        if len(self._buf) >= self._want:
            self._ready.set()

    async def _on_msg(self, msg: Any) -> None:
        hdrs = msg.headers
        if hdrs and not msg.data and "Status" in hdrs:
            if msg.subject == self._token:  # the current request is over
                self._ready.set()
            return
        self._buf.append(msg)
        if len(self._buf) >= self._want:
            self._ready.set()

    async def _request(self, n: int, expires: float | None) -> None:
        self._n += 1
        self._token = self._inbox + str(self._n)
        self._want = n
        self._ready.clear()
        body: dict[str, Any] = {"batch": n}
        if expires is None:
            body["no_wait"] = True
        else:
            body["expires"] = max(1_000_000, int(expires * 1e9) - 100_000)
        await self._nc.publish(self._next, orjson.dumps(body), reply=self._token)
        try:
            await asyncio.wait_for(self._ready.wait(), 2.0 if expires is None else expires)
        except TimeoutError:
            pass
        finally:
            self._token = ""

    def _take(self, n: int) -> list[Any]:
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    async def fetch(self, n: int, timeout: float) -> list[Any]:
        """Up to ``n`` messages; TimeoutError when none came within ``timeout``."""
        if not self._buf:
            start = time.monotonic()
            await self._request(n, None)
            left = timeout - (time.monotonic() - start)
            if not self._buf and left > 0.01:
                await self._request(n, left)
            if not self._buf:
                raise TimeoutError
        return self._take(n)

    async def unsubscribe(self) -> None:
        if self._sub is not None:
            fast_unsubscribe(self._nc, self._sub)
            await self._sub.unsubscribe()
            self._sub = None
