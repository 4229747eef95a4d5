"""``replaygate aggregate nats://.../STREAM-RESULTS``: the report and gate from a results stream."""

from __future__ import annotations

from typing import Any

import click

from ..compare import Comparator
from ..jetstream.source import read_stream
from ..jetstream.url import parse_stream_url
from ..pipeline import Counters
from ._flags import flags
from ._report_options import compare_config, finish_reports, load_report_config, report_options

__all__ = ["command"]


@click.command(name="aggregate")
@click.argument("url")
@report_options
@flags("quiet")
def command(url: str, quiet: bool, **options: Any) -> None:
    """Build the same report and gate as `compare` from the results workers published.

    URL is nats://HOST:PORT/STREAM-RESULTS (or nats://HOST:PORT/STREAM: its results stream is
    used). Redelivered work is reported once: the first result per exchange id is kept.
    Exit code 0 pass, 1 fail, 2 usage or input error.
    """
    u = parse_stream_url(url, name="URL")
    if not u.stream.endswith("-RESULTS") and u.results is None:
        u = u.with_stream(u.results_stream)
    config = load_report_config(options)
    comparator = Comparator(compare_config(config))
    counters = Counters()
    for ex in read_stream(u, counters=counters, dedup=True):
        counters.read += 1
        comparator.add(ex)
    comparator.sources.append(url)
    for reason, n in counters.dropped.items():
        comparator.skipped[f"read: {reason}"] += n
    rc = finish_reports(comparator, options, config, quiet=quiet)
    click.get_current_context().exit(rc)
