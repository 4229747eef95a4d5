"""``replaygate stream init|status|purge``: manage the JetStream streams replaygate uses."""

from __future__ import annotations

import asyncio
import json

import click

from ..jetstream import admin
from ..jetstream.url import parse_stream_url
from ._flags import bounded_duration, bounded_size, flags

__all__ = ["command"]


@click.group(name="stream")
def command() -> None:
    """Create, inspect and purge NATS JetStream streams.

    URL is nats://HOST:PORT[,HOST:PORT...]/STREAM[?partitions=N]; the results stream is
    STREAM-RESULTS unless ?results=NAME says otherwise.
    """


@command.command("init")
@click.argument("url")
@flags("stream_max_bytes", "max_age", "max_msgs", "replicas", "storage")
def init_cmd(
    url: str,
    max_bytes: str | None,
    max_age: str | None,
    max_msgs: int,
    replicas: int,
    storage: str,
) -> None:
    """Create (or update) the traffic stream, its results stream and the leases bucket."""
    u = parse_stream_url(url, name="URL")
    settings = admin.StreamSettings(
        max_bytes=bounded_size(max_bytes, "--max-bytes", 1, (1 << 63) - 1) if max_bytes else -1,
        max_age_s=bounded_duration(max_age, "--max-age") if max_age else 0.0,
        max_msgs=max_msgs,
        replicas=replicas,
        storage=storage,
    )
    out = asyncio.run(admin.init(u, settings))
    for name, what in out.items():
        click.echo(f"{name}: {what}")


@command.command("status")
@click.argument("url")
@flags("print_json")
def status_cmd(url: str, as_json: bool) -> None:
    """Messages, pending (not yet acknowledged) per consumer, lag and workers' throughput."""
    u = parse_stream_url(url, name="URL")
    st = asyncio.run(admin.status(u))
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    for name, info in st["streams"].items():
        if info is None:
            click.echo(f"stream {name}: missing (replaygate stream init {url})")
        else:
            click.echo(f"stream {name}: {info['messages']} messages, {info['bytes']} bytes")
    for c in st["consumers"]:
        click.echo(
            f"  consumer {c['name']}: pending {c['pending']}, ack pending {c['ack_pending']},"
            f" redelivered {c['redelivered']}"
        )
    click.echo(f"lag: {st['lag']} messages not yet replayed and acknowledged")
    for w in st["workers"]:
        click.echo(
            f"  worker {w.get('id')}: partitions {w.get('partitions')}, replayed"
            f" {w.get('replayed')}, {w.get('rate')} req/s, seen {w.get('age_s')} s ago"
        )


@command.command("purge")
@click.argument("url")
@flags("keep_results", "yes")
def purge_cmd(url: str, keep_results: bool, yes: bool) -> None:
    """Delete every message (and the workers' consumers) of the stream."""
    u = parse_stream_url(url, name="URL")
    if not yes:
        click.confirm(f"purge {u.stream}{'' if keep_results else ' and its results'}?", abort=True)
    out = asyncio.run(admin.purge(u, results=not keep_results))
    for name, n in out.items():
        click.echo(f"{name}: purged {n} messages")
