from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.formats import open_writer
from replaygate.testing import make_exchange

J = [("Content-Type", "application/json")]


def write_run(path: Path, *, bad: bool, baseline: bool = False, n: int = 30) -> None:
    w = open_writer(path)
    for i in range(n):
        o = orjson.dumps({"id": i, "rid": f"o{i}", "name": "x"})
        r = orjson.dumps(
            {
                "id": i,
                "rid": f"{'b' if baseline else 'c'}{i}",
                "name": "y" if bad and i % 2 else "x",
            }
        )
        w.write(
            make_exchange(
                "GET",
                f"/users/{i}",
                response_body=o,
                response_headers=J,
                replayed_status=200,
                replayed_body=r,
                replayed_headers=J,
                id=f"{i + 1:040x}",
            )
        )
    w.close()


def test_help() -> None:
    r = CliRunner().invoke(cli, ["compare", "--help"])
    assert r.exit_code == 0
    for flag in (
        "--baseline-file",
        "--json",
        "--junit",
        "--markdown",
        "--html",
        "--report",
        "--config",
        "--accepted",
    ):
        assert flag in r.output


def test_pass_with_baseline_and_reports(tmp_path: Path) -> None:
    write_run(tmp_path / "cand.gor", bad=False)
    write_run(tmp_path / "base.gor", bad=False, baseline=True)
    r = CliRunner().invoke(
        cli,
        [
            "compare",
            str(tmp_path / "cand.gor"),
            "--baseline-file",
            str(tmp_path / "base.gor"),
            "--report",
            str(tmp_path / "rep"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "replaygate: PASS" in r.output and "noise excluded: body:$.rid" in r.output
    s = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert s["verdict"] == "pass" and s["endpoints"][0]["endpoint"] == "GET /users/{int}"
    assert [f["field"] for f in s["endpoints"][0]["noise_fields"]] == ["body:$.rid"]
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {
        "report.json",
        "report.xml",
        "report.md",
        "report.html",
    }


def test_fail_exit_1_and_config(tmp_path: Path) -> None:
    write_run(tmp_path / "cand.gor", bad=True)
    write_run(tmp_path / "base.gor", bad=False, baseline=True)
    args = [
        "compare",
        str(tmp_path / "cand.gor"),
        "--baseline-file",
        str(tmp_path / "base.gor"),
        "--json",
        str(tmp_path / "s.json"),
    ]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "replaygate: FAIL" in r.output
    assert re.search(r"GET /users/\{int\}: 5\d(\.\d)?% of (29|30) requests differ", r.output)
    cfg = tmp_path / "replaygate.toml"
    cfg.write_text('[compare]\nignore = ["$.name"]\n')
    r = CliRunner().invoke(cli, [*args, "--config", str(cfg), "-q"])
    assert r.exit_code == 0 and r.output == ""


def test_input_errors_exit_2(tmp_path: Path) -> None:
    import pytest

    from replaygate.cli import main

    for argv in (
        ["compare", str(tmp_path / "missing.gor")],
        ["compare", str(tmp_path / "x.unknown")],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[gate]\nmax_diff_rate = 'lots'\n")
    write_run(tmp_path / "c.gor", bad=False)
    with pytest.raises(SystemExit) as e:
        main(["compare", str(tmp_path / "c.gor"), "--config", str(bad)])
    assert e.value.code == 2


def test_real_goreplay_capture_without_replays(corpus: Path, tmp_path: Path) -> None:
    """A real GoReplay recording (requests only) never replayed: grouped into endpoints, and
    one line says plainly that nothing was replayed. #11: exit 2 (fix the job), not 1 (block
    the release)."""
    src = corpus / "ecommerce-workshop" / "requests_0.gor"
    r = CliRunner().invoke(cli, ["compare", str(src), "--json", str(tmp_path / "s.json")])
    assert r.exit_code == 2
    assert "none of 101 requests was replayed" in r.output
    assert r.output.count("\n") == 1
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["totals"]["requests"] == 101
    eps = {e["endpoint"]: e["requests"] for e in s["endpoints"]}
    assert eps["POST /api/v2/storefront/cart/add_item"] == 2
    assert "GET /assets/favicon-{hash}.ico" in eps
    assert sum(eps.values()) == 101


def test_empty_input_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gor"
    empty.write_bytes(b"")
    r = CliRunner().invoke(cli, ["compare", str(empty)])
    assert r.exit_code == 2 and "no exchanges to judge" in r.output
    assert r.output.count("\n") == 1


def test_request_only_recording_replayed_passes(tmp_path: Path) -> None:
    """#11: a request-only recording (GoReplay's default capture) replayed to a target that
    answered 200 to all: judged on errors/5xx/status, passes, and says what was not compared."""
    from replaygate.formats.gor import GorWriter
    from replaygate.testing import make_exchange

    path = tmp_path / "replayed.gor"
    w = GorWriter(path)
    for i in range(300):
        ex = make_exchange("GET", f"/items/{i}", replayed_status=200, replayed_body=b"ok")
        ex.response = None
        w.write(ex)
    w.close()
    r = CliRunner().invoke(cli, ["compare", str(path), "--json", str(tmp_path / "s.json")])
    assert r.exit_code == 0, r.output
    assert "300 replayed" in r.output and "bodies and headers could not be compared" in r.output
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["totals"]["status_only"] == 300 and s["limitations"]


def test_bad_proto_descriptor_set_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from replaygate.cli import main

    write_run(tmp_path / "cand.gor", bad=False)
    bad = tmp_path / "x.pb"
    bad.write_bytes(b"\xff\xff")
    with pytest.raises(SystemExit) as e:
        main(["compare", str(tmp_path / "cand.gor"), "--proto-descriptor-set", str(bad)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--proto-descriptor-set" in err and err.count("\n") == 1, err
