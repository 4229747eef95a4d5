"""``replaygate shadow``: capture live traffic and replay it to a target as it happens.

capture -> stages -> :class:`~replaygate.replay.LiveReplayer` -> (optional) ``--output``.
Two bounded queues stand between production traffic and the target: the capture's
recording queue and the replayer's queue. A slow or dead target fills the second one, and
then exchanges are dropped and counted (``replay_dropped_backpressure``); capture never
waits for the target and never slows down. A stats line is printed periodically (every
10 s by default) and at exit. The command parses its flags into a
:class:`~replaygate.runner.RunConfig` (a capture source with a replay) and runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from ..runner import CaptureInput, Output, Run, RunConfig, Watch
from ..stages.defaults import TrafficOptions
from ._capture_options import CaptureOptions, capture_options
from ._flags import flags
from ._live import (
    LiveFlags,
    OutputFlags,
    live_options,
    output_options,
    run_live,
)
from ._replay_options import ReplayOptions, replay_options
from ._report_options import (
    report_output_options,
    reports_of,
    show_verdict,
    watch_options,
    with_routes,
)

if TYPE_CHECKING:  # libpcap and the event loop: only for typing
    from ..replay import ReplayConfig
    from ..sources.capture import CaptureConfig

__all__ = ["command"]


@click.command("shadow", context_settings={"help_option_names": ["-h", "--help"]})
@capture_options
@flags("shadow_output")
@replay_options
@output_options
@flags("max_queue")
@report_output_options
@watch_options
@live_options(buffer=True, stats_default="10s")
def command(
    capture: CaptureOptions,
    output: OutputFlags,
    max_queue: int,
    live: LiveFlags,
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
    out = output.output()
    cap = capture.config(buffer_bytes=live.buffer_bytes())
    line = live.stats_line("shadow")
    toml = with_routes(live.toml(), reporting)
    rc = replay.config(toml, max_speed=True)  # live: send as soon as captured
    run = Run(_run_config(cap, rc, toml, out, max_queue, traffic, reporting))

    def ready() -> None:
        where = ", ".join(cap.interfaces) or "all interfaces"
        what = cap.bpf or "ports " + " ".join(map(str, cap.ports))
        click.echo(f"replaygate: shadowing {where} ({what}) -> {', '.join(rc.targets)}", err=True)

    run_live(run, line, live.metrics_port, ready, final_on_error=False)
    if run.comparator is not None:
        verdict, written = run.report()
        click.get_current_context().exit(show_verdict(verdict, written, err=True))


def _run_config(
    cap: CaptureConfig,
    rc: ReplayConfig,
    toml: dict[str, Any],
    out: Output | None,
    max_queue: int,
    traffic: TrafficOptions,
    reporting: Mapping[str, Any],
) -> RunConfig:
    return RunConfig(
        CaptureInput(cap),
        traffic,
        toml,
        replay=rc,
        output=out,
        reports=reports_of(reporting),
        watch=Watch(reporting.get("watch_metrics"), reporting.get("watch_pid")),
        max_queue=max_queue,
        compare_sources=("shadow",),
    )
