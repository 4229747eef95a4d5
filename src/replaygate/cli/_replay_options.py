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
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .._config_schema import int_range
from ..config import parse_duration, parse_size, section
from ..errors import ConfigError
from ._flags import duration_option, rate_option, speed_option

if TYPE_CHECKING:  # the replay package is heavy (event loop, clients); only for typing
    from ..replay import ReplayConfig

__all__ = ["ReplayOptions", "build_config", "correlate_option", "replay_options", "timing_options"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ReplayOptions:
    """What the replay flags say; ``None``: not given (the TOML or the default applies)."""

    target: tuple[str, ...] = ()
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

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def config(self, toml: Mapping[str, Any], **more: Any) -> ReplayConfig:
        """The ReplayConfig: ``[replay]`` from ``toml``, these flags and ``more`` (timing
        flags, ``max_speed``) on top."""
        return build_config({**self.as_dict(), **more}, toml)


# (names..., keyword, kwargs) in the order they appear in --help
_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--target", "-t", "target"),
        dict(
            multiple=True,
            metavar="URL",
            help="Target base URL (http:// or https://). Repeat to broadcast to several.",
        ),
    ),
    (
        ("--split/--no-split", "split"),
        dict(
            default=None,
            help="Round-robin the targets instead of broadcasting (sticky by session).",
        ),
    ),
    (
        ("--baseline", "baseline"),
        dict(
            metavar="URL",
            help="Also send every request to this second copy of the baseline (noise "
            "reference for compare).",
        ),
    ),
    (
        ("--concurrency", "-c", "concurrency"),
        dict(
            type=int_range("replay", "concurrency"),
            default=None,
            help="Requests in flight at most (default 64).",
        ),
    ),
    (
        ("--sessions/--no-sessions", "sessions"),
        dict(
            default=None,
            help="Replay each original connection (or session key) in order over one "
            "connection; sessions in parallel.",
        ),
    ),
    (
        ("--session-key", "session_key"),
        dict(
            metavar="cookie:NAME|header:NAME|basic|bearer|auth",
            help="What makes a session (default: the original connection).",
        ),
    ),
    (
        ("--order", "order"),
        dict(
            type=click.Choice(["none", "sessions", "recorded"]),
            default=None,
            help="Happens-before order (default recorded: no request before the exchanges "
            "that finished before it began in the recording; sessions: per user session; "
            "none).",
        ),
    ),
    (
        ("--keep-host/--no-keep-host", "keep_host"),
        dict(default=None, help="Send the recorded Host header instead of the target's."),
    ),
    (
        ("--connect-timeout", "connect_timeout"),
        dict(metavar="D", help="Connect timeout (default 5s)."),
    ),
    (
        ("--timeout", "timeout"),
        dict(
            metavar="D",
            help="Response timeout, first byte sent to last byte received (default 30s).",
        ),
    ),
    (
        ("--max-response-size", "max_response_size"),
        dict(
            metavar="SIZE",
            help="Keep at most this much of each replayed response; longer ones are cut, "
            "flagged replay_truncated and counted (default 64MiB).",
        ),
    ),
    (
        ("--max-header-size", "max_header_size"),
        dict(
            metavar="SIZE",
            help="Response heads (1xx ones included) longer than this are an error, "
            "headers_too_large (default 1MiB).",
        ),
    ),
    (
        ("--redirects", "redirects"),
        dict(
            type=int_range("replay", "redirects"),
            default=None,
            help="Follow up to N redirects to the same target (default 0: record the redirect).",
        ),
    ),
    (
        ("--insecure", "insecure"),
        dict(is_flag=True, default=None, help="Do not verify TLS certificates."),
    ),
    (
        ("--ca-file", "ca_file"),
        dict(metavar="PEM", help="Verify TLS with these CA certificates."),
    ),
    (
        ("--allow-unsafe-target", "allow_unsafe_target"),
        dict(
            is_flag=True,
            default=None,
            help="Allow non-GET/HEAD/OPTIONS requests to the host the traffic was captured from.",
        ),
    ),
    (
        ("--http2/--no-http2", "http2"),
        dict(
            default=None,
            help="Speak HTTP/2 to the targets: prior knowledge (h2c) for http://, ALPN h2 for "
            "https://; streams multiplexed (default HTTP/1.1).",
        ),
    ),
    (
        ("--h2-streams", "h2_streams"),
        dict(
            type=int_range("replay", "h2_streams"),
            default=None,
            metavar="N",
            help="With --http2: streams in flight per connection, at most (default 100, or "
            "fewer if the server says so).",
        ),
    ),
    (
        ("--h2-connections", "h2_connections"),
        dict(
            type=int_range("replay", "h2_connections"),
            default=None,
            metavar="N",
            help="With --http2: connections per target, at most (default 1).",
        ),
    ),
]

_NAMES = tuple(f.name for f in dataclasses.fields(ReplayOptions))


def replay_options(f: F) -> F:
    """Decorator: the replay flags, handed to the command as ``replay: ReplayOptions``."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _NAMES}
        values["target"] = tuple(values["target"] or ())
        return f(*args, replay=ReplayOptions(**values), **kwargs)

    wrapped: Any = command
    for names, kw in reversed(_OPTIONS):
        wrapped = click.option(*names, **kw)(wrapped)
    return wrapped  # type: ignore[no-any-return]


TIMING_HELP = "Timing (one of): --speed X (default 1), --rate N, --max, --ramp STAGES."


def timing_options(f: F) -> F:
    """Decorator: how ``replay`` schedules (``--speed``, ``--rate``, ``--max``, ``--ramp``)
    and how long (``--loop``, ``--duration``, ``--limit``, ``--max-wait``), ``--workers``;
    keywords for :meth:`ReplayOptions.config`."""
    opts = [
        speed_option,
        rate_option,
        click.option(
            "--max",
            "max_speed",
            is_flag=True,
            default=None,
            help="As fast as possible with --concurrency connections.",
        ),
        click.option(
            "--ramp",
            metavar="STAGES",
            help='Rate stages "RATE:DURATION,...", e.g. "100:10s,500:30s".',
        ),
        click.option(
            "--loop/--no-loop",
            default=None,
            help="Start over at the end of the input (until --duration or --limit).",
        ),
        duration_option,
        click.option(
            "--limit",
            type=int_range("replay", "limit"),
            default=None,
            help="Stop after N exchanges.",
        ),
        click.option("--max-wait", metavar="D", help="With --speed: cap long recorded gaps at D."),
        click.option(
            "--workers",
            type=int_range("replay", "workers"),
            default=None,
            help="Worker processes, split by session hash (default 1).",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def correlate_option(f: F) -> F:
    """Decorator: ``--correlate/--no-correlate`` (default on)."""
    return click.option(
        "--correlate/--no-correlate",
        default=True,
        help="Substitute session tokens and created ids learned from the targets' responses "
        "(default on).",
    )(f)


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
