"""Connecting to NATS with reconnects, and turning failures into one-line StreamErrors."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
from nats.aio.client import Client

from ..errors import StreamError
from .url import StreamURL

__all__ = ["connect"]


async def connect(url: StreamURL, *, name: str = "replaygate", timeout: float = 5.0) -> Client:
    """Connect with unlimited reconnects (nats-py buffers while reconnecting)."""

    async def _quiet(e: Exception) -> None:  # nats-py logs every reconnect attempt otherwise
        return None

    try:
        nc: Client = await asyncio.wait_for(
            nats.connect(
                servers=list(url.servers),
                name=name,
                connect_timeout=int(max(1, timeout)),
                reconnect_time_wait=1,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=_quiet,
            ),
            timeout=timeout + 1,
        )
    except Exception as e:
        raise StreamError(
            f"cannot connect to NATS at {', '.join(url.servers)}: {_one_line(e)}"
        ) from None
    return nc


def _one_line(e: BaseException | Any) -> str:
    text = str(e) or type(e).__name__
    return text.replace("\n", " ")[:300]
