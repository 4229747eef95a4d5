"""Which partition an exchange is published to: by connection (default) or by user.

A NATS worker keeps the replay order (``--order``) only within what it replays, and a worker
replays whole partitions. By default the partition follows the exchange's session (the
original connection, :func:`~replaygate.jetstream.codec.partition_of`), so a user who
reconnects can span partitions. ``?key=user`` (or a ``--session-key`` spec: ``cookie:NAME``,
``header:NAME``, ``basic``, ``bearer``, ``auth``) keeps one user's traffic in one partition:

- an exchange's keys are the ones ``--order sessions`` uses
  (:func:`~replaygate.replay._order.user_keys`: its connection and its credentials, or the
  chosen session key), and session cookies its original response *issued* (``Set-Cookie``);
- the first exchange of a key decides its partition and every key it carries sticks to it,
  so the request that creates an account (no credentials yet) and the requests on other
  connections authenticated as that account land together;
- when an exchange's keys already sit in different partitions (a connection shared by two
  users through a load balancer), the credential wins over the connection; such exchanges
  are counted (``conflicts``): what was published cannot move.

Memory is bounded: beyond ``max_keys`` the least recently used keys are forgotten (a user
idle that long may then move). The assignment lives in the publishing process: publishers
capturing the same users on several hosts agree only through the hash of the key they see
first.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict

from ..model import Exchange
from ..replay._order import user_keys
from .codec import session_of
from .url import KEY_SPECS, check_key

__all__ = ["KEY_SPECS", "Partitioner", "check_key"]

_MIN_COOKIE = 16  # as user_keys: shorter cookie values are not user identities


class Partitioner:
    """Stable partition per exchange (see the module docstring)."""

    def __init__(self, partitions: int, key: str = "connection", max_keys: int = 200_000):
        self.partitions = partitions
        self.key = check_key(key)
        self.spec: str | None = None if self.key in ("connection", "user") else self.key
        self.max_keys = max_keys
        self.conflicts = 0
        self._part: OrderedDict[str, int] = OrderedDict()

    def __call__(self, ex: Exchange) -> int:
        if self.key == "connection" or self.partitions == 1:
            return zlib.crc32(session_of(ex).encode()) % self.partitions
        keys = user_keys(ex, self.spec)
        table = self._part
        known = [(k, p) for k in keys if (p := table.get(k)) is not None]
        if not known:
            first = keys[-1] if keys else session_of(ex)  # a credential before the connection
            part = zlib.crc32(first.encode()) % self.partitions
        else:
            part = known[-1][1]  # keys are connection first, credentials after: the user wins
            if any(p != part for _, p in known):
                self.conflicts += 1
        for k in (*keys, *self._issued(ex)):
            table[k] = part
            table.move_to_end(k)
        while len(table) > self.max_keys:
            table.popitem(last=False)
        return part

    def _issued(self, ex: Exchange) -> list[str]:
        """Session cookies the original response set: the requests that carry them later
        belong to the user this exchange belongs to (a login answered with a cookie)."""
        if ex.response is None or not (self.key == "user" or self.key.startswith("cookie:")):
            return []  # other keys are headers/credentials: a cookie is not one of them
        want = self.key[7:] if self.key.startswith("cookie:") else None
        out: list[str] = []
        for sc in ex.response.header_values("set-cookie"):
            k, sep, v = sc.partition(";")[0].strip().partition("=")
            k, v = k.strip(), v.strip().strip('"')
            if not sep or not v:
                continue
            if (want is not None and k == want) or (want is None and len(v) >= _MIN_COOKIE):
                out.append(f"c:{k}={v}")
        return out
