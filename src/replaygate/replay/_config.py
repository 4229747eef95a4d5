"""The replay configuration (``[replay]`` section / ``replay`` flags) and its validation.

One typed dataclass is passed to the engine; nothing reads global settings. ``validate``
turns every impossible combination into a :class:`~replaygate.errors.ConfigError` naming the
flag, so a typo never starts a half-configured replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import parse_duration
from ..errors import ConfigError

__all__ = ["ReplayConfig", "Target", "parse_ramp"]


@dataclass
class ReplayConfig:
    """How to replay: where to, how fast, in what order. Field names = ``[replay]`` keys."""

    targets: list[str]
    split: bool = False
    baseline: str | None = None
    speed: float = 1.0
    rate: float | None = None
    max_speed: bool = False
    concurrency: int = 64
    ramp: list[tuple[float, float]] | None = None  # (rate rps, duration s) stages
    loop: bool = False
    duration: float | None = None
    limit: int | None = None
    max_wait: float | None = None
    sessions: bool = False
    session_key: str | None = None
    order: str = "recorded"  # none | sessions | recorded (happens-before from the recording)
    keep_host: bool = False
    connect_timeout: float = 5.0
    response_timeout: float = 30.0
    max_response_size: int = 64 << 20  # bytes of a replayed response kept (rest: truncated)
    max_header_size: int = 1 << 20  # bytes of a replayed response's head(s)
    redirects: int = 0
    insecure: bool = False
    ca_file: str | None = None
    allow_unsafe_target: bool = False
    workers: int = 1
    http2: bool = False  # speak HTTP/2 to the targets (h2c prior knowledge / ALPN h2)
    h2_streams: int = 100  # streams in flight per HTTP/2 connection, at most
    h2_connections: int = 1  # HTTP/2 connections per target, at most

    def validate(self) -> None:
        """Raise ConfigError (naming the flag) for values the engine cannot run with."""
        from .._config_schema import BOUNDS

        for (sec, key), (lo, hi) in BOUNDS.items():
            v = getattr(self, key, None) if sec == "replay" else None
            if isinstance(v, int | float) and not isinstance(v, bool) and not lo <= v <= hi:
                flag = "--timeout" if key == "response_timeout" else "--" + key.replace("_", "-")
                raise ConfigError(f"{flag}: {v!r} is out of range ({lo:g} to {hi:g})")
        if not self.targets:
            raise ConfigError("--target: at least one target URL is required")
        for t in [*self.targets, *([self.baseline] if self.baseline else [])]:
            Target.parse(t)
        modes = [
            n
            for n, on in (
                ("--rate", self.rate is not None),
                ("--max", self.max_speed),
                ("--ramp", bool(self.ramp)),
            )
            if on
        ]
        if len(modes) > 1:
            raise ConfigError(f"{' and '.join(modes)}: choose one timing mode")
        if not self.speed > 0:
            raise ConfigError(f"--speed: must be > 0 (got {self.speed})")
        if self.rate is not None and not self.rate > 0:
            raise ConfigError(f"--rate: must be > 0 requests/s (got {self.rate})")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency: must be >= 1 (got {self.concurrency})")
        if self.workers < 1:
            raise ConfigError(f"--workers: must be >= 1 (got {self.workers})")
        if self.workers > self.concurrency:
            raise ConfigError("--workers: cannot exceed --concurrency")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"--limit: must be >= 0 (got {self.limit})")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"--duration: must be > 0 (got {self.duration})")
        if self.max_wait is not None and self.max_wait < 0:
            raise ConfigError("--max-wait: must not be negative")
        if self.redirects < 0:
            raise ConfigError("--redirects: must be >= 0")
        if not self.connect_timeout > 0:
            raise ConfigError("--connect-timeout: must be > 0")
        if not self.response_timeout > 0:
            raise ConfigError("--timeout: must be > 0")
        if self.max_response_size < 1024:
            raise ConfigError(
                f"--max-response-size: must be >= 1KiB (got {self.max_response_size})"
            )
        if self.max_header_size < 1024:
            raise ConfigError(f"--max-header-size: must be >= 1KiB (got {self.max_header_size})")
        if self.order not in ("none", "sessions", "recorded"):
            raise ConfigError(f"--order: expected none, sessions or recorded, got {self.order!r}")
        if self.session_key is not None:
            kind, _, name = self.session_key.partition(":")
            kind = kind.lower()
            if not (
                (kind in ("cookie", "header") and name)
                or (kind in ("basic", "bearer", "auth") and not name)
            ):
                raise ConfigError(
                    "--session-key: expected cookie:NAME, header:NAME, basic, bearer or auth, "
                    f"got {self.session_key!r}"
                )
        if self.split and len(self.targets) < 2:
            raise ConfigError("--split: needs at least two --target URLs")
        if self.ramp:
            for r, d in self.ramp:
                if r < 0 or d <= 0:
                    raise ConfigError("--ramp: each stage needs rate >= 0 and duration > 0")

    @property
    def timed(self) -> bool:
        """True when requests follow a schedule (everything but ``--max``)."""
        return not self.max_speed


@dataclass(frozen=True)
class Target:
    """A parsed target URL: where to connect and what Host header to send."""

    url: str
    scheme: str
    host: str
    port: int
    prefix: str  # path prefix of the URL ("" when none), prepended to request targets

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        """``host[:port]`` as a client would send it (default port omitted)."""
        h = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return h if self.port == default else f"{h}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> Target:
        text = url.strip()
        if "://" not in text:
            # --help says a target is a URL: "host:port" or "http//host" (a typo) is refused
            # rather than guessed, so a typo never becomes a host named "http"
            raise ConfigError(
                f"--target: {url!r} is not a URL: give the scheme, http://HOST[:PORT] or "
                "https://HOST[:PORT]"
            )
        try:
            u = urlsplit(text)
            port = u.port
        except ValueError as e:
            raise ConfigError(f"--target: invalid URL {url!r} ({e})") from None
        scheme = u.scheme.lower()
        if scheme not in ("http", "https"):
            raise ConfigError(f"--target: unsupported scheme in {url!r} (use http:// or https://)")
        if not u.hostname:
            raise ConfigError(f"--target: no host in {url!r}")
        if port is None:
            port = 443 if scheme == "https" else 80
        prefix = u.path.rstrip("/")
        return cls(url, scheme, u.hostname, port, prefix)


def parse_ramp(text: str) -> list[tuple[float, float]]:
    """``"100:10s,500:30s"`` -> ``[(100.0, 10.0), (500.0, 30.0)]`` (rate rps : duration)."""
    stages: list[tuple[float, float]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        rate_txt, sep, dur_txt = part.partition(":")
        if not sep:
            raise ConfigError(f"--ramp: stage {part!r} is not RATE:DURATION (e.g. 100:10s)")
        try:
            rate = float(rate_txt)
        except ValueError:
            raise ConfigError(f"--ramp: rate {rate_txt!r} in {part!r} is not a number") from None
        dur = parse_duration(dur_txt, name="--ramp")
        if rate < 0 or dur <= 0:
            raise ConfigError(f"--ramp: stage {part!r} needs rate >= 0 and duration > 0")
        if 0 < rate < 1e-6 or rate > 1e7 or dur > 1e9:
            raise ConfigError(
                f"--ramp: stage {part!r} is out of range (rate 0 or 1e-6 to 1e7 requests/s, "
                "duration up to 1e9 s)"
            )
        stages.append((rate, dur))
    if not stages:
        raise ConfigError("--ramp: no stages given (e.g. 100:10s,500:30s)")
    return stages
