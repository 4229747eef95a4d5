"""``replaygate compare FILE...``: judge a recording that holds original and replayed
responses (``replay --output`` writes them as .gor type 2 and 3 records)."""

from __future__ import annotations

from typing import Any

import click

from ..compare import Comparator
from ..formats import ReadOptions, open_reader, raise_cuts
from ..pipeline import Counters
from ._flags import flags
from ._options import read_limits
from ._report_options import compare_config, finish_reports, load_report_config, report_options


@click.command("compare")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@flags("baseline_files")
@report_options
@flags("max_record_size", "max_file_size", "quiet")
def command(
    files: tuple[str, ...], baseline_files: tuple[str, ...], quiet: bool, **options: Any
) -> None:
    """Compare original and replayed responses in FILE... and judge the release.

    Differences are grouped by endpoint, noise is excluded (baseline replays, fields learned
    to be volatile, ignore rules) and the [gate] thresholds decide. Exit code 0 pass, 1 fail,
    2 usage or input error.
    """
    config = load_report_config(options)
    comparator = Comparator(compare_config(config))
    counters = Counters()
    limits = read_limits(options)
    for path, baseline in [(f, False) for f in files] + [(f, True) for f in baseline_files]:
        opts = ReadOptions(None, counters, extra={"truncated": "count"}, **limits)
        for ex in open_reader(path, opts):
            counters.read += 1
            if baseline:
                ex.meta["role"] = "baseline"
            comparator.add(ex)
        comparator.sources.append(path + (" (baseline)" if baseline else ""))
    for reason, n in counters.dropped.items():
        comparator.skipped[f"read: {reason}"] += n
    rc = finish_reports(comparator, options, config, quiet=quiet)
    raise_cuts(counters)  # the reports are written; a cut input is still an input error
    click.get_current_context().exit(rc)
