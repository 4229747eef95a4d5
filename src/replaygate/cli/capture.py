"""``replaygate capture``: record HTTP traffic passively from network interfaces.

Like GoReplay's ``--input-raw``, with no silent loss: every counter (kernel drops, flows
expired incomplete, requests without responses, recordings dropped by backpressure) is
printed at exit and, with ``--metrics-port``, exported to Prometheus while running.
SIGINT/SIGTERM stop gracefully: reading stops, complete exchanges are flushed, the counters
are written, files closed, exit 0.

The helpers here (signals, output, stats lines, metrics) are shared with ``proxy`` and
``shadow``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from ..config import load_config, parse_duration, parse_size
from ..errors import ConfigError, InputError
from ..formats import WriteOptions, format_of, open_writer
from ..pipeline import Counters, Sink, Stage
from ._capture_options import CaptureOptions, capture_options
from ._options import config_option
from ._output import max_queue_option, write_options

if TYPE_CHECKING:
    from ..stages.defaults import TrafficOptions

__all__ = [
    "check_output_flags",
    "command",
    "format_stats",
    "metrics_server",
    "open_output",
    "output_options",
    "overwrite_options",
    "remove_if_empty",
    "run_options",
    "stop_on_signals",
    "traffic_stages",
]

F = Callable[..., Any]


def output_options(f: F) -> F:
    """``--output FILE --max-bytes SIZE --max-seconds DURATION``."""
    f = click.option(
        "--max-seconds",
        default=None,
        metavar="DURATION",
        help="Rotate .gor output every DURATION (e.g. 10m): name_0.gor, name_1.gor, ...",
    )(f)
    f = click.option(
        "--max-bytes",
        default=None,
        metavar="SIZE",
        help="Rotate .gor output after SIZE (e.g. 64mb).",
    )(f)
    return f


def overwrite_options(f: F) -> F:
    """``--force`` / ``--append``: what a recorder may do with an output that holds data."""
    f = click.option(
        "--append",
        is_flag=True,
        default=False,
        help="Add to an existing .gor/.jsonl output instead of refusing to start.",
    )(f)
    f = click.option(
        "--force",
        is_flag=True,
        default=False,
        help="Overwrite an existing output (by default a non-empty one is refused).",
    )(f)
    return f


def open_output(
    output: str,
    max_bytes: str | None,
    max_seconds: str | None,
    *,
    force: bool | None = None,
    append: bool = False,
) -> Sink:
    """The writer for ``output`` (format by extension), checked before capture starts.

    ``force=None`` keeps the old overwrite behaviour for commands without ``--force``;
    ``False`` refuses an output that holds data unless ``append`` (see ``_output_guard``).
    """
    if force is not None:
        check_output_flags(output, max_bytes, max_seconds, force=force, append=append)
    fmt = format_of(output)
    if fmt == "nats":  # a JetStream stream (docs/deployment.md): connect now, fail early
        if max_bytes is not None or max_seconds is not None:
            raise ConfigError("--max-bytes/--max-seconds: rotation is for .gor outputs only")
        return open_writer(output, WriteOptions())
    if fmt not in ("gor", "har", "jsonl"):
        raise InputError(
            "cannot write this format (write .gor[.gz|.zst], .har, .jsonl or nats://...)",
            path=output,
        )
    d = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(d):
        raise InputError("directory does not exist", path=d)
    if not os.access(d, os.W_OK):
        raise InputError("directory is not writable", path=d)
    w = write_options(output, append=append, max_bytes=max_bytes, max_seconds=max_seconds)
    return open_writer(output, w)


def check_output_flags(
    output: str, max_bytes: str | None, max_seconds: str | None, *, force: bool, append: bool
) -> None:
    """Refuse (one line, exit 2) to overwrite a recording unless --force/--append says how."""
    from ..sources._output_guard import check_output

    rotating = max_bytes is not None or max_seconds is not None
    check_output(output, force=force, append=append, rotating=rotating)


def remove_if_empty(path: str) -> None:
    """Do not leave an empty output behind when the run could not start."""
    with contextlib.suppress(OSError):
        if os.path.getsize(path) == 0:
            os.remove(path)


def traffic_stages(traffic: TrafficOptions, config_path: str | None) -> list[Stage]:
    """The filter/sample/mask/rewrite/middleware stages from the shared traffic flags."""
    from ..stages.defaults import default_stages

    return default_stages(traffic, load_config(config_path), counters=Counters())


def with_traffic_options(f: F) -> F:
    """The traffic flags, handed to the command as ``traffic: TrafficOptions``."""
    from ._options import traffic_group

    return traffic_group(f)


def run_options(*, stats_default: str | None, buffer: bool) -> Callable[[F], F]:
    """``--stats``, ``--metrics-port``, ``--config`` (and ``--buffer-size`` for commands that
    capture): the run flags capture, proxy and shadow share."""

    def deco(f: F) -> F:
        f = config_option(f)
        if buffer:
            f = click.option(
                "--buffer-size",
                default="64mb",
                show_default=True,
                metavar="SIZE",
                help="Kernel capture buffer per interface.",
            )(f)
        f = click.option(
            "--metrics-port",
            default=None,
            metavar="[HOST:]PORT",
            help="Export counters for Prometheus at /metrics.",
        )(f)
        alone = "" if stats_default else " (default 10s when given alone)"
        f = click.option(
            "--stats",
            "stats",
            is_flag=False,
            flag_value="10s",
            default=stats_default,
            show_default=stats_default is not None,
            metavar="[INTERVAL]",
            help=f"Print a counters line every INTERVAL{alone}.",
        )(f)
        return f

    return deco


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM while inside the block (handlers restored after)."""
    ev = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield ev
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        ev.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield ev
    finally:
        for s, h in old.items():
            signal.signal(s, h)


