"""Exchange <-> JetStream message: ``.gor`` records as the payload, ids in headers."""

from __future__ import annotations

import zlib

from ..errors import FormatError
from ..formats.gor import _exchange_from_records, exchange_bytes, parse_bytes
from ..model import Exchange

__all__ = [
    "HDR_ID",
    "HDR_SESSION",
    "HDR_TS",
    "decode_exchange",
    "encode_exchange",
    "partition_of",
    "session_of",
]

HDR_ID = "Rg-Id"
HDR_SESSION = "Rg-Session"
HDR_TS = "Rg-Ts"
HDR_WORKER = "Rg-Worker"
MSG_ID = "Nats-Msg-Id"


def session_of(ex: Exchange) -> str:
    """The key that keeps a session on one worker: session, else connection, else id."""
    if ex.session:
        return ex.session
    if ex.conn is not None:
        return str(ex.conn)
    return ex.id


def partition_of(ex: Exchange, partitions: int) -> int:
    """Stable partition of an exchange's session (crc32: same on every machine)."""
    return zlib.crc32(session_of(ex).encode()) % partitions


def encode_exchange(ex: Exchange) -> tuple[bytes, dict[str, str]]:
    """Payload and headers for one exchange (``Nats-Msg-Id`` lets JetStream drop repeats)."""
    payload = exchange_bytes(ex)
    msg_id = ex.id
    role = ex.meta.get("role")
    target = ex.meta.get("target")
    if ex.replayed is not None or ex.replay_error is not None:
        msg_id = f"{ex.id}/{role or ''}/{target or ''}"
    headers = {
        MSG_ID: msg_id,
        HDR_ID: ex.id,
        HDR_SESSION: session_of(ex),
        HDR_TS: str(ex.ts_ns),
    }
    return payload, headers


def decode_exchange(data: bytes) -> Exchange:
    """Inverse of :func:`encode_exchange`; FormatError when the payload is not one exchange."""
    recs = parse_bytes(data)
    reqs = [r for r in recs if r.type == 1]
    if len(reqs) != 1:
        raise FormatError(f"stream message holds {len(reqs)} requests, expected 1")
    others = [r for r in recs if r.type != 1 and r.id == reqs[0].id]
    return _exchange_from_records(reqs[0], others)
