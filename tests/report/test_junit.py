from __future__ import annotations

from xml.etree import ElementTree as ET

from replaygate.report import render_junit

from ._summary import make_summary


def test_one_testcase_per_endpoint() -> None:
    s = make_summary()
    root = ET.fromstring(render_junit(s))
    suite = root.find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"replaygate gate", "GET /items/{int}", "GET /health"}
    assert cases["GET /items/{int}"].find("failure") is not None
    assert cases["GET /health"].find("failure") is None
    assert cases["replaygate gate"].find("failure") is not None  # overall diff rate
    assert suite.get("failures") == "2" and suite.get("tests") == "3"


def test_passing_has_no_failures() -> None:
    root = ET.fromstring(render_junit(make_summary(failing=False)))
    assert root.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]