_ORDER = (
    "packets_seen",
    "packets_dropped_kernel",
    "packets_dropped_interface",
    "packets_dropped_queue",
    "exchanges",
    "exchanges_complete",
    "exchanges_incomplete",
    "requests_without_response",
    "flows_expired_incomplete",
    "exchanges_written",
    "forwarded",
    "recorded",
    "dropped_recordings",
    "lost_on_sink_error",
    "errors",
)


def format_stats(stats: Mapping[str, Any], *, every: bool = False) -> str:
    """``key=value`` pairs, most important first; zero-valued extras left out unless
    ``every`` (the exit summary shows everything that is not zero, plus the key counts)."""
    parts = [f"{k}={stats[k]}" for k in _ORDER if k in stats]
    for k in sorted(stats):
        if k in _ORDER:
            continue
        v = stats[k]
        if isinstance(v, int | float) and (v or every):
            parts.append(f"{k}={v}")
    return " ".join(parts)


def metrics_server(address: str | None, collect: Callable[[], Mapping[str, Any]]) -> Any:
    """A started :class:`~replaygate.metrics.MetricsServer`, or None without the flag."""
    if address is None:
        return None
    from ..metrics import MetricsServer, parse_metrics_address

    host, port = parse_metrics_address(address)
    m = MetricsServer(collect, host=host, port=port)
    click.echo(f"replaygate: metrics on http://{host}:{m.port}/metrics", err=True)
    return m


class StatsLine:
    """Periodic ``--stats`` line on stderr (and the latest counters for metrics)."""

    def __init__(self, interval: float | None, label: str) -> None:
        self.interval = interval
        self.label = label
        self.latest: dict[str, Any] = {}
        self._next = time.monotonic() + (interval or 0)

    def __call__(self, stats: Mapping[str, Any]) -> None:
        self.latest = dict(stats)
        if self.interval and time.monotonic() >= self._next:
            self._next = time.monotonic() + self.interval
            click.echo(f"replaygate: {self.label}: {format_stats(stats)}", err=True)


