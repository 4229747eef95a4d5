"""Reports for people on large runs: worst reasons first, a Markdown comment that always fits,
an HTML file of a few MB for thousands of endpoints."""

from __future__ import annotations

import functools
import re
from typing import Any

from replaygate.compare import Comparator, CompareConfig, GateConfig, judge
from replaygate.report import render_html, render_markdown
from replaygate.report._rank import ranked_reasons
from replaygate.report.markdown import MAX_CHARS

from ..compare._helpers import jex


@functools.lru_cache(maxsize=1)
def big_summary() -> dict[str, Any]:
    """5,000 failing endpoints, each with long values in its samples and many fields."""
    c = Comparator(CompareConfig(max_endpoints=10_000, max_segment_values=0))
    pad = "x" * 3000
    for i in range(5000):
        o = {"id": i, "text": pad, **{f"f{k}": k for k in range(6)}}
        r = {"id": i, "text": pad + "!", **{f"f{k}": -k for k in range(6)}}
        for j in range(2):
            c.add(
                jex(
                    f"/area{i}/item|{'y' * 40}",
                    o,
                    r,
                    rstatus=500 if i % 97 == 0 else 200,
                    rlatency_ms=10 + j,
                )
            )
    return judge(c.result(), GateConfig()).summary()


def test_markdown_always_fits_a_comment() -> None:
    s = big_summary()
    assert len(s["endpoints"]) == 5000
    md = render_markdown(s)
    assert len(md) < MAX_CHARS
    assert "more endpoints in the HTML/JSON report" in md
    assert md.count("<details>") == md.count("</details>")
    # reasons: the few that matter at the top, then "and N more"
    top = md.split("**Why it fails:**", 1)[1].split("\n\n", 2)[1]
    assert top.splitlines()[0].startswith("- **5xx/errors**")
    assert re.search(r"and \d+ more reasons", md)
    # an absurdly long single reason or endpoint name cannot blow the budget either
    s2 = {**s, "reasons": ["GET /x: " + "z" * 100_000] * 50, "warnings": ["w" * 100_000] * 100}
    assert len(render_markdown(s2)) < MAX_CHARS


def test_html_size_is_bounded_for_large_runs() -> None:
    s = big_summary()
    page = render_html(s)
    assert len(page.encode()) < 6_000_000
    assert '"report_limits":{"endpoints":5000' in page
    # every endpoint still has its table row
    assert page.count('"endpoint":"GET /area') == 5000
    assert len(re.findall(r"<li><span class=\"sev\">", page)) >= 10
    assert "and " in page and " more</summary>" in page


def test_reasons_ordered_by_severity() -> None:
    s = {
        "reasons": [
            "GET /a: 50% of 10 requests differ (max_endpoint_diff_rate 5%): body:$.x changed (5)",
            "GET /b: p99 300.0 ms vs 10.0 ms baseline (x30.00, +290.0 ms; ...)",
            "GET /c: 60% of 10 requests differ (max_endpoint_diff_rate 5%): status changed (6)",
            "GET /d: 42 new 5xx of 300 requests (14%, baseline 0%; max_new_5xx_rate 0%)",
            "only 0 exchanges were replayed (min_replayed 1); ...",
            "GET /e: 3 replay errors of 10 (30%; max_error_rate 1%): timeout (3)",
            "cannot judge 10 of 54 replayed requests (18.5%; max_unjudged_rate 5%): GET /u (4)",
        ],
        "endpoints": [
            {"endpoint": "GET /d", "requests": 300, "verdict": "fail", "diff_rate": 0.0},
            {"endpoint": "GET /e", "requests": 10, "verdict": "fail", "diff_rate": 0.0},
        ],
    }
    order = [r.split(":", 1)[0] for _sev, r in ranked_reasons(s)]
    assert order == [
        "only 0 exchanges were replayed (min_replayed 1); ...",
        "GET /d",
        "GET /e",
        "GET /c",
        "GET /a",
        "cannot judge 10 of 54 replayed requests (18.5%; max_unjudged_rate 5%)",
        "GET /b",
    ]
    md = render_markdown({**s, "verdict": "fail", "totals": {}})
    assert md.index("42 new 5xx") < md.index("status changed") < md.index("p99 300.0")


def test_warnings_in_reports() -> None:
    from ._summary import make_summary

    s = {
        **make_summary(),
        "warnings": ["[compare] endpoints rule 'GET /shop/*/*.json' matched no request"],
    }
    assert "⚠️ [compare] endpoints rule 'GET /shop/\\*/\\*.json'" in render_markdown(s) or (
        "⚠️ [compare] endpoints rule 'GET /shop/*/*.json'" in render_markdown(s)
    )
    assert (
        "⚠ [compare] endpoints rule &#x27;GET /shop/*/*.json&#x27; matched no request"
        in render_html(s)
    )


def test_unjudged_counts_and_latency_intervals_are_shown(tmp_path: Any) -> None:
    from ._summary import make_summary
    from .test_html import chromium

    s = make_summary()
    s["totals"]["unjudged"] = 3
    e = s["endpoints"][-1]
    e.update(verdict="unjudged", unjudged=3, unjudged_reason="status changed on the baseline too")
    s["endpoints"][0]["latency_ms"]["interval_ms"] = [1.5, 4.25]
    md = render_markdown(s)
    assert "3 unjudged" in md and "| ❔ |" in md and "Δ +1.5…+4.2)" in md
    page = tmp_path / "r.html"
    page.write_text(render_html(s), encoding="utf-8")
    assert ", 3 unjudged" in page.read_text()
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert 'data-js-errors="0"' in dom.stdout and 'data-rendered="1"' in dom.stdout
    assert "<b>3</b>unjudged" in dom.stdout and 'class="badge b-unjudged"' in dom.stdout
    assert "interval of the difference +1.5 … +4.3 ms" in dom.stdout
    real = make_summary()["endpoints"][0]["latency_ms"]  # as the gate computes it now
    if real.get("interval_ms"):
        assert "99% Δ" in render_markdown(make_summary())
