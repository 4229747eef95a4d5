"""``replaygate replay FILE... --target URL``: send recorded traffic to staging.

Flags win over the ``[replay]`` section of replaygate.toml. The traffic flags (filters,
sampling, masking, rewrites, middleware, plugins) apply to the files on the way in; session
token correlation is on by default (``--no-correlate``). ``--output`` records requests,
original and replayed responses (type 3, with latency) for a later ``compare``; the report
flags (``--report``/``--json``/...) compare on the fly and gate (exit 1 on fail).
A progress bar goes to stderr on a terminal (``--progress`` forces it); a summary always.

The command parses its flags into a :class:`~replaygate.runner.RunConfig` and runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from ..errors import InputError, ReplayError
from ..formats import format_of, raise_cuts
from ..replay import ReplayConfig
from ..runner import FileInput, Output, Run, RunConfig, RunResult, Watch
from ..runner._files import FileSource, check_inputs, count_needle, count_requests, staged
from ..stages.defaults import TrafficOptions
from ._flags import flags
from ._options import read_limits, traffic_group
from ._replay_options import (
    TIMING_HELP,
    ReplayOptions,
    build_config,
    correlate_option,
    replay_options,
    timing_options,
)
from ._replay_summary import (
    Progress,
    expected_total,
    format_replay_stats,
    nothing_replayed,
    unreachable,
)
from ._report_options import (
    load_report_config,
    report_options,
    reports_of,
    show_verdict,
    watch_options,
)

__all__ = [
    "FileSource",
    "build_config",
    "command",
    "count_requests",
    "format_replay_stats",
    "staged",
]

_count = count_needle  # the name the tests know


@click.command("replay", epilog=TIMING_HELP)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@timing_options
@flags("replay_output", "progress", "log_format")
@replay_options
@correlate_option
@flags("max_record_size", "max_file_size")
@traffic_group
@report_options
@watch_options
def command(
    files: tuple[str, ...], replay: ReplayOptions, traffic: TrafficOptions, **options: Any
) -> None:
    """Replay the recorded traffic in FILE... into --target URL(s).

    Request bytes are sent as recorded (header order, case, duplicates); only the Host header
    (unless --keep-host) and a wrong Content-Length are changed. Requests other than
    GET/HEAD/OPTIONS are refused towards the host the traffic was captured from unless
    --allow-unsafe-target.
    """
    toml = load_report_config(options)
    rc = replay.config(toml, **options)
    check_inputs(files)
    run = Run(_run_config(files, rc, traffic, toml, options))
    show = options.get("progress")
    show = sys.stderr.isatty() if show is None else show
    progress = Progress(bool(show), expected_total(rc, files) if show else None)
    try:
        result = run.run(on_progress=progress)
    finally:
        progress.done()
    code = _finish(run, result, files, options.get("output"))
    if code:
        click.get_current_context().exit(code)


def _run_config(
    files: Sequence[str],
    rc: ReplayConfig,
    traffic: TrafficOptions,
    toml: Mapping[str, Any],
    options: Mapping[str, Any],
) -> RunConfig:
    """The run the flags describe (and the notes worth printing before it starts)."""
    output = options.get("output")
    if output and format_of(output) == "har":
        _note(
            ".har keeps one response per entry (the original): "
            "write .gor or .jsonl to keep the replayed responses for compare"
        )
    limits = read_limits(options)
    if rc.workers > 1 and rc.order != "none":
        _note(
            f"--order {rc.order} holds within each of the {rc.workers} worker "
            "processes (split by session), not across them"
        )
    watch = Watch(options.get("watch_metrics"), options.get("watch_pid"))
    return RunConfig(
        source=FileInput(
            tuple(files),
            log_format=options.get("log_format"),
            max_record_size=limits.get("max_record_size"),
            max_file_size=limits.get("max_file_size"),
        ),
        traffic=traffic,
        toml=toml,
        replay=rc,
        correlate=bool(options.get("correlate")),
        output=Output(output) if output else None,
        reports=reports_of(options),
        watch=watch,
        compare_sources=tuple(files),
    )


def _note(text: str) -> None:
    click.echo(f"replaygate: note: {text}", err=True)


def _finish(run: Run, result: RunResult, files: Sequence[str], output: str | None) -> int:
    """Print the summary, judge and report; one-line errors for a job that went wrong."""
    stats, counters = result.replay, result.counters
    assert stats is not None
    for line in [*format_replay_stats(stats), *(f"  {s}" for s in result.hook_summaries)]:
        click.echo(line, err=True)
    for reason, n in counters.dropped.items():
        click.echo(f"  filtered out by {reason}: {n}", err=True)
    if output:
        click.echo(f"  output: {output}", err=True)
    if stats.exchanges == 0 and not stats.stopped:
        raise_cuts(counters)
        raise InputError(nothing_replayed(counters), path=files[0] if len(files) == 1 else None)
    failed = unreachable(stats)
    code = 0
    if run.comparator is not None:
        verdict, written = run.report()
        code = show_verdict(verdict, written, err=True, quiet=failed is not None)
    raise_cuts(counters)  # after the outputs and reports: the cut is still an input error
    if failed is not None:
        raise ReplayError(failed)
    return code
