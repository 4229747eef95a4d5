from __future__ import annotations

from replaygate.report import render_markdown

from ._summary import make_summary, replay_facts


def test_markdown_pr_comment() -> None:
    md = render_markdown(make_summary())
    assert md.startswith("## replaygate: ❌ FAIL")
    assert "**Why it fails:**" in md and "| ❌ | `GET /items/{int}` |" in md
    assert "body:$.rid changed: baseline" in md  # noise listed with its reason
    assert "<script>" not in md
    assert render_markdown(make_summary(failing=False)).startswith("## replaygate: ✅ PASS")


def test_table_cells_escaped() -> None:
    s = make_summary()
    s["endpoints"][0]["endpoint"] = "GET /a|b"
    md = render_markdown(s)
    assert "`GET /a\\|b`" in md


def test_control_bytes_are_made_visible_and_code_spans_are_literal() -> None:
    """#12: raw ESC/NUL from request targets reached report.md; `&lt;` showed literally in
    code spans on GitHub (entities are not decoded inside code)."""
    import re

    s = make_summary()
    s["endpoints"][0]["endpoint"] = "GET /a\x1b[31m\x00<b>`x`|y"
    s["warnings"] = ["odd target \x1b[2J <here>"]
    md = render_markdown(s)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", md), "a raw control character"
    # literal (no &lt;), fenced past the backticks inside, the table pipe escaped
    assert "| `` GET /a\\x1b[31m\\x00<b>`x`\\|y `` |" in md
    assert "- `` GET /a\\x1b[31m\\x00<b>`x`|y `` " in md  # no pipe escape outside tables
    assert "odd target \\x1b[2J &lt;here&gt;" in md or "odd target \\x1b[2J &lt;here>" in md


def test_the_replay_order_and_its_waits_are_shown() -> None:
    md = render_markdown(make_summary(replay=replay_facts("recorded", 45)))
    line = next(ln for ln in md.splitlines() if ln.startswith("Replay order: recorded"))
    assert "45 requests waited for their predecessors (p50 " in line and ", max " in line
    assert md.index(line) < md.index("| | Endpoint |")  # with the run facts, before the table
    assert "Replay order" not in render_markdown(make_summary())  # compare alone: unknown


def test_the_replay_http2_events_are_shown() -> None:
    facts = replay_facts("none", 0, {"goaway": 1, "retried": 2})
    md = render_markdown(make_summary(replay=facts))
    assert "Replay HTTP/2 events: goaway=1, retried=2." in md.splitlines()
    assert md.index("Replay HTTP/2 events") < md.index("| | Endpoint |")
    assert "HTTP/2" not in render_markdown(make_summary(replay=replay_facts("none", 0)))
