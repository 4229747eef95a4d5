from __future__ import annotations

from xml.etree import ElementTree as ET

from replaygate.report import render_junit

from ._summary import make_summary, replay_facts


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


def test_control_characters_and_names_survive() -> None:
    s = make_summary()
    s["endpoints"][0]["endpoint"] = "GET /a\x01|b<c>"
    s["endpoints"][0]["reasons"] = ["bad \x00 byte & <tag>"]
    root = ET.fromstring(render_junit(s))
    names = [c.get("name") for c in root.iter("testcase")]
    assert "GET /a\ufffd|b<c>" in names


def test_unjudged_endpoints_are_skipped_with_the_reason() -> None:
    s = make_summary(failing=False)
    e = s["endpoints"][0]
    e.update(verdict="unjudged", unjudged=8, unjudged_reason="the baseline copy disagrees")
    s["totals"]["unjudged"] = 8
    root = ET.fromstring(render_junit(s))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("skipped") == "1"
    case = next(c for c in suite.findall("testcase") if c.get("name") == e["endpoint"])
    sk = case.find("skipped")
    assert sk is not None and "cannot judge 8 requests" in (sk.get("message") or "")
    assert "8 unjudged" in render_junit(s)


def test_replay_order_is_a_property_and_in_the_gate_output() -> None:
    facts = replay_facts("recorded", 45)
    root = ET.fromstring(render_junit(make_summary(replay=facts)))
    suite = root.find("testsuite")
    assert suite is not None
    children = list(suite)
    assert children[0].tag == "properties"  # before the test cases, as the schema wants
    props = {p.get("name"): p.get("value") for p in children[0].iter("property")}
    assert props["replay.order"] == "recorded" and props["replay.order_waited"] == "45"
    assert props["replay.order_wait_p99_ms"] == str(facts["order_wait_p99_ms"])
    gate = next(c for c in suite.findall("testcase") if c.get("name") == "replaygate gate")
    out = gate.findtext("system-out") or ""
    assert "Replay order: recorded" in out and "45 requests waited" in out
    assert ET.fromstring(render_junit(make_summary())).find("testsuite/properties") is None


def test_replay_http2_events_are_properties_and_in_the_gate_output() -> None:
    facts = replay_facts("none", 0, {"goaway": 1, "refused_stream": 2})
    suite = ET.fromstring(render_junit(make_summary(replay=facts))).find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["replay.http2.goaway"] == "1" and props["replay.http2.refused_stream"] == "2"
    assert props["replay.order"] == "none"
    gate = next(c for c in suite.findall("testcase") if c.get("name") == "replaygate gate")
    assert "Replay HTTP/2 events: goaway=1, refused_stream=2." in (
        gate.findtext("system-out") or ""
    )
