"""Deliver a subscription's messages to a plain function, straight from nats-py's parser.

For every message nats-py parses the header block into a dict (a generator per character of
each header name), builds a ``Msg``, queues it for the subscription's task and awaits the
callback coroutine: most of a JetStream worker's receiving cost, for fetched messages whose
headers it never reads and for publish acks it only needs the subject and body of.

:func:`fast_subscribe` subscribes as usual (the callback stays the fallback, and nats-py keeps
re-subscribing after a reconnect and unsubscribing), then registers the subscription id with
a dispatcher installed once per client in front of ``Client._process_msg``: a message for a
registered id goes to ``handler(subject, reply, data, headers)`` (bytes, ``headers`` the raw
``NATS/1.0`` block or None) right there; every other message takes nats-py's path. When the
internals are not what this expects (another nats-py), nothing is installed and the callback
receives everything, as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client

__all__ = ["fast_subscribe", "fast_unsubscribe", "status_of"]

RawHandler = Callable[[bytes, bytes, bytes, bytes | None], None]

_EXPECTED = ["self", "sid", "subject", "reply", "data", "headers"]
_SUPPORTED = list(inspect.signature(Client._process_msg).parameters) == _EXPECTED


class _Dispatch:
    __slots__ = ("handlers",)

    def __init__(self) -> None:
        self.handlers: dict[int, RawHandler] = {}


def _dispatch_of(nc: Client) -> _Dispatch | None:
    d: _Dispatch | None = getattr(nc, "_rg_dispatch", None)
    if d is not None or not _SUPPORTED:
        return d
    orig: Callable[..., Awaitable[None]] = nc._process_msg
    stats: Any = getattr(nc, "stats", None)
    if not isinstance(stats, dict) or "in_msgs" not in stats or "in_bytes" not in stats:
        return None
    d = _Dispatch()
    handlers = d.handlers

    async def process_msg(
        sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        h = handlers.get(sid)
        if h is None:
            await orig(sid, subject, reply, data, headers)
            return
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        h(subject, reply, data, headers)

    nc._process_msg = process_msg  # type: ignore[method-assign]
    nc._rg_dispatch = d  # type: ignore[attr-defined]
    return d


async def fast_subscribe(
    nc: Client, subject: str, handler: RawHandler, cb: Callable[[Any], Awaitable[None]]
) -> Any:
    """Subscribe to ``subject``: ``handler`` gets the raw messages when the fast path is
    available, ``cb`` (nats-py's callback) otherwise. Returns the subscription."""
    sub = await nc.subscribe(subject, cb=cb)
    d = _dispatch_of(nc)
    sid = getattr(sub, "_id", None)
    if d is not None and isinstance(sid, int):
        d.handlers[sid] = handler
    return sub


def fast_unsubscribe(nc: Client, sub: Any) -> None:
    """Forget ``sub``'s handler (before unsubscribing it)."""
    d: _Dispatch | None = getattr(nc, "_rg_dispatch", None)
    if d is not None:
        d.handlers.pop(getattr(sub, "_id", None), None)  # type: ignore[arg-type]


def status_of(headers: bytes | None, data: bytes) -> bytes | None:
    """The status code of a status message (``NATS/1.0 404 ...`` header block, no body)."""
    if data or not headers or not headers.startswith(b"NATS/1.0 "):
        return None
    code = headers[9:12]
    return code if code.isdigit() else None