def parse_stats_interval(text: str | None) -> float | None:
    if text is None:
        return None
    v = parse_duration(text, name="--stats")
    if v <= 0:
        raise ConfigError("--stats: interval must be positive")
    return v


@click.command("capture", context_settings={"help_option_names": ["-h", "--help"]})
@capture_options
@click.option(
    "--output",
    "-o",
    required=True,
    metavar="FILE",
    help="Where to write (.gor[.gz|.zst], .har, .jsonl). An existing non-empty FILE is "
    "refused unless --force or --append.",
)
@output_options
@overwrite_options
@click.option(
    "--track-responses/--no-track-responses",
    default=True,
    help="Record original responses with latency (default), or requests only.",
)
@max_queue_option("Exchanges waiting for the writer")
@click.option(
    "--idle-timeout",
    default="120s",
    show_default=True,
    metavar="DURATION",
    help="Expire a connection silent this long (counted if incomplete).",
)
@click.option(
    "--tls-keylog",
    default=None,
    metavar="FILE",
    help="Decrypt HTTPS with this NSS key log (SSLKEYLOGFILE), followed as clients write it.",
)
@run_options(stats_default=None, buffer=True)
@with_traffic_options
def command(
    capture: CaptureOptions,
    output: str,
    max_bytes: str | None,
    max_seconds: str | None,
    force: bool,
    append: bool,
    track_responses: bool,
    stats: str | None,
    metrics_port: str | None,
    buffer_size: str,
    max_queue: int,
    idle_timeout: str,
    tls_keylog: str | None,
    config_path: str | None,
    traffic: TrafficOptions,
) -> None:
    """Capture HTTP/1.x exchanges from network interfaces into FILE.

    Needs root or CAP_NET_RAW (otherwise use `replaygate proxy`). Counters go to stderr at
    exit; nothing dropped goes uncounted.

    \b
    Examples:
      replaygate capture --port 8080 --output traffic.gor
      replaygate capture -i eth0 -p 80 -p 443 --duration 10m --stats -o prod.gor.zst
      replaygate capture --bpf 'tcp port 80 and net 10.0.0.0/8' --max-seconds 1h -o p.gor
      SSLKEYLOGFILE=/tmp/k.log curl https://... &  # then:
      replaygate capture -p 443 --tls-keylog /tmp/k.log -o https.gor
    """
    from ..sources.capture import run_capture

    check_output_flags(output, max_bytes, max_seconds, force=force, append=append)
    cfg = capture.config(
        track_responses=track_responses,
        buffer_bytes=parse_size(buffer_size, name="--buffer-size"),
        max_queue=max_queue,
        idle_timeout_s=parse_duration(idle_timeout, name="--idle-timeout"),
        tls_keylog=tls_keylog,
    )
    if max_queue <= 0:
        raise ConfigError("--max-queue: must be positive")
    interval = parse_stats_interval(stats)
    stages = traffic_stages(traffic, config_path)
    sink = open_output(output, max_bytes, max_seconds, force=force, append=append)
    line = StatsLine(interval, "capture")
    metrics = metrics_server(metrics_port, lambda: line.latest)
    what = cfg.bpf or "ports " + " ".join(map(str, cfg.ports))

    def ready() -> None:
        where = ", ".join(cfg.interfaces) or "all interfaces"
        click.echo(f"replaygate: capturing on {where} ({what}) -> {output}", err=True)

    try:
        with stop_on_signals() as stop:
            try:
                result = run_capture(
                    cfg, sink, stages=stages, stop=stop, on_stats=line, on_ready=ready
                )
            except Exception as e:
                final = getattr(e, "stats", None)
                if isinstance(final, dict):
                    click.echo(f"replaygate: capture: {format_stats(final)}", err=True)
                else:
                    remove_if_empty(output)
                raise
    finally:
        if metrics is not None:
            metrics.close()
    click.echo(f"replaygate: capture: {format_stats(result)}", err=True)
    sys.stderr.flush()
