"""The HTML report: ONE self-contained file (inline CSS, JS and SVG; no CDN) that opens
offline. The verdict and reasons are rendered server-side, so they show even with scripts
disabled; the rest is drawn by a small script from the embedded JSON summary."""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

import orjson

__all__ = ["render_html"]


def _template() -> str:
    return (resources.files("replaygate.report") / "templates" / "report.html").read_text("utf-8")


def render_html(summary: dict[str, Any]) -> str:
    verdict = str(summary.get("verdict", "fail"))
    t = summary.get("totals", {})
    reasons = summary.get("reasons") or []
    headline = (
        f"{t.get('compared', 0)} compared requests, {t.get('differing', 0)} with real differences "
        f"({t.get('diff_rate', 0):.2%}), {t.get('new_5xx', 0)} new 5xx, {t.get('errors', 0)} replay errors"
    )
    items = (
        "".join(f"<li>{html.escape(str(r))}</li>" for r in reasons)
        or "<li>all gate checks passed</li>"
    )
    meta = html.escape(
        f"replaygate {summary.get('replaygate_version', '')} · {summary.get('generated_at', '')}"
        + (
            " · " + ", ".join(map(str, summary.get("sources") or []))
            if summary.get("sources")
            else ""
        )
    )
    data = orjson.dumps(summary, option=orjson.OPT_NON_STR_KEYS).decode()
    # keep the JSON inside its <script> element whatever the captured bodies contain
    data = data.replace("</", "<\\/").replace("<!--", "\\u003c!--")
    before, after = _template().split("__DATA__", 1)
    out = before
    for k, v in (
        ("__VERDICT_TEXT__", "PASS" if verdict == "pass" else "FAIL"),
        ("__VERDICT__", "pass" if verdict == "pass" else "fail"),
        ("__HEADLINE__", html.escape(headline)),
        ("__REASONS__", items),
        ("__META__", meta),
    ):
        out = out.replace(k, v)
    return out + data + after
