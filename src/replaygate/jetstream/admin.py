"""Creating, inspecting and purging replaygate's streams (``replaygate stream ...``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from .._clock import SYSTEM_CLOCK, Clock
from ..errors import StreamError
from ._conn import _one_line, connect
from .url import StreamURL

__all__ = ["StreamSettings", "ensure_streams", "purge", "status"]

LEASE_TTL_S = 6.0


@dataclass
class StreamSettings:
    """Retention and limits for ``stream init`` (``-1`` = unlimited, as in NATS)."""

    max_bytes: int = -1
    max_age_s: float = 0.0
    max_msgs: int = -1
    replicas: int = 1
    storage: str = "file"  # file | memory
    duplicate_window_s: float = 120.0


def _config(name: str, subjects: list[str], s: StreamSettings) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=subjects,
        retention=RetentionPolicy.LIMITS,
        max_bytes=s.max_bytes,
        max_msgs=s.max_msgs,
        max_age=s.max_age_s or None,
        num_replicas=s.replicas,
        storage=StorageType.MEMORY if s.storage == "memory" else StorageType.FILE,
        duplicate_window=s.duplicate_window_s,
    )


async def ensure_streams(
    js: JetStreamContext, url: StreamURL, settings: StreamSettings | None = None
) -> dict[str, str]:
    """Create the traffic stream, the results stream and the leases bucket when missing.

    Returns ``{name: "created"|"exists"|"updated"}``; existing streams keep their settings
    unless ``settings`` is given (then they are updated).
    """
    out: dict[str, str] = {}
    s = settings or StreamSettings()
    for name, subjects in (
        (url.stream, [url.subjects]),
        (url.results_stream, [f"rg.{url.results_stream}.>"]),
    ):
        try:
            await js.stream_info(name)
            if settings is not None:
                await js.update_stream(_config(name, subjects, s))
                out[name] = "updated"
            else:
                out[name] = "exists"
        except NotFoundError:
            await js.add_stream(_config(name, subjects, s))
            out[name] = "created"
    try:
        await js.key_value(url.leases_bucket)
    except Exception:
        await js.create_key_value(
            bucket=url.leases_bucket, ttl=LEASE_TTL_S, history=1, replicas=s.replicas
        )
        out[url.leases_bucket] = "created"
    return out


async def init(url: StreamURL, settings: StreamSettings) -> dict[str, str]:
    nc = await connect(url, name="replaygate-admin")
    try:
        return await ensure_streams(nc.jetstream(), url, settings)
    except Exception as e:
        raise StreamError(f"cannot create streams for {url.stream}: {_one_line(e)}") from None
    finally:
        await nc.close()


async def status(url: StreamURL, *, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """Messages, bytes, consumers (pending / ack pending / delivered) and live workers (their
    ``age_s``: seconds since their last heartbeat, on ``clock``)."""
    nc = await connect(url, name="replaygate-admin")
    js = nc.jetstream()
    out: dict[str, Any] = {"streams": {}, "consumers": [], "workers": []}
    lag = 0
    try:
        for name in (url.stream, url.results_stream):
            try:
                info = await js.stream_info(name)
            except NotFoundError:
                out["streams"][name] = None
                continue
            st = info.state
            out["streams"][name] = {
                "messages": st.messages,
                "bytes": st.bytes,
                "first_seq": st.first_seq,
                "last_seq": st.last_seq,
            }
            if name == url.stream:
                infos = await js.consumers_info(name)
                lag = await _lag(js, url, {ci.name: ci for ci in infos})
                for ci in infos:
                    out["consumers"].append(
                        {
                            "name": ci.name,
                            "pending": ci.num_pending,
                            "ack_pending": ci.num_ack_pending,
                            "redelivered": ci.num_redelivered,
                            "delivered": ci.delivered.stream_seq if ci.delivered else 0,
                        }
                    )
        try:
            kv = await js.key_value(url.leases_bucket)
            keys = await kv.keys()
        except Exception:
            keys = []
        now = clock.time()
        for k in keys:
            if not k.startswith("w."):
                continue
            try:
                e = await kv.get(k)
            except Exception:
                continue
            info = orjson.loads(e.value or b"{}")
            info["age_s"] = round(now - float(info.get("ts", now)), 1)
            out["workers"].append(info)
    finally:
        await nc.close()
    out["lag"] = lag
    return out


async def _lag(js: JetStreamContext, url: StreamURL, consumers: dict[str, Any]) -> int:
    """Messages in the traffic stream not yet acknowledged by the worker consumer of their
    partition. A partition whose consumer no worker created yet counts all its messages
    (so ``lag`` is not 0 while 20,000 messages wait for the first worker)."""
    info = await js.stream_info(url.stream, subjects_filter=url.subjects)
    lag = 0
    for subject, count in (info.state.subjects or {}).items():
        try:
            p = int(subject.rsplit(".", 1)[1])
        except ValueError:
            lag += count  # not a partition subject: no worker reads it
            continue
        ci = consumers.get(url.consumer(p))
        lag += count if ci is None else ci.num_pending + ci.num_ack_pending
    return lag


async def purge(url: StreamURL, *, results: bool = True) -> dict[str, int]:
    nc = await connect(url, name="replaygate-admin")
    js = nc.jetstream()
    out: dict[str, int] = {}
    try:
        names = [url.stream] + ([url.results_stream] if results else [])
        for name in names:
            try:
                info = await js.stream_info(name)
            except NotFoundError:
                continue
            await js.purge_stream(name)
            out[name] = info.state.messages
            if name == url.stream:
                for ci in await js.consumers_info(name):
                    await js.delete_consumer(name, ci.name)
    finally:
        await nc.close()
    return out
