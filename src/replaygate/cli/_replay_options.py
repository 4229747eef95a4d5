"""The replay flags shared by ``replay``, ``shadow`` and ``worker``: defined once, here.

``@replay_options`` adds the flags that say where and how requests are sent (targets,
connections, sessions and order, timeouts, limits, TLS, the safety rule) and hands the
command one :class:`ReplayOptions` (keyword ``replay``) instead of loose keywords;
:meth:`ReplayOptions.config` turns it, with the ``[replay]`` section of replaygate.toml under
it, into the library's :class:`~replaygate.replay.ReplayConfig`. ``@correlate_option`` is the
session-token correlation switch of ``replay`` and ``worker``. Timing flags (``--speed``,
``--rate`` ...) stay with the commands that schedule (``replay``; ``worker`` has its own global
rate): ``shadow`` sends as soon as it captures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import parse_duration, parse_size, section
from ..errors import ConfigError
from ._flags import flags, group

if TYPE_CHECKING:  # the replay package is heavy (event loop, clients); only for typing
    from ..replay import ReplayConfig

__all__ = ["ReplayOptions", "build_config", "correlate_option", "replay_options", "timing_options"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ReplayOptions:
    """What the replay flags say; ``None``: not given (the TOML or the default applies)."""

    split: bool | None = None
    baseline: str | None = None
    concurrency: int | None = None
    sessions: bool | None = None
    session_key: str | None = None
    order: str | None = None
    keep_host: bool | None = None
    connect_timeout: str | None = None
    timeout: str | None = None
    max_response_size: str | None = None
    max_header_size: str | None = None
    redirects: int | None = None
    insecure: bool | None = None
    ca_file: str | None = None
    allow_unsafe_target: bool | None = None
    http2: bool | None = None
    h2_streams: int | None = None
    h2_connections: int | None = None
    target: tuple[str, ...] = ()  # the targets' base URLs (--target, repeatable)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def config(self, toml: Mapping[str, Any], **more: Any) -> ReplayConfig:
        """The ReplayConfig: ``[replay]`` from ``toml``, these flags and ``more`` (timing
        flags, ``max_speed``) on top."""
        return build_config({**self.as_dict(), **more}, toml)


# the replay flags (flags.toml), in --help order: the fields of ReplayOptions
REPLAY_FLAGS = (
    "target", "split", "baseline", "concurrency", "sessions", "session_key", "order",
    "keep_host", "connect_timeout", "timeout", "max_response_size", "max_header_size",
    "redirects", "insecure", "ca_file", "allow_unsafe_target", "http2", "h2_streams",
    "h2_connections",
)  # fmt: skip


def _make(values: dict[str, Any]) -> ReplayOptions:
    return ReplayOptions(**{**values, "target": tuple(values["target"] or ())})


# Decorator: the replay flags, handed to the command as ``replay: ReplayOptions``.
replay_options = group("replay", _make, *REPLAY_FLAGS)


TIMING_HELP = "Timing (one of): --speed X (default 1), --rate N, --max, --ramp STAGES."


def timing_options(f: F) -> F:
    """Decorator: how ``replay`` schedules (``--speed``, ``--rate``, ``--max``, ``--ramp``)
    and how long (``--loop``, ``--duration``, ``--limit``, ``--max-wait``), ``--workers``;
    keywords for :meth:`ReplayOptions.config`."""
    return flags(
        "speed", "rate", "max_speed", "ramp", "loop", "duration", "limit", "max_wait", "workers"
    )(f)


def correlate_option(f: F) -> F:
    """Decorator: ``--correlate/--no-correlate`` (default on)."""
    return flags("correlate")(f)


_DURATION_FIELDS = ("duration", "max_wait", "connect_timeout", "response_timeout")
_SIZE_FIELDS = ("max_response_size", "max_header_size")


def build_config(options: Mapping[str, Any], config: Mapping[str, Any]) -> ReplayConfig:
    """ReplayConfig from the ``[replay]`` section with the flags on top."""
    from ..replay import ReplayConfig, parse_ramp

    data = dict(config.get("replay") or {})
    for k in list(data):
        kk = k.replace("-", "_")
        if kk in _DURATION_FIELDS and isinstance(data[k], str):
            data[k] = parse_duration(data[k], name=f"[replay] {k}")
        if kk in _SIZE_FIELDS and isinstance(data[k], str):
            data[k] = parse_size(data[k], name=f"[replay] {k}")
        if kk == "ramp" and isinstance(data[k], str):
            data[k] = parse_ramp(data[k])
    targets = list(options.get("target") or ()) or None
    if targets is None and "targets" not in data:
        raise ConfigError("--target: at least one target URL is required (or [replay] targets)")
    o = options
    dur = {
        k: parse_duration(o[f], name=f"--{f.replace('_', '-')}") if o.get(f) is not None else None
        for k, f in (
            ("duration", "duration"),
            ("max_wait", "max_wait"),
            ("connect_timeout", "connect_timeout"),
            ("response_timeout", "timeout"),
        )
    }
    sizes = {
        f: parse_size(o[f], name=f"--{f.replace('_', '-')}") if o.get(f) is not None else None
        for f in _SIZE_FIELDS
    }
    rc = section(
        ReplayConfig,
        data,
        name="replay",
        targets=targets,
        split=o.get("split"),
        baseline=o.get("baseline"),
        speed=o.get("speed"),
        rate=o.get("rate"),
        max_speed=o.get("max_speed"),
        concurrency=o.get("concurrency"),
        ramp=parse_ramp(o["ramp"]) if o.get("ramp") else None,
        loop=o.get("loop"),
        limit=o.get("limit"),
        sessions=o.get("sessions"),
        session_key=o.get("session_key"),
        order=o.get("order"),
        keep_host=o.get("keep_host"),
        redirects=o.get("redirects"),
        insecure=o.get("insecure"),
        ca_file=o.get("ca_file"),
        allow_unsafe_target=o.get("allow_unsafe_target"),
        workers=o.get("workers"),
        http2=o.get("http2"),
        h2_streams=o.get("h2_streams"),
        h2_connections=o.get("h2_connections"),
        **dur,
        **sizes,
    )
    if not isinstance(rc.targets, list) or not all(isinstance(t, str) for t in rc.targets):
        raise ConfigError("[replay] targets: must be a list of URLs")
    if rc.ramp is not None:
        rc.ramp = [(float(r), float(d)) for r, d in rc.ramp]
    if o.get("speed") is not None and (rc.rate is not None or rc.max_speed or rc.ramp):
        raise ConfigError("--speed: cannot be combined with --rate, --max or --ramp")
    rc.validate()
    return rc
