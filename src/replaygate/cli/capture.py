"""``replaygate capture``: record HTTP traffic passively from network interfaces.

Like GoReplay's ``--input-raw``, with no silent loss: every counter (kernel drops, flows
expired incomplete, requests without responses, recordings dropped by backpressure) is
printed at exit and, with ``--metrics-port``, exported to Prometheus while running.
SIGINT/SIGTERM stop gracefully: reading stops, complete exchanges are flushed, the counters
are written, files closed, exit 0.

The command parses its flags into a :class:`~replaygate.runner.RunConfig` (a
:class:`~replaygate.runner.CaptureInput` source) and runs it; what it shares with ``proxy``
and ``shadow`` is in :mod:`replaygate.cli._live`.
"""

from __future__ import annotations

import click

from ..runner import CaptureInput, Run, RunConfig
from ..stages.defaults import TrafficOptions
from ._capture_options import CaptureOptions, capture_options
from ._flags import bounded_duration, flags
from ._live import (
    LiveFlags,
    OutputFlags,
    live_options,
    output_options,
    run_live,
)

__all__ = ["command"]


@click.command("capture", context_settings={"help_option_names": ["-h", "--help"]})
@capture_options
@flags("record_output")
@output_options
@flags("track_responses", "max_queue", "idle_timeout", "tls_keylog")
@live_options(buffer=True)
def command(
    capture: CaptureOptions,
    output: OutputFlags,
    track_responses: bool,
    max_queue: int,
    idle_timeout: str,
    tls_keylog: str | None,
    live: LiveFlags,
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
    out = output.output()
    cfg = capture.config(
        track_responses=track_responses,
        buffer_bytes=live.buffer_bytes(),
        max_queue=max_queue,
        idle_timeout_s=bounded_duration(idle_timeout, "--idle-timeout"),
        tls_keylog=tls_keylog,
    )
    run = Run(RunConfig(CaptureInput(cfg), traffic, live.toml(), output=out))

    def ready() -> None:
        where = ", ".join(cfg.interfaces) or "all interfaces"
        what = cfg.bpf or "ports " + " ".join(map(str, cfg.ports))
        click.echo(f"replaygate: capturing on {where} ({what}) -> {output.path}", err=True)

    run_live(run, live.stats_line("capture"), live.metrics_port, ready)
