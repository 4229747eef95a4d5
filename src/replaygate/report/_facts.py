"""Run facts shared by the human reports (HTML, Markdown, JUnit): how the replay ran.

``summary["replay"]`` holds the ``order*`` fields and the ``http2`` event counts of
``ReplayStats`` when the summary was judged by ``replay``/``shadow`` (absent when ``compare``
judged a recording on its own; ``http2`` is absent from summaries written before it was
added, and empty when nothing happened on HTTP/2)."""

from __future__ import annotations

from typing import Any

__all__ = ["http2_line", "order_line"]

_MODES = {
    "none": "none (each request on its own schedule)",
    "sessions": "sessions (one user's requests in their recorded order)",
    "recorded": "recorded (happens-before from the recording)",
}


def _ms(v: Any) -> str:
    return f"{v:.1f} ms" if isinstance(v, int | float) and not isinstance(v, bool) else "–"


def order_line(summary: dict[str, Any]) -> str | None:
    """One plain-text line: the order used, how many requests waited for their predecessors
    and how long (p50/p99/max), inversions if any; ``None`` when the summary has no order."""
    rep = summary.get("replay")
    if not isinstance(rep, dict) or not isinstance(rep.get("order"), str):
        return None
    mode = rep["order"]
    text = f"Replay order: {_MODES.get(mode, mode)}"
    waited = rep.get("order_waited")
    if mode != "none" and isinstance(waited, int):
        text += f"; {waited} requests waited for their predecessors"
        if waited:
            text += (
                f" (p50 {_ms(rep.get('order_wait_p50_ms'))}, p99 "
                f"{_ms(rep.get('order_wait_p99_ms'))}, max {_ms(rep.get('order_wait_max_ms'))}"
            )
            total = rep.get("order_wait_total_s")
            if isinstance(total, int | float) and total:
                text += f", {total:.1f} s in all"
            text += ")"
    inv = rep.get("order_inversions")
    if isinstance(inv, int) and inv:
        text += f"; {inv} exchanges came after one they preceded (input not in recorded order)"
    return text + "."


def http2_line(summary: dict[str, Any]) -> str | None:
    """One plain-text line: the HTTP/2 events of a ``--http2`` replay (GOAWAY, resets,
    refused streams, requests sent again, ...) as the ``replay`` summary prints them;
    ``None`` when there were none or the summary does not say."""
    rep = summary.get("replay")
    events = rep.get("http2") if isinstance(rep, dict) else None
    if not isinstance(events, dict):
        return None
    counts = ", ".join(
        f"{k}={n}"
        for k, n in sorted(events.items(), key=lambda kv: str(kv[0]))
        if isinstance(n, int) and not isinstance(n, bool) and n
    )
    return f"Replay HTTP/2 events: {counts}." if counts else None
