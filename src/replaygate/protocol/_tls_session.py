"""What the TLS decryption of a capture shares across its connections: the configuration
(secrets, how long and how much a record may wait for its key), the counters of sessions by
outcome (:data:`FAILURES`) and the cache of TLS 1.2 master secrets for resumed sessions.
The connection itself is :class:`replaygate.protocol.tls.TLSConnection`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

from .keylog import KeyLog

__all__ = ["FAILURES", "TLSConfig", "TLSSessionCache", "TLSStats"]

FAILURES = (
    "no_key",
    "unsupported_suite",
    "unsupported_version",
    "resumed_without_secret",
    "cut_before_handshake",
    "handshake_incomplete",
    "http2",
    "decrypt_error",
    "bad_record",
    "gap",
    "key_wait_overflow",
)


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """``keys``: the secrets (grows while a live capture follows the key log).
    ``key_wait_s``: capture time a record may wait for its key. ``max_held_bytes``: bytes
    one connection may hold while waiting."""

    keys: KeyLog
    key_wait_s: float = 10.0
    max_held_bytes: int = 4 << 20


@dataclass(slots=True)
class TLSStats:
    """Sessions seen, decrypted, and, by reason (:data:`FAILURES`), not decrypted.

    ``decrypted``: sessions with application data decrypted; ``resumed``: resumed sessions
    (decrypted or not); ``undecrypted_bytes``: TLS bytes of failed sessions;
    ``http2_bytes``: decrypted bytes of h2 sessions (not parsed yet);
    ``early_data_skipped``: 0-RTT records not decrypted."""

    sessions: int = 0
    decrypted: int = 0
    resumed: int = 0
    renegotiations: int = 0
    key_updates: int = 0
    records: int = 0
    plaintext_bytes: int = 0
    no_key: int = 0
    unsupported_suite: int = 0
    unsupported_version: int = 0
    resumed_without_secret: int = 0
    cut_before_handshake: int = 0
    handshake_incomplete: int = 0
    http2: int = 0
    decrypt_error: int = 0
    bad_record: int = 0
    gap: int = 0
    key_wait_overflow: int = 0
    early_data_skipped: int = 0
    undecrypted_bytes: int = 0
    http2_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class TLSSessionCache:
    """Master secrets of TLS 1.2 sessions seen in this capture, by session id and by ticket,
    so that a resumption whose own key log line is missing can still be decrypted."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._m: OrderedDict[bytes, bytes] = OrderedDict()

    def put(self, kind: bytes, key: bytes, master: bytes) -> None:
        if key:
            self._m[kind + key] = master
            self._m.move_to_end(kind + key)
            while len(self._m) > self._max:
                self._m.popitem(last=False)

    def get(self, kind: bytes, key: bytes) -> bytes | None:
        return self._m.get(kind + key) if key else None
