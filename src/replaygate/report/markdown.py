"""Markdown for a pull-request comment: verdict and the few reasons that matter first (worst
first, see ``_rank``), then a compact table of endpoints (failing first), differences, noise
and accepted differences folded in ``<details>``.

The comment is always shorter than ``MAX_CHARS`` (GitHub cuts comments at 65,536
characters): every section has a share of the budget and says how much it left out."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ._facts import http2_line, order_line
from ._rank import SEVERITY_LABELS, ranked_reasons

__all__ = ["MAX_CHARS", "render_markdown"]

MAX_CHARS = 60_000
MAX_ROWS = 40
TOP_REASONS = 8


# C0 controls (newlines, tabs included), DEL and C1 controls: shown as \xNN, never written raw
# (an ESC or NUL from a request target must not reach a terminal or a PR comment as is)
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_BACKTICKS = re.compile("`+")


def _visible(s: Any) -> str:
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", str(s))


def _esc(s: Any) -> str:
    """Text outside code spans: controls made visible, table pipes and HTML escaped."""
    return _visible(s).replace("&", "&amp;").replace("|", "\\|").replace("<", "&lt;")


def _code(s: Any, *, table: bool = False) -> str:
    """A code span: controls made visible, nothing HTML-escaped (GitHub shows entities
    literally inside code), a fence longer than any run of backticks inside; in a table
    cell ``|`` is escaped as GFM tables require (also inside code)."""
    text = _visible(s)
    if table:
        text = text.replace("|", "\\|")
    runs = [len(m.group()) for m in _BACKTICKS.finditer(text)]
    fence = "`" * (max(runs) + 1 if runs else 1)
    pad = " " if text.startswith("`") or text.endswith("`") or runs else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _val(v: Any) -> str:
    text = v if isinstance(v, str) else orjson.dumps(v).decode()
    return text[:60] + ("…" if len(text) > 60 else "")


def _ms(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, int | float) else "–"


def _cut(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class _Doc:
    """Lines with a character budget; sections stop (and say so) when theirs is spent."""

    def __init__(self, limit: int) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.limit = limit

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line) + 1

    def fits(self, line: str, reserve: int) -> bool:
        return self.size + len(line) + 1 + reserve <= self.limit

    def items(
        self, lines: list[str], share: int, more: str, reserve: int = 2000, extra: int = 0
    ) -> None:
        """Add ``lines`` while this section's share (and the whole budget) lasts, then one line
        ``more`` formatted with the number left out (plus ``extra`` not even offered)."""
        start = self.size
        for i, line in enumerate(lines):
            if self.size - start + len(line) + 1 > share or not self.fits(line, reserve):
                self.add(more.format(n=len(lines) - i + extra))
                return
            self.add(line)
        if extra:
            self.add(more.format(n=extra))


def _latency_cell(e: dict[str, Any]) -> str:
    lat = e.get("latency_ms") or {}
    pct = lat.get("percentile")
    ref_ms, rep_ms = lat.get("reference_ms"), lat.get("replayed_ms")
    if pct is None or (ref_ms is None and rep_ms is None):
        ref = lat.get(lat.get("reference") or "original") or {}
        return f"p99 {_ms(ref.get('p99'))} → {_ms((lat.get('replayed') or {}).get('p99'))}"
    cell = f"p{pct} {_ms(ref_ms)} → {_ms(rep_ms)}"
    iv = lat.get("interval_ms")  # confidence interval of the difference, when computed
    if (
        isinstance(iv, list | tuple)
        and len(iv) == 2
        and all(isinstance(x, int | float) for x in iv)
    ):
        conf = lat.get("confidence")
        pct_txt = f"{conf:.0%} " if isinstance(conf, float) else ""
        cell += f" ({pct_txt}Δ {iv[0]:+.1f}…{iv[1]:+.1f})"
    return cell


def render_markdown(summary: dict[str, Any], limit: int = MAX_CHARS) -> str:
    ok = summary.get("verdict") == "pass"
    t = summary.get("totals", {})
    doc = _Doc(limit - 200)
    doc.add(f"## replaygate: {'✅ PASS' if ok else '❌ FAIL'}")
    doc.add("")
    unjudged = t.get("unjudged")
    doc.add(
        f"{t.get('requests', 0)} requests, {t.get('replayed', 0)} replayed, "
        f"{t.get('compared', 0)} compared, {t.get('differing', 0)} with real differences "
        f"({t.get('diff_rate', 0):.2%}); {t.get('new_5xx', 0)} new 5xx, {t.get('errors', 0)} "
        "replay errors"
        + (
            f"; {_count(unjudged)} unjudged (baseline disagrees with the original)"
            if unjudged
            else ""
        )
        + (
            f"; {t['status_only']} judged on status only (no recorded response body)"
            if t.get("status_only")
            else ""
        )
        + "."
    )
    for fact in (order_line(summary), http2_line(summary)):
        if fact:
            doc.add(_esc(fact))
    doc.add("")
    nc = t.get("not_compared") or {}
    if nc:
        doc.add(
            _cut(
                "Not compared: " + ", ".join(f"{_esc(k)} ({n})" for k, n in sorted(nc.items())),
                1000,
            )
            + "."
        )
        doc.add("")
    warnings = summary.get("warnings") or []
    if warnings:
        doc.items(
            [f"> ⚠️ {_esc(_cut(str(w)))}" for w in warnings], 3000, "> ⚠️ … and {n} more warnings"
        )
        doc.add("")
    ranked = ranked_reasons(summary)
    if ranked:
        doc.add("**Why it fails:** (worst first)")
        doc.add("")
        top = [f"- **{SEVERITY_LABELS[sev]}** {_esc(_cut(r))}" for sev, r in ranked]
        doc.items(top[:TOP_REASONS], 6000, "- … and {n} more")
        if len(ranked) > TOP_REASONS:
            doc.add("")
            doc.add(f"<details><summary>and {len(ranked) - TOP_REASONS} more reasons</summary>")
            doc.add("")
            doc.items(top[TOP_REASONS:], 12_000, "- … and {n} more in the JSON/HTML report")
            doc.add("")
            doc.add("</details>")
        doc.add("")
    _endpoint_table(doc, summary.get("endpoints", []))
    _details(doc, summary)
    text = "\n".join(doc.lines) + "\n"
    if len(text) > limit:  # cannot happen with the shares above; a last guard all the same
        text = text[: limit - 80].rsplit("\n", 1)[0] + "\n\n… (cut to fit a comment)\n"
    return text


def _count(v: Any) -> str:
    if isinstance(v, dict):
        return str(sum(x for x in v.values() if isinstance(x, int)))
    return str(v)


def _endpoint_table(doc: _Doc, eps: list[dict[str, Any]]) -> None:
    doc.add(
        "| | Endpoint | Requests | Diff rate | Latency, judged percentile ms (ref → replayed) "
        "| New 5xx | Errors |"
    )
    doc.add("|---|---|---:|---:|---:|---:|---:|")
    rows = []
    for e in eps[:MAX_ROWS]:
        if e["verdict"] == "fail":
            mark = "❌"
        elif e.get("unjudged") or e["verdict"] == "unjudged":
            mark = "❔"
        else:
            mark = "➖" if not e.get("judged", True) else "✅"
        rows.append(
            f"| {mark} | {_code(_cut(e['endpoint'], 200), table=True)} | {e['requests']} | "
            f"{e['diff_rate']:.1%} | {_latency_cell(e)} | {e.get('new_5xx', 0)} | "
            f"{sum(e.get('errors', {}).values())} |"
        )
    doc.items(
        rows,
        20_000,
        "| | … {n} more endpoints in the HTML/JSON report | | | | | |",
        extra=len(eps) - len(rows),
    )
    doc.add("")


def _details(doc: _Doc, summary: dict[str, Any]) -> None:
    eps = summary.get("endpoints", [])
    real = [
        (e["endpoint"], f)
        for e in eps
        for f in e.get("fields", [])
        if f["status"] == "regression" and f["count"]
    ]
    if real:
        doc.add("<details><summary>Differences</summary>")
        doc.add("")
        lines = []
        for ep, f in real[:200]:
            s = f["samples"][0] if f.get("samples") else {}
            ex = ""
            if s:
                ex = f": {_code(_val(s.get('original')))} → {_code(_val(s.get('replayed')))}"
            lines.append(
                f"- {_code(_cut(ep, 200))} **{_esc(_cut(f['field'], 200))}** {f['kind']} in "
                f"{f['count']} ({f['rate']:.1%}){ex}"
            )
        doc.items(lines, 12_000, "- … and {n} more", reserve=1500, extra=len(real) - len(lines))
        doc.add("")
        doc.add("</details>")
        doc.add("")
    noise = [(e["endpoint"], f) for e in eps for f in e.get("noise_fields", [])]
    if noise:
        doc.add("<details><summary>Noise (excluded)</summary>")
        doc.add("")
        lines = [
            f"- {_code(_cut(ep, 200))} {_esc(_cut(f['field'], 200))} {f['kind']}: "
            f"{_esc(_cut(str(f['reason'])))}"
            for ep, f in noise[:200]
        ]
        doc.items(lines, 6000, "- … and {n} more", reserve=1000, extra=len(noise) - len(lines))
        doc.add("")
        doc.add("</details>")
        doc.add("")
    acc = summary.get("accepted", [])
    if acc:
        doc.add("<details><summary>Accepted differences</summary>")
        doc.add("")
        lines = []
        for a in acc:
            state = "**expired**" if a.get("expired") else f"until {a['expires']}"
            what = a.get("field") or (f"status {a['status']}" if a.get("status") else "latency")
            lines.append(
                f"- {_code(a['endpoint'])} {_esc(what)}: {_esc(_cut(str(a['reason'])))} "
                f"({_esc(a['who'])}, {state}; matched {a.get('used', 0)})"
            )
        doc.items(lines, 6000, "- … and {n} more", reserve=100)
        doc.add("")
        doc.add("</details>")
        doc.add("")
