"""``replaygate accept SUMMARY.json``: turn the differences of a judged run into reviewed,
expiring entries of the accepted-differences file (appended; existing entries are kept)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from ..compare import AcceptedDiff, AcceptedDiffs
from ..compare._glob import glob_match
from ..compare.accepted import format_entries
from ..errors import ConfigError, InputError
from ._flags import flags


def _entries(
    summary: dict[str, Any],
    endpoints: tuple[str, ...],
    fields: tuple[str, ...],
    reason: str,
    who: str,
    expires: dt.date,
) -> list[AcceptedDiff]:
    out: list[AcceptedDiff] = []
    for e in summary.get("endpoints", []):
        name = e.get("endpoint", "")
        if endpoints and not any(glob_match(name, p) for p in endpoints):
            continue
        if not endpoints and e.get("verdict") != "fail":
            continue
        for f in e.get("fields", []):
            if f.get("status") != "regression" or not f.get("count"):
                continue
            if fields and not any(glob_match(f["field"], p) for p in fields):
                continue
            out.append(
                AcceptedDiff(name, reason, who, expires, field=f["field"], kind=f.get("kind"))
            )
        if fields:
            continue
        for change, n in (e.get("status_matrix") or {}).items():
            if n and change.endswith(">5xx") and not change.startswith("5xx") and e.get("new_5xx"):
                out.append(AcceptedDiff(name, reason, who, expires, status=change))
        if (e.get("latency_ms") or {}).get("regressed"):
            out.append(AcceptedDiff(name, reason, who, expires, latency=True))
    return out


def _same(a: AcceptedDiff, b: AcceptedDiff) -> bool:
    return (a.endpoint, a.field, a.kind, a.status, a.latency) == (
        b.endpoint,
        b.field,
        b.kind,
        b.status,
        b.latency,
    )


@click.command("accept")
@click.argument("summary_path", metavar="SUMMARY.json", type=click.Path(dir_okay=False))
@flags("reason", "who", "expires", "endpoints", "fields", "accepted_output", "dry_run")
def command(
    summary_path: str,
    reason: str,
    who: str,
    expires: str,
    endpoints: tuple[str, ...],
    fields: tuple[str, ...],
    output: str,
    dry_run: bool,
) -> int:
    """Accept the differences of SUMMARY.json (from --json or --report) until --expires."""
    exp = _expiry(expires)
    if not reason.strip() or not who.strip():
        raise ConfigError("--reason and --who must not be empty")
    summary = _load_summary(summary_path)
    new = _entries(summary, endpoints, fields, reason.strip(), who.strip(), exp)
    out = Path(output)
    existing = AcceptedDiffs.load(out).entries if out.is_file() else []
    new = [n for n in new if not any(_same(n, e) for e in existing)]
    if not new:
        click.echo(
            "replaygate: nothing to accept (no matching differences that are not already accepted)"
        )
        return 0
    text = format_entries(new)
    if dry_run:
        click.echo(text, nl=False)
        return 0
    _append(out, text)
    AcceptedDiffs.load(out)  # what we wrote must read back
    click.echo(
        f"replaygate: accepted {len(new)} difference(s) into {out} (expires {exp.isoformat()})"
    )
    return 0


def _expiry(expires: str) -> dt.date:
    try:
        exp = dt.date.fromisoformat(expires)
    except ValueError:
        raise ConfigError(f"--expires: {expires!r} is not a date like 2027-01-31") from None
    if exp < dt.date.today():
        raise ConfigError(f"--expires: {expires} is in the past")
    return exp


def _load_summary(path: str) -> dict[str, Any]:
    try:
        summary = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"not a replaygate JSON summary: {e}", path=path) from None
    if not isinstance(summary, dict) or "endpoints" not in summary:
        raise InputError("not a replaygate JSON summary (no 'endpoints')", path=path)
    return summary


def _append(out: Path, text: str) -> None:
    """Append ``text`` to ``out`` with one blank line between entries."""
    try:
        prefix = ""
        if out.is_file():
            old = out.read_text("utf-8")
            prefix = (
                "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
            )
        with out.open("a", encoding="utf-8") as f:
            f.write(prefix + text)
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror}", path=str(out)) from None
