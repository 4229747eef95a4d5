"""``nats://host:port[,host:port...]/STREAM[?partitions=N&results=NAME&key=K]`` parsing.

``key`` chooses what keeps exchanges in one partition when publishing: ``connection``
(default) or a user key (``user``, ``cookie:NAME``, ...: see ``_partition``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigError

__all__ = [
    "DEFAULT_PARTITIONS",
    "KEY_SPECS",
    "StreamURL",
    "check_key",
    "is_stream_url",
    "parse_stream_url",
]

DEFAULT_PARTITIONS = 16
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@dataclass(frozen=True, slots=True)
class StreamURL:
    """Where a stream lives and how it is laid out."""

    servers: tuple[str, ...]
    stream: str
    partitions: int = DEFAULT_PARTITIONS
    results: str | None = None
    key: str = "connection"  # partition key when publishing (see _partition)

    @property
    def results_stream(self) -> str:
        """Name of the results stream (default ``<STREAM>-RESULTS``)."""
        return self.results or f"{self.stream}-RESULTS"

    def subject(self, partition: int) -> str:
        return f"rg.{self.stream}.p.{partition}"

    @property
    def subjects(self) -> str:
        return f"rg.{self.stream}.>"

    @property
    def leases_bucket(self) -> str:
        return f"rg_{self.stream}_leases".replace("-", "_")

    def consumer(self, partition: int) -> str:
        return f"rg-{self.stream}-p{partition}"

    def with_stream(self, name: str) -> StreamURL:
        return StreamURL(self.servers, name, self.partitions, None)


KEY_SPECS = "connection, user, cookie:NAME, header:NAME, basic, bearer or auth"


def check_key(key: str, *, name: str = "key") -> str:
    """The partition key spec, validated (ConfigError naming ``name`` when wrong)."""
    kind, sep, arg = key.partition(":")
    kind = kind.lower()
    if not sep and kind in ("connection", "user", "basic", "bearer", "auth"):
        return kind
    if sep and kind in ("cookie", "header") and arg.strip():
        return f"{kind}:{arg.strip()}"
    raise ConfigError(f"{name}: {key!r} is not a partition key (use {KEY_SPECS})")


def is_stream_url(text: str) -> bool:
    return text.startswith(("nats://", "tls://"))


def parse_stream_url(text: str, *, name: str = "url") -> StreamURL:
    """Parse a stream URL; ConfigError naming ``name`` (flag or field) when it is wrong."""
    if not is_stream_url(text):
        raise ConfigError(f"{name}: {text!r} is not a nats:// URL (nats://HOST:PORT/STREAM)")
    parts = urlsplit(text)
    netloc = parts.netloc
    if not netloc:
        raise ConfigError(f"{name}: {text!r} has no host (nats://HOST:PORT/STREAM)")
    servers = tuple(f"{parts.scheme}://{h.strip()}" for h in netloc.split(",") if h.strip())
    stream = parts.path.strip("/")
    if not stream:
        raise ConfigError(f"{name}: {text!r} names no stream (nats://HOST:PORT/STREAM)")
    if not _NAME.match(stream):
        raise ConfigError(
            f"{name}: stream name {stream!r} may use only letters, digits, '-' and '_'"
        )
    q = parse_qs(parts.query)
    partitions = DEFAULT_PARTITIONS
    if "partitions" in q:
        try:
            partitions = int(q["partitions"][-1])
        except ValueError:
            partitions = 0
        if not 1 <= partitions <= 1024:
            raise ConfigError(f"{name}: partitions must be 1..1024")
    key = "connection"
    if "key" in q:
        key = check_key(q["key"][-1], name=f"{name} key")
    results = q["results"][-1] if "results" in q else None
    if results is not None and not _NAME.match(results):
        raise ConfigError(f"{name}: results stream name {results!r} is invalid")
    return StreamURL(servers, stream, partitions, results, key)
