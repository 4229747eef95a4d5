"""``replaygate worker``: a replay worker on a NATS JetStream source."""

from __future__ import annotations

from typing import Any

import click

from ..jetstream.url import parse_stream_url
from ..runner import Run, RunConfig, StreamInput
from ._flags import bounded_duration, flags
from ._replay_options import ReplayOptions, correlate_option, replay_options

__all__ = ["command"]


@click.command(name="worker")
@flags("source", "worker_id", "rate", "speed", "max_in_flight", "ack_wait")
@replay_options
@correlate_option
@flags("exit_when_idle", "duration")
def command(
    source: str,
    ack_wait: str,
    exit_when_idle: str | None,
    duration: str | None,
    replay: ReplayOptions,
    **worker: Any,
) -> None:
    """Join the workers replaying SOURCE: durable consumers, results to STREAM-RESULTS."""
    from ..jetstream.worker import WorkerConfig

    url = parse_stream_url(source, name="--source")
    rc = replay.config({}, max_speed=True)  # no replaygate.toml: the flags and defaults
    cfg = WorkerConfig(
        source=url,
        replay=rc,
        **{k: worker[k] for k in ("worker_id", "rate", "speed", "max_in_flight", "correlate")},
        ack_wait_s=bounded_duration(ack_wait, "--ack-wait"),
        exit_when_idle_s=_seconds(exit_when_idle, "--exit-when-idle"),
        duration_s=_seconds(duration, "--duration"),
    )
    try:
        result = Run(RunConfig(StreamInput(cfg))).run()
    except KeyboardInterrupt:
        return
    click.echo(_summary(result.live), err=True)


def _summary(d: dict[str, Any]) -> str:
    return (
        f"worker {d['worker_id']}: fetched {d['fetched']}, replayed {d['replayed']},"
        f" published {d['published']}, acked {d['acked']}, redelivered {d['redelivered']},"
        f" errors {d['errors']}, {d['rate']} req/s"
    )


def _seconds(text: str | None, flag: str) -> float | None:
    return bounded_duration(text, flag) if text else None
