"""Reasons ordered by severity, so that a report is read in 30 seconds.

The gate lists its reasons in the order it checks them; a person wants the worst first:

0. the run cannot be trusted as it stands (too few replays, a broken baseline copy);
1. new 5xx and replay errors;
2. status changes (a reason whose top differences include ``status``);
3. body and header regressions (including the overall difference rate);
4. anything else (expired accepted differences, requests that cannot be judged...);
5. latency.

Within a severity, reasons about endpoints with more traffic come first. The JSON summary keeps
the gate's order (it is a contract); the Markdown and HTML reports show ``ranked_reasons``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SEVERITY_LABELS", "RankedReason", "ranked_reasons"]

SEVERITY_LABELS = (
    "run",
    "5xx/errors",
    "status",
    "body",
    "other",
    "latency",
)

RankedReason = tuple[int, str]  # (severity, text)

_LATENCY = re.compile(r"(?:^|: )(?:p\d{2}(?:\.\d)?|latency|median)\b", re.IGNORECASE)
_ERRORS = re.compile(r"\bnew 5xx\b|\breplay errors?\b|\b5xx\b.*\bnew\b", re.IGNORECASE)
_RUN = re.compile(r"^only \d+ exchanges|the baseline copy itself|no exchanges?\b", re.IGNORECASE)


def severity(text: str) -> int:
    """Severity of one reason, its ``ENDPOINT: `` prefix removed."""
    if _RUN.search(text):
        return 0
    if _ERRORS.search(text):
        return 1
    if "differ" in text:
        what = text.split("): ", 1)[-1]
        if re.match(r"status\b", what) or " status changed" in what:
            return 2
        return 3
    if _LATENCY.search(text):
        return 5
    return 4


def ranked_reasons(summary: Mapping[str, Any]) -> list[RankedReason]:
    """The summary's reasons, worst first (stable within a severity, busiest endpoint first)."""
    traffic: dict[str, int] = {}
    for e in summary.get("endpoints") or []:
        traffic[str(e.get("endpoint"))] = int(e.get("requests") or 0)
    out: list[tuple[int, int, int, str]] = []
    for i, r in enumerate(summary.get("reasons") or []):
        text = str(r)
        ep = _endpoint_of(text, traffic)
        sev = severity(text[len(ep) + 2 :] if ep else text)
        out.append((sev, -traffic.get(ep, 0) if ep else -(10**18), i, text))  # gate-wide first
    out.sort()
    return [(sev, text) for sev, _t, _i, text in out]


def _endpoint_of(reason: str, traffic: Mapping[str, int]) -> str | None:
    # endpoint names may contain ": " themselves; take the longest known prefix
    best = None
    for m in re.finditer(": ", reason):
        head = reason[: m.start()]
        if head in traffic:
            best = head
    return best
