from __future__ import annotations

import json
from pathlib import Path

import pytest

from replaygate.errors import InputError
from replaygate.report import render_json, write_reports

from ._summary import make_summary


def test_json_roundtrip_and_write(tmp_path: Path) -> None:
    s = make_summary()
    assert json.loads(render_json(s))["verdict"] == "fail"
    paths = write_reports(s, json_path=tmp_path / "s.json")
    assert paths == [str(tmp_path / "s.json")]
    back = json.loads((tmp_path / "s.json").read_text())
    assert (
        back["reasons"] == s["reasons"] and back["endpoints"][0]["endpoint"] == "GET /items/{int}"
    )
    with pytest.raises(InputError, match="directory does not exist"):
        write_reports(s, json_path=tmp_path / "nope" / "s.json")


def test_a_full_disk_leaves_no_tmp_file_behind(full_disk: Path) -> None:
    from replaygate.errors import OutputError

    s = make_summary()
    with pytest.raises(OutputError, match="cannot write report: No space left on device"):
        write_reports(s, json_path=full_disk / "report.json")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]
