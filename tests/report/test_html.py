"""The HTML report in a real headless Chromium: loads from file:// with no console errors,
the verdict is visible, the script rendered the tables, and a screenshot is produced."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from replaygate.report import render_html

from ._summary import make_summary, replay_facts

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    prof = tmp / f"profile{len(list(tmp.glob('profile*')))}"
    prof.mkdir()
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={prof}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_self_contained() -> None:
    html = render_html(make_summary())
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script>alert(1)</script>" not in html  # captured bodies cannot break out
    assert 'id="verdict-text">FAIL<' in html


def test_replay_order_is_shown_server_side() -> None:
    page = render_html(make_summary(replay=replay_facts("recorded", 45)))
    m = re.search(r'<div class="meta" id="run">([^<]*)</div>', page)
    assert m is not None  # rendered in the header, without the script
    assert m.group(1).startswith("Replay order: recorded")
    assert "45 requests waited for their predecessors (p50 " in m.group(1)
    assert '"order_waited":45' in page  # and in the embedded summary the script reads
    assert '<div class="meta" id="run"></div>' in render_html(make_summary())


def test_renders_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(make_summary()), encoding="utf-8")
    url = page.as_uri()
    dom = chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None
    assert 'data-js-errors="0"' in body.group(0) and 'data-rendered="1"' in body.group(0)
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == []
    assert '<h1 id="verdict-text">FAIL</h1>' in dom.stdout
    assert dom.stdout.count("<tr") > 5 and "GET /items/{int}" in dom.stdout
    assert "<polyline" in dom.stdout and 'class="ln del"' in dom.stdout
    assert re.search(r'class="ln add">[^<]*<mark>', dom.stdout)  # the differing part is marked
    shot = tmp_path / "report.png"
    r = chromium(
        tmp_path, "--window-size=1280,1800", "--hide-scrollbars", f"--screenshot={shot}", url
    )
    assert r.returncode == 0 and shot.stat().st_size > 10_000
    keep = Path("/tmp/replaygate-report-screenshot.png")
    shutil.copyfile(shot, keep)


def test_sort_and_select_by_url_hash(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(make_summary()), encoding="utf-8")
    url = page.as_uri() + "#sort=requests:asc&endpoint=GET%20/health"
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0
    assert 'data-js-errors="0"' in dom.stdout
    rows = re.findall(
        r"<tr[^>]*><td><span[^>]*>\w+</span></td><td><code>([^<]+)</code>", dom.stdout
    )
    assert rows == ["GET /health", "GET /items/{int}"]  # 40 requests before 42
    assert 'id="detail-title">Endpoint GET /health<' in dom.stdout


def test_large_run_renders_in_chromium(tmp_path: Path) -> None:
    from .test_limits import big_summary

    page = tmp_path / "big.html"
    page.write_text(render_html(big_summary()), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0
    assert 'data-js-errors="0"' in dom.stdout and 'data-rendered="1"' in dom.stdout
    assert "Detail (fields, samples, latency charts) kept for" in dom.stdout
    assert dom.stdout.count("GET /area") >= 5000


def test_replay_http2_events_are_shown_server_side() -> None:
    facts = replay_facts("none", 0, {"rst_stream": 2, "stream_ids_used_up": 1})
    page = render_html(make_summary(replay=facts))
    m = re.search(r'<div class="meta" id="run-http2">([^<]*)</div>', page)
    assert m is not None
    assert m.group(1) == "Replay HTTP/2 events: rst_stream=2, stream_ids_used_up=1."
    assert '"http2":{"rst_stream":2,"stream_ids_used_up":1}' in page  # the embedded summary
    assert '<div class="meta" id="run-http2"></div>' in render_html(make_summary())
