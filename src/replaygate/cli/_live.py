"""What the live commands (``capture``, ``proxy``, ``shadow``) share: their output flags, run
flags (``--stats``, ``--metrics-port``, ``--config``, ``--buffer-size``), stats lines, the
Prometheus endpoint, and running a live :class:`~replaygate.runner.Run` until a signal."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

import click

from .._clock import SYSTEM_CLOCK, Clock
from ..config import load_config, parse_duration
from ..errors import ConfigError
from ..runner import Output, Run, RunResult
from ..runner._output import check_output
from ._flags import bounded_duration, bounded_size, flags
from ._options import traffic_group
from ._output import write_options

__all__ = [
    "LiveFlags",
    "OutputFlags",
    "StatsLine",
    "format_stats",
    "live_options",
    "metrics_server",
    "output_options",
    "parse_stats_interval",
    "run_live",
    "stop_on_signals",
]

F = Callable[..., Any]


@dataclass(frozen=True)
class OutputFlags:
    """A recorder's ``--output`` (declared by each command: what it records differs) with
    ``--max-bytes``, ``--max-seconds``, ``--force`` and ``--append``."""

    path: str | None
    max_bytes: str | None = None
    max_seconds: str | None = None
    force: bool = False
    append: bool = False

    def output(self) -> Output | None:
        """The checked Output (None without ``--output``); an output that holds data is
        refused (one line, exit 2) unless --force or --append says what to do with it."""
        if self.path is None:
            if self.force or self.append:
                raise ConfigError("--force/--append: only with --output")
            return None
        w = write_options(
            self.path,
            append=self.append,
            max_bytes=self.max_bytes,
            max_seconds=self.max_seconds,
            check_format=False,
        )
        out = Output(self.path, w, force=self.force)
        check_output(out)
        return out


def output_options(f: F) -> F:
    """``--max-bytes``, ``--max-seconds``, ``--force``, ``--append``, handed to the command
    with its ``--output`` as one ``output: OutputFlags``."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        names = ("max_bytes", "max_seconds", "force", "append")
        given = OutputFlags(kwargs.pop("output"), **{k: kwargs.pop(k) for k in names})
        return f(*args, output=given, **kwargs)

    return flags("max_bytes", "max_seconds", "force", "append")(command)


@dataclass(frozen=True)
class LiveFlags:
    """``--stats``, ``--metrics-port``, ``--config`` and (capture, shadow) ``--buffer-size``."""

    stats: str | None
    metrics_port: str | None
    config_path: str | None
    buffer_size: str | None = None

    def stats_line(self, label: str) -> StatsLine:
        return StatsLine(parse_stats_interval(self.stats), label)

    def buffer_bytes(self) -> int:
        # libpcap takes a C int; the kernel allocates it per interface
        return bounded_size(self.buffer_size or "64mb", "--buffer-size", 1 << 20, 1 << 30)

    def toml(self) -> dict[str, Any]:
        return load_config(self.config_path)


def live_options(*, buffer: bool, stats_default: str | None = None) -> Callable[[F], F]:
    """What the live commands (capture, proxy, shadow) end with: ``--stats``,
    ``--metrics-port``, ``--buffer-size`` (commands that capture), ``--config`` handed to
    the command as one ``live: LiveFlags``, then the traffic flags as ``traffic``."""

    def deco(f: F) -> F:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            names = ("stats", "metrics_port", "config_path")
            given = LiveFlags(**{k: kwargs.pop(k) for k in names}, buffer_size=None)
            if buffer:
                given = dataclasses.replace(given, buffer_size=kwargs.pop("buffer_size"))
            return f(*args, live=given, **kwargs)

        keys = ("stats", "metrics_port", *(("buffer_size",) if buffer else ()), "config_path")
        change = {"default": stats_default, "show_default": stats_default is not None}
        return flags(*keys, stats=change)(traffic_group(command))

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
    """Periodic ``--stats`` line on stderr."""

    def __init__(self, interval: float | None, label: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.interval = interval
        self.label = label
        self._clock = clock
        self._next = clock.monotonic() + (interval or 0)

    def __call__(self, stats: Mapping[str, Any]) -> None:
        now = self._clock.monotonic()
        if self.interval and now >= self._next:
            self._next = now + self.interval
            click.echo(f"replaygate: {self.label}: {format_stats(stats)}", err=True)

    def final(self, stats: Mapping[str, Any]) -> None:
        click.echo(f"replaygate: {self.label}: {format_stats(stats)}", err=True)
        sys.stderr.flush()


def parse_stats_interval(text: str | None) -> float | None:
    if text is None:
        return None
    if parse_duration(text, name="--stats") <= 0:
        raise ConfigError("--stats: interval must be positive")
    return bounded_duration(text, "--stats")


def run_live(
    run: Run,
    line: StatsLine,
    metrics_port: str | None,
    ready: Callable[[], None],
    *,
    metrics_when_ready: bool = False,
    final_on_error: bool = True,
) -> RunResult:
    """Run until SIGINT/SIGTERM (or the source's own end), with ``--stats`` lines, the
    ``--metrics-port`` endpoint (started once the source is ready when
    ``metrics_when_ready``: a proxy's port is known then) and the final counters line (also
    when the run fails, with the counters it had, if ``final_on_error``)."""
    metrics = None if metrics_when_ready else metrics_server(metrics_port, run.stats)

    def on_ready() -> None:
        nonlocal metrics
        if metrics_when_ready:
            metrics = metrics_server(metrics_port, run.stats)
        ready()

    def on_note(text: str) -> None:
        click.echo(f"replaygate: {line.label}: {text}", err=True)

    try:
        with stop_on_signals() as stop:
            result = run.run(stop=stop, on_stats=line, on_ready=on_ready, on_note=on_note)
    except Exception as e:
        final = getattr(e, "stats", None)
        if final_on_error and isinstance(final, dict):
            line.final(final)
        elif final_on_error and run.port is not None:  # a proxy that was serving
            line.final(run.result.live)
        raise
    finally:
        if metrics is not None:
            metrics.close()
    line.final(result.live)
    return result
