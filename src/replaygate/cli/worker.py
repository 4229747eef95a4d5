"""``replaygate worker``: a replay worker on a NATS JetStream source."""

from __future__ import annotations

import click

from .._config_schema import float_range, int_range
from ..config import parse_duration
from ..jetstream.url import parse_stream_url

__all__ = ["command"]


@click.command(name="worker")
@click.option("--source", required=True, help="nats://HOST:PORT/STREAM to replay from.")
@click.option("--target", "targets", multiple=True, required=True, help="Target URL (repeat).")
@click.option("--baseline", default=None, help="Second copy of the baseline, for noise.")
@click.option("--id", "worker_id", default=None, help="Worker name (default host-pid-random).")
@click.option(
    "--rate",
    type=float_range("replay", "rate"),
    default=None,
    help="Global requests/s across all workers.",
)
@click.option(
    "--speed",
    type=float_range("replay", "speed"),
    default=None,
    help="As recorded, X times faster.",
)
@click.option(
    "--concurrency", type=int_range("replay", "concurrency"), default=64, show_default=True
)
@click.option("--max-in-flight", type=click.IntRange(1, 1_000_000), default=256, show_default=True)
@click.option("--ack-wait", default="10s", show_default=True, help="Redelivery after this.")
@click.option("--timeout", default="30s", show_default=True, help="Response timeout.")
@click.option("--connect-timeout", default="5s", show_default=True)
@click.option(
    "--order",
    type=click.Choice(["none", "sessions", "recorded"]),
    default="recorded",
    show_default=True,
    help="Happens-before order within what this worker replays (see docs/replay.md).",
)
@click.option(
    "--session-key",
    default=None,
    metavar="cookie:NAME|header:NAME|basic|bearer|auth",
    help="What makes a user session for --order sessions (default: the connection).",
)
@click.option(
    "--correlate/--no-correlate",
    default=True,
    help="Substitute session tokens and created ids learned from the targets (default on).",
)
@click.option("--keep-host", is_flag=True, help="Send the recorded Host header.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates of targets.")
@click.option("--ca-file", default=None, help="CA bundle for TLS targets.")
@click.option("--allow-unsafe-target", is_flag=True, help="See docs/replay.md: safety rule.")
@click.option("--exit-when-idle", default=None, help="Exit once drained and idle this long.")
@click.option("--duration", default=None, help="Stop after this long.")
def command(
    source: str,
    targets: tuple[str, ...],
    baseline: str | None,
    worker_id: str | None,
    rate: float | None,
    speed: float | None,
    concurrency: int,
    max_in_flight: int,
    ack_wait: str,
    timeout: str,
    connect_timeout: str,
    order: str,
    session_key: str | None,
    correlate: bool,
    keep_host: bool,
    insecure: bool,
    ca_file: str | None,
    allow_unsafe_target: bool,
    exit_when_idle: str | None,
    duration: str | None,
) -> None:
    """Join the workers replaying SOURCE: durable consumers, results to STREAM-RESULTS."""
    from ..jetstream.worker import WorkerConfig, run_worker
    from ..replay import ReplayConfig

    url = parse_stream_url(source, name="--source")
    rc = ReplayConfig(
        targets=list(targets),
        baseline=baseline,
        max_speed=True,
        concurrency=concurrency,
        order=order,
        session_key=session_key,
        keep_host=keep_host,
        connect_timeout=parse_duration(connect_timeout, name="--connect-timeout"),
        response_timeout=parse_duration(timeout, name="--timeout"),
        insecure=insecure,
        ca_file=ca_file,
        allow_unsafe_target=allow_unsafe_target,
    )
    cfg = WorkerConfig(
        source=url,
        replay=rc,
        worker_id=worker_id,
        rate=rate,
        speed=speed,
        max_in_flight=max_in_flight,
        ack_wait_s=parse_duration(ack_wait, name="--ack-wait"),
        exit_when_idle_s=parse_duration(exit_when_idle, name="--exit-when-idle")
        if exit_when_idle
        else None,
        duration_s=parse_duration(duration, name="--duration") if duration else None,
        correlate=correlate,
    )
    try:
        stats = run_worker(cfg)
    except KeyboardInterrupt:
        return
    d = stats.as_dict()
    click.echo(
        f"worker {d['worker_id']}: fetched {d['fetched']}, replayed {d['replayed']},"
        f" published {d['published']}, acked {d['acked']}, redelivered {d['redelivered']},"
        f" errors {d['errors']}, {d['rate']} req/s",
        err=True,
    )
