"""Markdown for a pull-request comment: verdict and reasons first, then a compact table of
endpoints (failing first), noise and accepted differences folded in ``<details>``."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["render_markdown"]

MAX_ROWS = 40


def _esc(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _val(v: Any) -> str:
    text = v if isinstance(v, str) else orjson.dumps(v).decode()
    return text[:60] + ("…" if len(text) > 60 else "")


def _ms(d: dict[str, Any], k: str = "p99") -> str:
    v = d.get(k)
    return f"{v:.1f}" if isinstance(v, int | float) else "–"


def render_markdown(summary: dict[str, Any]) -> str:
    ok = summary.get("verdict") == "pass"
    t = summary.get("totals", {})
    lines = [
        f"## replaygate: {'✅ PASS' if ok else '❌ FAIL'}",
        "",
        f"{t.get('requests', 0)} requests, {t.get('replayed', 0)} replayed, "
        f"{t.get('compared', 0)} compared, {t.get('differing', 0)} with real differences "
        f"({t.get('diff_rate', 0):.2%}); {t.get('new_5xx', 0)} new 5xx, {t.get('errors', 0)} "
        "replay errors.",
        "",
    ]
    nc = t.get("not_compared") or {}
    if nc:
        lines[-1:] = [
            "Not compared: " + ", ".join(f"{_esc(k)} ({n})" for k, n in sorted(nc.items())) + ".",
            "",
        ]
    if summary.get("reasons"):
        lines.append("**Why it fails:**")
        lines.append("")
        lines.extend(f"- {_esc(r)}" for r in summary["reasons"])
        lines.append("")
    eps = summary.get("endpoints", [])
    lines += [
        "| | Endpoint | Requests | Diff rate | p99 ms (ref → replayed) | New 5xx | Errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for e in eps[:MAX_ROWS]:
        lat = e.get("latency_ms", {})
        ref = lat.get(lat.get("reference") or "original", {})
        mark = "❌" if e["verdict"] == "fail" else ("➖" if not e.get("judged", True) else "✅")
        lines.append(
            f"| {mark} | `{_esc(e['endpoint'])}` | {e['requests']} | {e['diff_rate']:.1%} | "
            f"{_ms(ref)} → {_ms(lat.get('replayed', {}))} | {e.get('new_5xx', 0)} | "
            f"{sum(e.get('errors', {}).values())} |"
        )
    if len(eps) > MAX_ROWS:
        lines.append(
            f"| | … {len(eps) - MAX_ROWS} more endpoints in the HTML/JSON report | | | | | |"
        )
    lines.append("")
    real = [
        (e["endpoint"], f)
        for e in eps
        for f in e.get("fields", [])
        if f["status"] == "regression" and f["count"]
    ]
    if real:
        lines += ["<details><summary>Differences</summary>", ""]
        for ep, f in real[:60]:
            s = f["samples"][0] if f.get("samples") else {}
            ex = ""
            if s:
                ex = f": `{_esc(_val(s.get('original')))}` → `{_esc(_val(s.get('replayed')))}`"
            lines.append(
                f"- `{_esc(ep)}` **{_esc(f['field'])}** {f['kind']} in {f['count']} ({f['rate']:.1%}){ex}"
            )
        lines += ["", "</details>", ""]
    noise = [(e["endpoint"], f) for e in eps for f in e.get("noise_fields", [])]
    if noise:
        lines += ["<details><summary>Noise (excluded)</summary>", ""]
        for ep, f in noise[:60]:
            lines.append(f"- `{_esc(ep)}` {_esc(f['field'])} {f['kind']}: {_esc(f['reason'])}")
        lines += ["", "</details>", ""]
    acc = summary.get("accepted", [])
    if acc:
        lines += ["<details><summary>Accepted differences</summary>", ""]
        for a in acc:
            state = "**expired**" if a.get("expired") else f"until {a['expires']}"
            what = a.get("field") or (f"status {a['status']}" if a.get("status") else "latency")
            lines.append(
                f"- `{_esc(a['endpoint'])}` {_esc(what)}: {_esc(a['reason'])} ({_esc(a['who'])}, {state}; matched {a.get('used', 0)})"
            )
        lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"
