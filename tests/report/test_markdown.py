from __future__ import annotations

from replaygate.report import render_markdown

from ._summary import make_summary


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
