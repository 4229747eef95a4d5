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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from ..formats import ReadOptions, format_of, open_reader, raise_cuts
from ..model import ConnectionId, Exchange
from ..pipeline import Counters
from ._flags import flags
from ._options import input_limit_options, log_format_option, log_host_option, read_limits
from .convert import (
    check_tls_keylog,
    format_note,
    reader_options,
    tls_keylog_option,
)

__all__ = ["FileSummary", "command", "summarize"]


@dataclass
class FileSummary:
    """Aggregates of one file, built in one pass with O(distinct values) memory."""

    path: str
    format: str
    exchanges: int = 0
    complete: int = 0
    incomplete: int = 0
    why: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    endpoints: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    connections: set[ConnectionId] = field(default_factory=set)
    without_conn: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    counters: Counters = field(default_factory=Counters)

    def merge(self, other: FileSummary) -> None:
        """Add another file's aggregates (for the total of several files; notes stay per
        file)."""
        self.exchanges += other.exchanges
        self.complete += other.complete
        self.incomplete += other.incomplete
        for mine, theirs in (
            (self.why, other.why),
            (self.methods, other.methods),
            (self.statuses, other.statuses),
            (self.endpoints, other.endpoints),
            (self.versions, other.versions),
            (self.counters.dropped, other.counters.dropped),
        ):
            mine.update(theirs)
        self.connections |= other.connections
        self.without_conn += other.without_conn
        if other.first_ns is not None:
            self.first_ns = (
                other.first_ns if self.first_ns is None else min(self.first_ns, other.first_ns)
            )
        if other.last_ns is not None:
            self.last_ns = (
                other.last_ns if self.last_ns is None else max(self.last_ns, other.last_ns)
            )

    def add(self, ex: Exchange) -> None:
        self.exchanges += 1
        req = ex.request
        self.methods[req.method or "(none)"] += 1
        self.versions[req.version] += 1
        self.endpoints[f"{req.method} {req.path}"] += 1
        if ex.response is not None:
            self.statuses[str(ex.response.status)] += 1
        elif "status" in ex.meta:
            self.statuses[f"{ex.meta['status']}(logged)"] += 1
        else:
            self.statuses["none"] += 1
        if ex.complete:
            self.complete += 1
        else:
            self.incomplete += 1
            if ex.response is None and not ex.flags:
                self.why["no_response"] += 1
            for f in ex.flags:
                self.why[str(f)] += 1
        if ex.conn is not None:
            self.connections.add(ex.conn)
        else:
            self.without_conn += 1
        ts = ex.ts_ns
        if ts:
            self.first_ns = ts if self.first_ns is None else min(self.first_ns, ts)
            end = max(ts, ex.response.ts_last_ns if ex.response is not None else 0)
            self.last_ns = end if self.last_ns is None else max(self.last_ns, end)


def summarize(path: str, exchanges: Iterable[Exchange], counters: Counters) -> FileSummary:
    s = FileSummary(path, format_of(path), counters=counters)
    for ex in exchanges:
        s.add(ex)
    return s


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
@flags("as_json", "top")
@log_format_option
@log_host_option
@tls_keylog_option
@input_limit_options
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
    read = (log_format.lower() if log_format else None, host, tls_keylog, read_limits(limit_flags))
    for i, p in enumerate(files):
        counters = Counters()
        counters.cuts = cuts.cuts  # every file's cut, reported after the summaries
        opts = reader_options(counters, *read)
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
