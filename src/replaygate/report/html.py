"""The HTML report: ONE self-contained file (inline CSS, JS and SVG; no CDN) that opens
offline. The verdict and the reasons that matter most are rendered server-side (worst first,
see ``_rank``), so they show even with scripts disabled; the rest is drawn by a small script
from the embedded JSON summary.

The file stays a few MB however large the run: the summary embedded for the script keeps full
detail (fields, samples, latency distributions) for the failing and busiest endpoints within
``DETAIL_BUDGET`` bytes, and a table row for every other endpoint; the JSON report keeps all.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

import orjson

from ._facts import http2_line, order_line
from ._rank import SEVERITY_LABELS, ranked_reasons

__all__ = ["DETAIL_BUDGET", "render_html"]

DETAIL_BUDGET = 1_500_000  # bytes of per-endpoint detail embedded in the page
ROW_BUDGET = 3_000_000  # bytes of slim table rows (about 6,000 endpoints)
TOP_REASONS = 10
MAX_REASONS = 300

_ROW_KEYS = (
    "endpoint",
    "verdict",
    "judged",
    "unjudged",
    "unjudged_reason",
    "requests",
    "traffic_share",
    "replayed",
    "compared",
    "differing",
    "diff_rate",
    "new_5xx",
    "errors",
    "reasons",
)


def _template() -> str:
    return (resources.files("replaygate.report") / "templates" / "report.html").read_text("utf-8")


def _slim_latency(lat: dict[str, Any]) -> dict[str, Any]:
    keep = {
        k: v
        for k, v in lat.items()
        if (
            k in ("reference", "percentile", "reference_ms", "replayed_ms", "ratio", "regressed")
            or "interval" in k
        )
        and v is not None
    }
    for k in ("original", "replayed", "baseline"):
        v = lat.get(k)
        if isinstance(v, dict) and v.get("count"):
            keep[k] = {p: v.get(p) for p in ("p50", "p99") if p in v}
    return keep


def _slim_endpoint(e: dict[str, Any]) -> dict[str, Any]:
    # absent means null/0 in a slim row (the page's script treats both alike)
    row = {k: e[k] for k in _ROW_KEYS if e.get(k) is not None and (k != "unjudged" or e[k])}
    row["reasons"] = [str(r)[:200] for r in (e.get("reasons") or [])[:2]]
    row["latency_ms"] = _slim_latency(e.get("latency_ms") or {})
    row["detail"] = False
    return row


def _bounded(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary to embed: every endpoint as a row, full detail while the budget lasts."""
    eps = summary.get("endpoints") or []
    out_eps: list[dict[str, Any]] = []
    detail = rows = 0
    omitted = 0
    for e in eps:
        full = len(orjson.dumps(e, option=orjson.OPT_NON_STR_KEYS))
        if detail + full <= DETAIL_BUDGET:
            detail += full
            out_eps.append(e)
            continue
        slim = _slim_endpoint(e)
        size = len(orjson.dumps(slim, option=orjson.OPT_NON_STR_KEYS))
        if rows + size > ROW_BUDGET:
            omitted += 1
            continue
        rows += size
        out_eps.append(slim)
    out = {**summary, "endpoints": out_eps}
    reasons = summary.get("reasons") or []
    if len(reasons) > MAX_REASONS:
        out["reasons"] = reasons[:MAX_REASONS]
    out["report_limits"] = {
        "endpoints": len(eps),
        "with_detail": sum(1 for e in out_eps if e.get("detail", True)),
        "omitted": omitted,
        "reasons": len(reasons),
    }
    return out


def _reasons_html(summary: dict[str, Any]) -> str:
    ranked = ranked_reasons(summary)
    if not ranked:
        return "<li>all gate checks passed</li>"
    items = [
        f'<li><span class="sev">{SEVERITY_LABELS[sev]}</span> {html.escape(r[:600])}</li>'
        for sev, r in ranked[:TOP_REASONS]
    ]
    rest = ranked[TOP_REASONS:MAX_REASONS]
    if len(ranked) > TOP_REASONS:
        more = "".join(
            f'<li><span class="sev">{SEVERITY_LABELS[sev]}</span> {html.escape(r[:600])}</li>'
            for sev, r in rest
        )
        cut = len(ranked) - TOP_REASONS - len(rest)
        items.append(
            f'<li class="more"><details><summary>and {len(ranked) - TOP_REASONS} more</summary>'
            f"<ul>{more}</ul>"
            + (f"<p>… {cut} more in the JSON report</p>" if cut else "")
            + "</details></li>"
        )
    return "".join(items)


def render_html(summary: dict[str, Any]) -> str:
    verdict = str(summary.get("verdict", "fail"))
    t = summary.get("totals", {})
    unjudged = t.get("unjudged")
    if isinstance(unjudged, dict):
        unjudged = sum(v for v in unjudged.values() if isinstance(v, int))
    headline = (
        f"{t.get('compared', 0)} compared requests, {t.get('differing', 0)} with real differences "
        f"({t.get('diff_rate', 0):.2%}), {t.get('new_5xx', 0)} new 5xx, {t.get('errors', 0)} replay errors"
        + (f", {unjudged} unjudged" if unjudged else "")
    )
    warnings = "".join(
        f"<li>⚠ {html.escape(str(w)[:600])}</li>" for w in (summary.get("warnings") or [])[:50]
    )
    meta = html.escape(
        f"replaygate {summary.get('replaygate_version', '')} · {summary.get('generated_at', '')}"
        + (
            " · " + ", ".join(map(str, summary.get("sources") or []))
            if summary.get("sources")
            else ""
        )
    )
    data = orjson.dumps(_bounded(summary), option=orjson.OPT_NON_STR_KEYS).decode()
    # keep the JSON inside its <script> element whatever the captured bodies contain
    data = data.replace("</", "<\\/").replace("<!--", "\\u003c!--")
    before, after = _template().split("__DATA__", 1)
    out = before
    for k, v in (
        ("__VERDICT_TEXT__", "PASS" if verdict == "pass" else "FAIL"),
        ("__VERDICT__", "pass" if verdict == "pass" else "fail"),
        ("__HEADLINE__", html.escape(headline)),
        ("__REASONS__", _reasons_html(summary)),
        ("__WARNINGS__", warnings),
        ("__META__", meta),
        ("__RUN__", html.escape(order_line(summary) or "")),
        ("__RUN_HTTP2__", html.escape(http2_line(summary) or "")),
    ):
        out = out.replace(k, v)
    return out + data + after
