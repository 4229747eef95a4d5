"""``replaygate shadow``: capture live traffic and replay it to a target as it happens.

capture -> stages -> :class:`~replaygate.replay.LiveReplayer` -> (optional) ``--output``.
Two bounded queues stand between production traffic and the target: the capture's
recording queue and the replayer's queue. A slow or dead target fills the second one, and
then exchanges are dropped and counted (``replay_dropped_backpressure``); capture never
waits for the target and never slows down. A stats line is printed periodically (every
10 s by default) and at exit.
"""

from __future__ import annotations

import time
from typing import Any

import click

from ..config import load_config, parse_size
from ..errors import ConfigError
from ..model import Exchange
from ..pipeline import Sink, TeeSink
from ..stages.defaults import TrafficOptions
from ._capture_options import CaptureOptions, capture_options
from ._options import replay_hooks
from ._output import max_queue_option
from ._replay_options import ReplayOptions, replay_options
from ._report_options import (
    compare_config,
    finish_reports,
    report_output_options,
    start_watcher,
    watch_options,
    with_routes,
)
from .capture import (
    check_output_flags,
    format_stats,
    metrics_server,
    open_output,
    output_options,
    overwrite_options,
    parse_stats_interval,
    remove_if_empty,
    run_options,
    stop_on_signals,
    traffic_stages,
    with_traffic_options,
)

__all__ = ["command"]


class _ToReplayer:
    """The capture's sink: hands each exchange to the replayer without ever waiting."""

    def __init__(self, replayer: Any, close_timeout: float) -> None:
        self.replayer = replayer
        self.close_timeout = close_timeout
        self.submitted = 0
        self.refused = 0
        self.final: Any = None

    def write(self, ex: Exchange) -> None:
        if self.replayer.submit(ex):
            self.submitted += 1
        else:
            self.refused += 1

    def close(self) -> None:
        self.final = self.replayer.close(self.close_timeout)


def _replay_stats(st: Any) -> dict[str, int | float]:
    out: dict[str, int | float] = {
        "replay_sent": st.sent,
        "replay_answered": st.answered,
        "replay_errors": st.error_count,
    }
    for k, v in st.errors.items():
        out[f"replay_error_{k}"] = v
    for k, v in st.dropped.items():
        out[f"replay_dropped_{k}"] = v
    if getattr(st, "order_waited", 0):
        out["replay_order_waited"] = st.order_waited
        out["replay_order_wait_p99_ms"] = st.order_wait_p99_ms
    for k in ("latency_p50_ms", "latency_p99_ms"):
        v = getattr(st, k, 0)
        if v:
            out[f"replay_{k}"] = v
    return out


@click.command("shadow", context_settings={"help_option_names": ["-h", "--help"]})
@capture_options
@click.option(
    "--output",
    "-o",
    default=None,
    metavar="FILE",
    help="Record requests, original and replayed responses (.gor, .har, .jsonl). An existing "
    "non-empty FILE is refused unless --force or --append.",
)
@replay_options
@output_options
@overwrite_options
@max_queue_option("Exchanges waiting for the target")
@report_output_options
@watch_options
@run_options(stats_default="10s", buffer=True)
@with_traffic_options
def command(
    capture: CaptureOptions,
    output: str | None,
    max_bytes: str | None,
    max_seconds: str | None,
    force: bool,
    append: bool,
    max_queue: int,
    stats: str,
    metrics_port: str | None,
    buffer_size: str,
    config_path: str | None,
    replay: ReplayOptions,
    traffic: TrafficOptions,
    **reporting: Any,
) -> None:
    """Capture traffic on --port and replay each request to --target as it is seen.

    Requests go out as soon as they are captured (no timing flags), at most --concurrency
    at a time. If the target is slow, shadowing drops and counts; it never slows capture.

    \b
    Examples:
      replaygate shadow -i eth0 -p 80 --target http://staging:8080
      replaygate shadow -p 8080 -t http://127.0.0.1:9090 -o shadow.gor --stats 30s
    """
    from ..replay import LiveReplayer
    from ..sources.capture import run_capture

    if output:
        check_output_flags(output, max_bytes, max_seconds, force=force, append=append)
    elif force or append:
        raise ConfigError("--force/--append: only with --output")
    if max_queue <= 0:
        raise ConfigError("--max-queue: must be positive")
    cap = capture.config(buffer_bytes=parse_size(buffer_size, name="--buffer-size"))
    interval = parse_stats_interval(stats)
    cfg_data = with_routes(load_config(config_path), reporting)
    # live: send as soon as captured, bounded by concurrency
    rc = replay.config(cfg_data, max_speed=True)
    stages = traffic_stages(traffic, config_path)
    sinks: list[Sink] = []
    if output:
        sinks.append(open_output(output, max_bytes, max_seconds, force=force, append=append))
    comparator = None
    if any(reporting.get(k) for k in ("json", "junit", "markdown", "html", "report")):
        from ..compare import Comparator, CompareSink

        comparator = Comparator(compare_config(cfg_data))
        comparator.sources.append("shadow")
        sinks.append(CompareSink(comparator))
    sink = TeeSink(sinks) if len(sinks) > 1 else (sinks[0] if sinks else None)
    replayer = LiveReplayer(rc, sink=sink, hooks=replay_hooks(stages), max_queue=max_queue)
    try:
        replayer.start()
    except Exception:
        if output:
            remove_if_empty(output)
        raise
    to_target = _ToReplayer(replayer, rc.response_timeout + 5)
    latest: dict[str, Any] = {}
    next_line = [time.monotonic() + (interval or 0)]

    def on_stats(st: dict[str, int]) -> None:
        merged: dict[str, Any] = dict(st)
        merged.update(_replay_stats(replayer.stats))
        latest.clear()
        latest.update(merged)
        if interval and time.monotonic() >= next_line[0]:
            next_line[0] = time.monotonic() + interval
            click.echo(f"replaygate: shadow: {format_stats(merged)}", err=True)

    def ready() -> None:
        where = ", ".join(cap.interfaces) or "all interfaces"
        what = cap.bpf or "ports " + " ".join(map(str, cap.ports))
        click.echo(f"replaygate: shadowing {where} ({what}) -> {', '.join(rc.targets)}", err=True)

    metrics = metrics_server(metrics_port, lambda: latest)
    watcher = start_watcher(reporting)
    try:
        with stop_on_signals() as stop:
            result = run_capture(
                cap, to_target, stages=stages, stop=stop, on_stats=on_stats, on_ready=ready
            )
    finally:
        if metrics is not None:
            metrics.close()
    final = to_target.final if to_target.final is not None else replayer.stats
    result_all: dict[str, Any] = dict(result)
    result_all.update(_replay_stats(final))
    click.echo(f"replaygate: shadow: {format_stats(result_all)}", err=True)
    seen = watcher.stop() if watcher is not None else None
    if comparator is not None:
        as_dict = getattr(final, "as_dict", None)
        if callable(as_dict):
            comparator.replay = {k: v for k, v in as_dict().items() if k.startswith("order")}
        if seen is not None:
            comparator.set_target_metrics(seen)
        click.get_current_context().exit(finish_reports(comparator, reporting, cfg_data, err=True))
