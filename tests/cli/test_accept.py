from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.compare import AcceptedDiffs

from .test_compare import write_run


def test_accept_then_gate_passes(tmp_path: Path) -> None:
    write_run(tmp_path / "cand.gor", bad=True)
    write_run(tmp_path / "base.gor", bad=False, baseline=True)
    base = ["compare", str(tmp_path / "cand.gor"), "--baseline-file", str(tmp_path / "base.gor")]
    r = CliRunner().invoke(cli, [*base, "--json", str(tmp_path / "s.json")])
    assert r.exit_code == 1
    out = tmp_path / "accepted.toml"
    acc = [
        "accept",
        str(tmp_path / "s.json"),
        "--reason",
        "renamed on purpose",
        "--who",
        "alice",
        "--expires",
        "2099-01-31",
        "-o",
        str(out),
    ]
    r = CliRunner().invoke(cli, acc)
    assert r.exit_code == 0, r.output
    assert "accepted 1 difference" in r.output
    e = AcceptedDiffs.load(out).entries
    assert [(x.endpoint, x.field, x.kind, x.who) for x in e] == [
        ("GET /users/{int}", "body:$.name", "changed", "alice")
    ]
    r = CliRunner().invoke(cli, acc)  # already accepted: nothing new
    assert "nothing to accept" in r.output and len(AcceptedDiffs.load(out).entries) == 1
    r = CliRunner().invoke(
        cli, [*base, "--accepted", str(out), "--json", str(tmp_path / "s2.json")]
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "s2.json").read_text())
    assert s["accepted"][0]["used"] == 15


def test_accept_filters_and_errors(tmp_path: Path) -> None:
    write_run(tmp_path / "cand.gor", bad=True)
    r = CliRunner().invoke(
        cli, ["compare", str(tmp_path / "cand.gor"), "--json", str(tmp_path / "s.json")]
    )
    assert r.exit_code == 1
    common = ["--reason", "r", "--who", "w", "-o", str(tmp_path / "a.toml")]
    r = CliRunner().invoke(
        cli,
        [
            "accept",
            str(tmp_path / "s.json"),
            *common,
            "--expires",
            "2099-01-01",
            "--field",
            "body:$.rid",
            "--dry-run",
        ],
    )
    assert r.exit_code == 0 and 'field = "body:$.rid"' in r.output and "body:$.name" not in r.output
    assert not (tmp_path / "a.toml").exists()
    r = CliRunner().invoke(
        cli, ["accept", str(tmp_path / "s.json"), *common, "--expires", "2001-01-01"]
    )
    assert r.exit_code != 0 and "in the past" in str(r.exception or r.output)
    r = CliRunner().invoke(
        cli, ["accept", str(tmp_path / "s.json"), *common, "--expires", "tomorrow"]
    )
    assert "not a date" in str(r.exception or r.output)
    (tmp_path / "x.json").write_text("[]")
    r = CliRunner().invoke(
        cli, ["accept", str(tmp_path / "x.json"), *common, "--expires", "2099-01-01"]
    )
    assert "not a replaygate JSON summary" in str(r.exception or r.output)
    r = CliRunner().invoke(cli, ["accept", "--help"])
    assert r.exit_code == 0 and "--expires" in r.output


def test_accept_endpoint_filter(tmp_path: Path) -> None:
    write_run(tmp_path / "cand.gor", bad=True)
    r = CliRunner().invoke(
        cli, ["compare", str(tmp_path / "cand.gor"), "--json", str(tmp_path / "s.json")]
    )
    assert r.exit_code == 1
    common = [
        "--reason",
        "r",
        "--who",
        "w",
        "--expires",
        "2099-01-01",
        "-o",
        str(tmp_path / "a.toml"),
    ]
    r = CliRunner().invoke(
        cli, ["accept", str(tmp_path / "s.json"), *common, "--endpoint", "POST *"]
    )
    assert "nothing to accept" in r.output and not (tmp_path / "a.toml").exists()
    r = CliRunner().invoke(
        cli, ["accept", str(tmp_path / "s.json"), *common, "--endpoint", "GET /users/*"]
    )
    assert r.exit_code == 0 and "accepted" in r.output
    assert {e.field for e in AcceptedDiffs.load(tmp_path / "a.toml").entries} >= {"body:$.name"}
