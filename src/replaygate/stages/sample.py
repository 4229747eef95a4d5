"""Sampling: keep a percentage of traffic, either consistently by key or at random.

Consistent sampling (``--sample 25% --sample-by header:X-User``) hashes a key of each
request and keeps it when ``hash % 100 < 25``: the same users (sessions, ids) are kept on
every run, on every machine, so a sampled replay still contains whole user journeys. The hash
is GoReplay's (32-bit FNV-1a of the value, modulo 100 for whole percentages), so
``--http-header-limiter "X-User: 25%"`` keeps exactly the users GoReplay keeps. Fractional
percentages use ``hash % 10000``.

Keys: ``header:NAME``, ``query:NAME``, ``cookie:NAME``, ``session`` (the default: the
exchange's session key, else its client connection, else the exchange id). A request *without* the key is kept, as
GoReplay does, and counted under ``notes["sample.no_key"]``.

Random sampling (``--sample-random 10%``) keeps each exchange independently.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from urllib.parse import parse_qsl

from ..config import parse_percent
from ..errors import ConfigError
from ..model import Exchange
from ..pipeline import Counters
from .filter import _method_target

__all__ = ["RandomSampleStage", "SampleStage", "fnv1a_32", "sample_key"]

_KINDS = ("header", "query", "cookie", "session")


def fnv1a_32(data: bytes) -> int:
    """32-bit FNV-1a (Go's ``hash/fnv.New32a``); keys are short, so a loop is fine."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def _parse_by(text: str) -> tuple[str, str]:
    kind, _, name = text.partition(":")
    kind = kind.strip().lower()
    name = name.strip()
    if kind not in _KINDS or (kind != "session" and not name) or (kind == "session" and name):
        raise ConfigError(
            f"--sample-by: expected header:NAME, query:NAME, cookie:NAME or session, got {text!r}"
        )
    return kind, name


def sample_key(ex: Exchange, kind: str, name: str) -> str | None:
    """The value consistent sampling hashes, or None when the request does not carry it."""
    req = ex.request
    if kind == "header":
        return req.header(name)
    if kind == "query":
        target = _method_target(req)[1]
        query = target.split("?", 1)[1] if "?" in target else ""
        for k, v in parse_qsl(query, keep_blank_values=True):
            if k == name:
                return v
        return None
    if kind == "cookie":
        for header in _cookie_headers(ex):
            for part in header.split(";"):
                k, sep, v = part.strip().partition("=")
                if sep and k.strip() == name:
                    return v.strip()
        return None
    # session: the session key, else the client connection, else the exchange itself (files
    # without connections, e.g. HAR: each exchange is its own session, ids are stable)
    if ex.session:
        return ex.session
    if ex.conn is not None:
        return f"{ex.conn.src}:{ex.conn.sport}"
    return ex.id


def _cookie_headers(ex: Exchange) -> list[str]:
    return [v for k, v in ex.request.headers if k.lower() == "cookie"]


class SampleStage:
    """Keep ``percent`` of keys, the same keys every run (see module doc)."""

    name = "sample"

    def __init__(
        self, percent: str | float, by: str | None = None, counters: Counters | None = None
    ) -> None:
        frac = parse_percent(percent, name="--sample")
        self.fraction = frac
        self.kind, self.key_name = _parse_by(by or "session")
        whole = round(frac * 100)
        if abs(frac * 100 - whole) < 1e-9:
            self._mod, self._keep_below = 100, whole
        else:
            self._mod, self._keep_below = 10_000, round(frac * 10_000)
        self.counters = counters or Counters()

    def bind_counters(self, counters: Counters) -> None:
        self.counters = counters

    def keeps(self, key: str) -> bool:
        """Whether the key is in the sample (pure function of key and percentage)."""
        return fnv1a_32(key.encode("utf-8", "surrogateescape")) % self._mod < self._keep_below

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        key = sample_key(ex, self.kind, self.key_name)
        if key is None:
            self.counters.notes["sample.no_key"] += 1
            return (ex,)
        if self.keeps(key):
            return (ex,)
        return ()

    def close(self) -> Iterable[Exchange]:
        return ()


class RandomSampleStage:
    """Keep each exchange with probability ``percent`` (``seed`` for reproducible tests)."""

    name = "sample"

    def __init__(self, percent: str | float, seed: int | None = None) -> None:
        self.fraction = parse_percent(percent, name="--sample-random")
        self._random = random.Random(seed).random

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        return (ex,) if self._random() < self.fraction else ()

    def close(self) -> Iterable[Exchange]:
        return ()
