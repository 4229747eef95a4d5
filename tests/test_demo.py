"""The demo's promise: the gate fails naming exactly the planted regressions, none of the noise."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from replaygate.cli import cli

PLANTED = {
    "GET /api/users/{int}": "body:$.status changed",  # a changed JSON field
    "GET /api/search": " ms baseline (x",  # a slower endpoint
    "GET /api/orders/{uuid}": "new 5xx",  # a new 500 on an edge case
}
NOISE = (
    "request_id",
    "served_at",
    "created_at",
    "header:date",
    "x-request-id",
    "x-trace-id",
    "body:$.id ",
)


def test_demo_names_exactly_the_planted_regressions(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = CliRunner().invoke(cli, ["demo", "--out", str(out), "--requests", "300", "--strict"])
    assert r.exit_code == 1, r.output  # --strict: the failing gate is exit 1
    assert "replaygate: FAIL" in r.output and "report.html" in r.output
    s = json.loads((out / "report.json").read_text())
    assert s["verdict"] == "fail"
    failing = {e["endpoint"] for e in s["endpoints"] if e["verdict"] == "fail"}
    assert failing == set(PLANTED)
    for e in s["endpoints"]:
        if e["endpoint"] in PLANTED:
            assert any(PLANTED[e["endpoint"]] in x for x in e["reasons"]), e["reasons"]
        for reason in e["reasons"]:
            assert not any(n in reason for n in NOISE), reason
    users = next(e for e in s["endpoints"] if e["endpoint"] == "GET /api/users/{int}")
    assert [f["field"] for f in users["fields"] if f["status"] == "regression"] == ["body:$.status"]
    noise = {f["field"] for e in s["endpoints"] for f in e["noise_fields"]}
    assert {
        "body:$.meta.request_id",
        "body:$.meta.served_at",
        "header:x-request-id",
        "header:x-trace-id",
    } <= noise
    search = next(e for e in s["endpoints"] if e["endpoint"] == "GET /api/search")
    assert search["diff_rate"] == 0 and search["latency_ms"]["regressed"]
    assert s["target"]["metrics"]["samples"] >= 2 and s["target"]["process"]["samples"] >= 2
    assert any(k.startswith("demo_requests_total") for k in s["target"]["metrics"]["deltas"])
    # the replay's recording judges the same way later (roles survive the .gor round trip)
    again = tmp_path / "again.json"
    r2 = CliRunner().invoke(
        cli,
        [
            "compare",
            str(out / "replayed.gor"),
            "--config",
            str(out / "replaygate.toml"),
            "--json",
            str(again),
        ],
    )
    assert r2.exit_code == 1, r2.output
    s2 = json.loads(again.read_text())
    assert {e["endpoint"] for e in s2["endpoints"] if e["verdict"] == "fail"} == set(PLANTED)
    assert {p.name for p in out.iterdir()} >= {
        "capture.gor",
        "replayed.gor",
        "replaygate.toml",
        "report.html",
        "report.json",
        "report.md",
        "report.xml",
    }


def test_demo_exits_0_without_strict(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "d"), "--requests", "60"])
    assert r.exit_code == 0, r.output
    assert "replaygate: FAIL" in r.output or "replaygate: PASS" in r.output
    assert CliRunner().invoke(cli, ["demo", "--help"]).exit_code == 0
