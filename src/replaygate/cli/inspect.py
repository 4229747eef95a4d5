"""``replaygate inspect FILE...``: what a traffic file holds, honestly.

The summary says how many exchanges, connections, methods, status codes and top endpoints a
file has, its time span, how many exchanges are complete and, for the others, *why* (their
flags), and what the reader could not turn into exchanges (dropped by reason, notes). With
``--json`` it prints one JSON object per exchange instead: exactly the keys of
:meth:`~replaygate.model.Exchange.summary` (a contract for scripts).
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from ..formats import ReadOptions, format_of, open_reader, raise_cuts
from ..pipeline import Counters
from ..runner import FileInput
from ..runner._summary import FileSummary, summarize
from ._flags import flags
from ._options import LIMIT_KEYS, read_limits
from .convert import (
    check_tls_keylog,
    format_note,
)

__all__ = ["FileSummary", "command", "summarize"]


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _counts(c: Counter[str], limit: int | None = None) -> str:
    items = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return ", ".join(f"{k} {v}" for k, v in items) if items else "-"


def render(s: FileSummary, top: int) -> str:
    lines = [f"{s.path} ({s.format})"]
    lines.append(
        f"  exchanges:    {s.exchanges} (complete {s.complete}, incomplete {s.incomplete})"
    )
    if s.why:
        lines.append(f"  incomplete:   {_counts(s.why)}")
    conns = f"{len(s.connections)}"
    if s.without_conn:
        conns += f" (+{s.without_conn} exchanges without connection info)"
    lines.append(f"  connections:  {conns}")
    tls_flows = s.counters.notes.get("pcap.tls_flows", 0)
    if tls_flows:
        if s.counters.notes.get("pcap.tls_sessions", 0):
            done = s.counters.notes.get("pcap.tls_decrypted", 0)
            lines.append(f"  https:        {tls_flows} TLS connections, {done} decrypted to HTTP/1"
                         " (the others by reason under unparsed/dropped)")  # fmt: skip
        else:
            lines.append(f"  https:        {tls_flows} TLS connections not decrypted"
                         " (give --tls-keylog FILE)")  # fmt: skip
    if s.first_ns is not None and s.last_ns is not None:
        span = (s.last_ns - s.first_ns) / 1e9
        lines.append(f"  time span:    {_iso(s.first_ns)} .. {_iso(s.last_ns)} ({span:.1f} s)")
    else:
        lines.append("  time span:    -")
    lines.append(f"  methods:      {_counts(s.methods)}")
    lines.append(f"  versions:     {_counts(s.versions)}")
    lines.append(f"  status codes: {_counts(s.statuses)}")
    if any(k.endswith("(logged)") for k in s.statuses):
        lines.append(
            "                (logged) = the status an access log recorded; no response bytes"
        )
    if s.endpoints:
        lines.append(
            f"  top endpoints (method + path, {min(top, len(s.endpoints))} of {len(s.endpoints)}):"
        )
        for ep, n in sorted(s.endpoints.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            lines.append(f"    {n:>8}  {ep}")
    c = s.counters
    dropped = sum(c.dropped.values())
    lines.append(
        f"  unparsed/dropped: {dropped}"
        + (
            " (" + ", ".join(f"{k}={v}" for k, v in sorted(c.dropped.items())) + ")"
            if dropped
            else ""
        )
    )
    if c.notes:
        lines.append("  notes:")
        for note, n in sorted(c.notes.items()):
            lines.append(f"    {format_note(note, n)}")
    return "\n".join(lines)


@click.command("inspect", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@flags("as_json", "top", "log_format", "host", "tls_keylog", "max_record_size", "max_file_size")
def command(
    files: tuple[str, ...],
    as_json: bool,
    top: int,
    log_format: str | None,
    host: str | None,
    tls_keylog: str | None,
    **limit_flags: Any,
) -> None:
    """Summarise traffic files: exchanges, connections, methods, status codes, top endpoints,
    time span, incomplete exchanges and why, and what could not be parsed.

    With --json, print one JSON object per exchange instead, with exactly these keys:

    \b
      id ts_ns method target host version status request_body_len
      response_body_len latency_ns complete flags

    Body lengths are of the decoded body (de-chunked, content-decoded), null when absent.
    """
    for p in files:
        format_of(p)
    check_tls_keylog(tls_keylog, files)
    total = FileSummary(f"total of {len(files)} files", "all")
    cuts = Counters()
    lim = read_limits(limit_flags)
    lf = log_format.lower() if log_format else None
    read = FileInput(files, lf, host, tls_keylog, *(lim.get(k) for k in LIMIT_KEYS))
    for i, p in enumerate(files):
        counters = Counters()
        counters.cuts = cuts.cuts  # every file's cut, reported after the summaries
        opts = read.read_options(counters)
        if as_json:
            _print_json(p, opts, counters)
        else:
            total.merge(_print_summary(p, opts, counters, top, first=i == 0))
    if len(files) > 1 and not as_json:
        click.echo("\n" + render(total, top))
    sys.stdout.flush()
    raise_cuts(cuts)


def _print_summary(
    path: str, opts: ReadOptions, counters: Counters, top: int, *, first: bool
) -> FileSummary:
    s = summarize(path, open_reader(path, opts), counters)
    if not first:
        click.echo("")
    click.echo(render(s, top))
    return s


def _print_json(path: str, opts: ReadOptions, counters: Counters) -> None:
    """One JSON object per exchange on stdout; what was dropped, one line on stderr."""
    out = sys.stdout.buffer
    for ex in open_reader(path, opts):
        out.write(orjson.dumps(ex.summary()) + b"\n")
    out.flush()
    dropped = sum(counters.dropped.values())
    if dropped:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(counters.dropped.items()))
        click.echo(f"replaygate: {path}: dropped {dropped} ({detail})", err=True)
