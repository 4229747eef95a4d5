"""The report and gate flags shared by ``compare``, ``replay``, ``shadow`` and ``aggregate``.

``@report_options`` adds ``--json/--junit/--markdown/--html PATH``, ``--report DIR`` (all four
as DIR/report.{json,xml,md,html}), ``--config FILE`` and ``--accepted FILE``;
``@watch_options`` adds ``--watch-metrics URL`` and ``--watch-pid PID`` for commands that run
a replay. :func:`finish_reports` judges a comparator, writes the reports, prints the verdict
and returns the exit code (0 pass, 1 fail).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from ..compare import Comparator, TargetWatcher, Verdict
from ..config import load_config
from ..report._rank import ranked_reasons
from ..runner import Reports
from ..runner._output import compare_config, gate_config, judge_and_write
from ._flags import flags

__all__ = [
    "compare_config",
    "finish_reports",
    "gate_config",
    "load_report_config",
    "report_options",
    "report_output_options",
    "reports_of",
    "show_verdict",
    "start_watcher",
    "watch_options",
    "with_routes",
]

F = TypeVar("F", bound=Callable[..., Any])
MAX_PRINTED_REASONS = 20

REPORT_OUTPUT_KEYS = (
    "json",
    "junit",
    "markdown",
    "html",
    "report",
    "accepted",
    "routes",
    "proto_descriptor_set",
)


def report_output_options(f: F) -> F:
    """Add the report flags (keywords: json, junit, markdown, html, report, accepted, routes,
    proto_descriptor_set):
    for commands that read ``replaygate.toml`` through a ``--config`` of their own."""
    return flags(*REPORT_OUTPUT_KEYS)(f)


def report_options(f: F) -> F:
    """Add the report/gate flags (keywords: json, junit, markdown, html, report,
    config_path, accepted, routes, proto_descriptor_set)."""
    return flags("config_path")(report_output_options(f))


def reports_of(options: Mapping[str, Any]) -> Reports | None:
    """The reports the flags ask for (None: no report flag, nothing to compare)."""
    if not any(options.get(k) for k in ("json", "junit", "markdown", "html", "report")):
        return None
    return Reports(
        json=options.get("json"),
        junit=options.get("junit"),
        markdown=options.get("markdown"),
        html=options.get("html"),
        directory=options.get("report"),
        accepted=options.get("accepted"),
    )


def with_routes(config: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``--routes FILE`` and ``--proto-descriptor-set FILE`` on top of ``[compare]``."""
    if options.get("routes"):
        config["compare"] = {**(config.get("compare") or {}), "routes": options["routes"]}
    if options.get("proto_descriptor_set"):
        config["compare"] = {
            **(config.get("compare") or {}),
            "proto_descriptor_set": options["proto_descriptor_set"],
        }
    return config


def watch_options(f: F) -> F:
    """Add ``--watch-metrics URL`` and ``--watch-pid PID`` (keywords watch_metrics, watch_pid)."""
    return flags("watch_metrics", "watch_pid")(f)


def start_watcher(options: Mapping[str, Any], interval: float = 2.0) -> TargetWatcher | None:
    """A started watcher when ``--watch-metrics``/``--watch-pid`` were given, else None.
    Call ``comparator.set_target_metrics(watcher.stop())`` when the replay ends."""
    url = options.get("watch_metrics")
    pid = options.get("watch_pid")
    if not url and pid is None:
        return None
    w = TargetWatcher(metrics_url=url, pid=pid, interval=interval)
    w.start()
    return w


def load_report_config(options: Mapping[str, Any]) -> dict[str, Any]:
    return with_routes(load_config(options.get("config_path")), options)


def finish_reports(
    comparator: Comparator,
    options: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    err: bool = False,
    quiet: bool = False,
) -> int:
    """Judge, write the reports asked for, print the verdict; return the exit code."""
    reports = reports_of(options) or Reports(accepted=options.get("accepted"))
    verdict, written = judge_and_write(comparator, reports, config)
    return show_verdict(verdict, written, err=err, quiet=quiet)


def show_verdict(
    verdict: Verdict, written: list[str], *, err: bool = False, quiet: bool = False
) -> int:
    """Print the verdict (or the job error: one line) unless ``quiet``; the exit code."""
    if verdict.job_error is not None:
        # not a verdict on the release: the input or the job is wrong (exit 2, one line)
        if not quiet:
            click.echo(f"replaygate: error: {verdict.job_error}", err=True)
    elif not quiet:
        print_verdict(verdict.summary(), written, err=err)
    return verdict.exit_code


def print_verdict(summary: Mapping[str, Any], written: list[str], *, err: bool = False) -> None:
    t = summary.get("totals", {})
    ok = summary.get("verdict") == "pass"
    click.secho(
        f"replaygate: {'PASS' if ok else 'FAIL'}", fg="green" if ok else "red", bold=True, err=err
    )
    for w in summary.get("warnings") or []:
        click.echo(f"replaygate: warning: {w}", err=True)
    click.echo(
        f"  {t.get('requests', 0)} requests, {t.get('replayed', 0)} replayed, "
        f"{t.get('compared', 0)} compared, {t.get('differing', 0)} with real differences "
        f"({t.get('diff_rate', 0):.2%}), {t.get('new_5xx', 0)} new 5xx, {t.get('errors', 0)} replay errors",
        err=err,
    )
    ranked = ranked_reasons(summary)  # worst first: 5xx/errors, status, body, latency
    for _sev, r in ranked[:MAX_PRINTED_REASONS]:
        click.echo(f"  - {r}", err=err)
    if len(ranked) > MAX_PRINTED_REASONS:
        click.echo(
            f"  - … and {len(ranked) - MAX_PRINTED_REASONS} more (all in the JSON/HTML report)",
            err=err,
        )
    if t.get("unjudged"):
        click.echo(
            f"  cannot judge: {t['unjudged']} requests on {t.get('unjudged_endpoints', 0)} "
            "endpoints (see unjudged in the reports)",
            err=err,
        )
    for line in summary.get("limitations") or []:
        click.echo(f"  not compared: {line}", err=err)
    acc = summary.get("accepted") or []
    used = [a for a in acc if a.get("used")]
    if acc:
        expired = sum(1 for a in acc if a.get("expired"))
        click.echo(
            f"  accepted differences: {len(used)} of {len(acc)} entries matched"
            + (f", {expired} expired" if expired else ""),
            err=err,
        )
    skipped = t.get("not_compared") or {}
    if skipped:
        shown = ", ".join(f"{k} ({n})" for k, n in sorted(skipped.items(), key=lambda x: -x[1]))
        click.echo(f"  not compared: {shown}", err=err)
    noise = sorted(
        {f"{f['field']}" for e in summary.get("endpoints", []) for f in e.get("noise_fields", [])}
    )
    if noise:
        shown = ", ".join(noise[:8]) + (f" and {len(noise) - 8} more" if len(noise) > 8 else "")
        click.echo(f"  noise excluded: {shown}", err=err)
    for w in written:
        click.echo(f"  report: {w}", err=err)
