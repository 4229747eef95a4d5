from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from replaygate.cli._report_options import (
    compare_config,
    finish_reports,
    load_report_config,
    report_options,
    start_watcher,
    watch_options,
)
from replaygate.compare import Comparator

from ..compare._helpers import jex


@click.command()
@report_options
@watch_options
def fake_replay(**options: Any) -> None:
    """What replay/shadow do: compare while watching the target, then judge."""
    config = load_report_config(options)
    c = Comparator(compare_config(config))
    w = start_watcher(options, interval=0.05)
    for i in range(5):
        c.add(jex(f"/a/{i}", {"a": i}, {"a": i}))
    if w is not None:
        c.set_target_metrics(w.stop())
    click.get_current_context().exit(finish_reports(c, options, config, err=True))


def test_report_dir_watch_pid_and_exit_code(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        fake_replay, ["--report", str(tmp_path / "r"), "--watch-pid", str(os.getpid())]
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "r" / "report.json").read_text())
    assert s["verdict"] == "pass" and s["target"]["process"]["pid"] == os.getpid()
    assert (tmp_path / "r" / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_config_and_accepted_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[gate]\nmin_replayed = 100\n[compare]\nsamples = 1\n")
    r = CliRunner().invoke(
        fake_replay, ["--config", str(cfg), "--markdown", str(tmp_path / "m.md")]
    )
    assert r.exit_code == 1 and "only 5 exchanges were replayed (min_replayed 100)" in r.output
    r = CliRunner().invoke(fake_replay, ["--accepted", str(tmp_path / "missing.toml")])
    assert r.exit_code == 1 and "not found" in str(r.exception)
    r = CliRunner().invoke(fake_replay, ["--watch-metrics", "http://192.0.2.1/metrics"])
    assert "loopback" in str(r.exception)
    r = CliRunner().invoke(fake_replay, ["--json", str(tmp_path / "no" / "dir.json")])
    assert "directory does not exist" in str(r.exception)


def test_routes_flag_and_a_rule_matching_nothing_warns_on_stderr(tmp_path: Path) -> None:
    cfg = tmp_path / "replaygate.toml"
    cfg.write_text('[compare]\nendpoints = ["GET /shop/*/*.json"]\n')
    routes = tmp_path / "routes.txt"
    routes.write_text("GET /a/{n}\n")
    r = CliRunner().invoke(
        fake_replay,
        ["--config", str(cfg), "--routes", str(routes), "--json", str(tmp_path / "r.json")],
    )
    assert r.exit_code == 0, r.output
    warning = "[compare] endpoints rule 'GET /shop/*/*.json' matched no request"
    assert f"replaygate: warning: {warning}" in r.stderr
    s = json.loads((tmp_path / "r.json").read_text())
    assert s["warnings"] == [warning]
    assert [e["endpoint"] for e in s["endpoints"]] == ["GET /a/{n}"]
    from replaygate.errors import InputError

    bad = CliRunner().invoke(fake_replay, ["--routes", str(tmp_path / "nope.txt")])
    assert isinstance(bad.exception, InputError) and "nope.txt" in str(bad.exception)


def test_every_reporting_command_takes_the_report_flags_alike() -> None:
    """The report flags are defined once (report_output_options) and shared."""
    import importlib

    import click

    from replaygate.cli._report_options import REPORT_OUTPUT_KEYS, report_output_options

    @click.command()
    @report_output_options
    def reference(**kw: object) -> None:  # pragma: no cover - not invoked
        pass

    ref = {p.name: p for p in reference.params}
    assert set(REPORT_OUTPUT_KEYS) <= set(ref)
    for name in ("compare", "replay", "shadow", "aggregate"):
        cmd = importlib.import_module(f"replaygate.cli.{name}").command
        got = {p.name: p for p in cmd.params}
        for key, p in ref.items():
            assert key in got, f"{name}: no --{key}"
            assert (got[key].opts, got[key].default) == (p.opts, p.default), f"{name} {key}"
