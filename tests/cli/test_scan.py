"""``replaygate scan``: counts by rule/location/endpoint, never values; exit 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from replaygate.cli.scan import command, endpoint_of
from replaygate.formats import open_writer
from replaygate.model import Exchange
from replaygate.stages.mask import MaskConfig, MaskStage
from replaygate.testing import make_exchange

SECRETS = ["alice@corp-mail.io", "hunter2-pw", "TOKEN-abcdef-123456", "10.20.30.40"]


def _dirty() -> list[Exchange]:
    return [
        make_exchange(
            "POST",
            "/api/users/12345/login",
            request_headers=[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer TOKEN-abcdef-123456"),
                ("X-Forwarded-For", "10.20.30.40"),
            ],
            request_body=json.dumps(
                {"email": "alice@corp-mail.io", "password": "hunter2-pw"}
            ).encode(),
        ),
        make_exchange("GET", "/health", response_body=b"ok"),
    ]


def _write(path: Path, exchanges: list[Exchange]) -> str:
    w = open_writer(path)
    for ex in exchanges:
        w.write(ex)
    w.close()
    return str(path)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replaygate", "scan", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help() -> None:
    r = CliRunner().invoke(command, ["--help"])
    assert r.exit_code == 0 and "--json" in r.output and "counts" in r.output


def test_dirty_file_reports_counts_without_values(tmp_path: Path) -> None:
    f = _write(tmp_path / "dirty.gor", _dirty())
    r = _run(f)
    assert r.returncode == 1, r.stderr
    out = r.stdout + r.stderr
    for s in SECRETS:
        assert s not in out
    assert "UNMASKED" in out and "request.json:$.password" in out
    assert "POST /api/users/{id}/login" in out and "result: unmasked" in out


def test_json_report(tmp_path: Path) -> None:
    f = _write(tmp_path / "dirty.jsonl", _dirty())
    r = _run("--json", "--ip", f)
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["exchanges"] == 2 and rep["clean"] is False and rep["masked"] == 0
    assert rep["by_rule"]["email"] == {"unmasked": 1, "masked": 0}
    assert rep["by_rule"]["header"]["unmasked"] == 1 and rep["by_rule"]["ipv4"]["unmasked"] == 1
    locs = {(f["rule"], f["location"]) for f in rep["findings"]}
    assert ("field", "request.json:$.password") in locs
    assert ("header", "request.header:Authorization") in locs
    assert all(
        set(f) == {"rule", "location", "endpoint", "masked", "count"} for f in rep["findings"]
    )
    for s in SECRETS:
        assert s not in r.stdout


def test_masked_file_is_clean(tmp_path: Path) -> None:
    st = MaskStage(MaskConfig(), b"k")
    f = _write(tmp_path / "masked.gor", [st.mask_exchange(e) for e in _dirty()])
    r = _run("--json", f)
    assert r.returncode == 0, r.stdout
    rep = json.loads(r.stdout)
    assert rep["clean"] and rep["unmasked"] == 0 and rep["masked"] >= 3
    assert "result: clean" in _run(f).stdout


def test_mask_config_selects_rules(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.gor", _dirty())
    cfg = tmp_path / "m.toml"
    cfg.write_text("[mask]\ndetectors = []\ndefault_fields = false\ndefault_headers = false\n")
    r = _run("--mask-config", str(cfg), f)
    assert r.returncode == 0, r.stdout


def test_input_errors_exit_2_one_line(tmp_path: Path) -> None:
    r = _run(str(tmp_path / "missing.gor"))
    assert r.returncode == 2 and r.stderr.startswith("replaygate: error:")
    assert len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "x.unknown"
    bad.write_text("x")
    r = _run(str(bad))
    assert r.returncode == 2 and "unknown file extension" in r.stderr
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[mask]\naction = 'explode'\n")
    r = _run("--mask-config", str(cfg), str(bad))
    assert r.returncode == 2 and "[mask] action" in r.stderr
    assert _run().returncode == 2


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", "GET /"),
        ("/users/42/orders?x=1", "GET /users/{id}/orders"),
        ("/u/alice@corp.io/x", "GET /u/{value}/x"),
        ("/t/9f8e7d6c-1111-2222-3333-444455556666", "GET /t/{id}"),
        ("/static/app.v2.js", "GET /static/app.v2.js"),
    ],
)
def test_endpoint_template(target: str, expected: str) -> None:
    assert endpoint_of(make_exchange("GET", target)) == expected


def test_corpus_capture_has_findings_and_masked_copy_is_clean(corpus: Path, tmp_path: Path) -> None:
    src = corpus / "ecommerce-workshop" / "requests_0.gor"
    r = _run("--json", str(src))
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["exchanges"] == 101 and rep["by_rule"]["cookie"]["unmasked"] > 100
    from replaygate.formats import open_reader

    st = MaskStage(MaskConfig(), b"k")
    out = _write(tmp_path / "m.gor", [st.mask_exchange(e) for e in open_reader(src)])
    r = _run("--json", out)
    assert r.returncode == 0 and json.loads(r.stdout)["unmasked"] == 0


@pytest.mark.parametrize("ext", [".gor", ".gor.gz", ".gor.zst", ".jsonl", ".har", ".pcap"])
def test_a_cut_input_is_scanned_then_reported_counted_exit_2(tmp_path: Path, ext: str) -> None:
    """#12: a truncated input is scanned up to the cut, then reported with its offset, counted
    (``dropped``), and the exit status is 2, as with every other reader."""
    import gzip

    import zstandard

    from replaygate.protocol.pcapfile import PcapWriter
    from replaygate.testing.frames import synth_flow

    exs = [ex for _ in range(20) for ex in _dirty()]
    if ext == ".pcap":
        full = tmp_path / "all.pcap"
        with PcapWriter(full) as w:
            w.write_many(synth_flow([(e.request.raw, e.response.raw) for e in exs if e.response]))
        data = full.read_bytes()
    else:
        plain = ".gor" if ext in (".gor.gz", ".gor.zst") else ext
        data = Path(_write(tmp_path / f"all{plain}", exs)).read_bytes()
        if ext == ".gor.gz":
            data = gzip.compress(data)
        elif ext == ".gor.zst":
            data = zstandard.ZstdCompressor().compress(data)
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = _run("--json", str(cut))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"replaygate: error: {cut} (offset "), r.stderr
    rep = json.loads(r.stdout)
    assert (
        rep["dropped"].get("truncated_record", 0) + rep["dropped"].get("pcap.truncated_record", 0)
        == 1
    )
    [c] = rep["cut_inputs"]
    assert c["file"] == str(cut) and isinstance(c["offset"], int) and c["reason"]
    if not ext.endswith(".zst"):  # zstd emits whole blocks only: a 2/3 cut may hold none
        assert rep["exchanges"] > 0 and rep["unmasked"] > 0


def test_a_cut_input_is_named_in_the_text_report(tmp_path: Path) -> None:
    data = Path(_write(tmp_path / "all.gor", _dirty() * 10)).read_bytes()
    cut = tmp_path / "cut.gor"
    cut.write_bytes(data[: len(data) // 2 + 7])  # inside a record
    r = _run(str(cut))
    assert r.returncode == 2 and f"cut input: {cut} (offset " in r.stdout, (r.stdout, r.stderr)
