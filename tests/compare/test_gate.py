from __future__ import annotations

import re
from typing import Any

import pytest

from replaygate.compare import Comparator, GateConfig, judge
from replaygate.config import section
from replaygate.errors import ConfigError

from ._helpers import jex


def run(exs: list, gate: GateConfig | None = None) -> dict:
    c = Comparator()
    for e in exs:
        c.add(e)
    return judge(c.result(), gate or GateConfig()).summary()


def test_identical_passes_with_defaults() -> None:
    s = run([jex(f"/u/{i}", {"i": i}, {"i": i}) for i in range(30)])
    assert s["verdict"] == "pass" and s["reasons"] == []
    e = s["endpoints"][0]
    assert e["endpoint"] == "GET /u/{int}" and e["requests"] == 30 and e["diff_rate"] == 0
    assert e["latency_ms"]["original"]["count"] == 30 and e["latency_ms"]["replayed"]["p99"] > 0
    assert set(e) >= {
        "endpoint",
        "verdict",
        "requests",
        "diff_rate",
        "noise_fields",
        "latency_ms",
        "reasons",
    }


def test_nothing_replayed_fails() -> None:
    s = run([jex("/a", {"a": 1}, None)])
    assert s["verdict"] == "fail" and "only 0 exchanges were replayed" in s["reasons"][0]


def test_new_5xx_and_errors() -> None:
    exs = [jex(f"/o/{i}", {"ok": 1}, {"ok": 1}) for i in range(50)]
    exs.append(jex("/o/999", {"ok": 1}, {"err": "boom"}, rstatus=500))
    s = run(exs)
    assert s["verdict"] == "fail"
    assert any("1 new 5xx of 51 requests" in r for r in s["reasons"])
    assert s["status_matrix"] == {"2xx>2xx": 50, "2xx>5xx": 1}
    exs = [jex(f"/o/{i}", {"ok": 1}, {"ok": 1}) for i in range(50)]
    exs += [jex("/o/1", {"ok": 1}, None, error="timeout after 30s") for _ in range(2)]
    s = run(exs)
    assert any("2 replay errors of 52" in r and "timeout (2)" in r for r in s["reasons"])
    assert s["endpoints"][0]["errors"] == {"timeout": 2}
    assert run(exs, GateConfig(max_error_rate="5%"))["verdict"] == "pass"


def test_new_5xx_net_of_baseline() -> None:
    exs = []
    for i in range(20):
        bad = i % 10 == 0
        exs.append(jex(f"/f/{i}", {"ok": 1}, {"ok": 1}, rstatus=503 if bad else 200))
        exs.append(
            jex(f"/f/{i}", {"ok": 1}, {"ok": 1}, rstatus=503 if bad else 200, role="baseline")
        )
    s = run(exs)
    assert not any("new 5xx" in r for r in s["reasons"])


def test_latency_regression_needs_ratio_delta_and_samples() -> None:
    slow = [jex(f"/s/{i}", {"a": 1}, {"a": 1}, latency_ms=10, rlatency_ms=100) for i in range(30)]
    s = run(slow)
    assert any(
        re.search(r"p90 10\d\.\d ms vs 10\.0 ms original .*p90 as under 100 samples", r)
        for r in s["reasons"]
    )
    assert s["endpoints"][0]["latency_ms"]["regressed"] is True
    assert run(slow[:5])["verdict"] == "pass"  # too few samples
    assert run(slow, GateConfig(min_p99_delta_ms=500))["verdict"] == "pass"
    # with a baseline copy, latency is judged against it (same place, same time)
    exs = list(slow) + [
        jex(f"/s/{i}", {"a": 1}, {"a": 1}, rlatency_ms=95, role="baseline") for i in range(30)
    ]
    s = run(exs)
    assert s["verdict"] == "pass" and s["endpoints"][0]["latency_ms"]["reference"] == "baseline"


def test_overall_and_per_endpoint_rates_and_ignore() -> None:
    exs = [jex(f"/ok/{i}", {"a": 1}, {"a": 1}) for i in range(97)]
    exs += [jex(f"/bad/{i}", {"a": 1}, {"a": 2}) for i in range(3)]
    s = run(exs)
    assert s["verdict"] == "fail"
    assert s["reasons"][0].startswith("overall: 3% of 100 compared requests differ")
    assert any(r.startswith("GET /bad/{int}: 100% of 3 requests differ") for r in s["reasons"])
    s = run(exs, GateConfig(ignore_endpoints=["GET /bad/*"]))
    assert s["verdict"] == "pass"


def test_config_section_errors() -> None:
    g = section(GateConfig, {"max_diff_rate": "2%", "max-p99-ratio": 2}, name="gate")
    assert g.max_diff_rate == 0.02 and g.max_p99_ratio == 2
    with pytest.raises(ConfigError, match=r"\[gate\] unknown field 'max_dif'"):
        section(GateConfig, {"max_dif": 1}, name="gate")
    with pytest.raises(ConfigError, match="max_diff_rate"):
        GateConfig(max_diff_rate="lots")
    with pytest.raises(ConfigError, match="latency_min_samples"):
        GateConfig(latency_min_samples=-1)


def test_unhealthy_baseline_fails_instead_of_cancelling_everything() -> None:
    exs = []
    for i in range(20):
        exs.append(jex(f"/b/{i}", {"a": 1}, {"err": 1}, rstatus=500))  # candidate broken
        exs.append(
            jex(f"/b/{i}", {"a": 1}, {"err": 1}, rstatus=500, role="baseline")
        )  # so is the copy
    s = run(exs)
    assert s["verdict"] == "fail"
    assert s["reasons"][0].startswith(
        "the baseline copy itself changed the status class of 20 of 20"
    )


def test_per_endpoint_broken_baseline_is_unjudged() -> None:
    """#11: a form POST answered 302 in production and 403 on both copies is no pass, even
    when it is a small share of the traffic (the whole-run guard does not see it)."""
    exs = []
    for i in range(200):
        exs.append(jex(f"/ok/{i}", {"a": 1}, {"a": 1}))
        exs.append(jex(f"/ok/{i}", {"a": 1}, {"a": 1}, role="baseline"))
    for _ in range(8):
        kw = {"method": "POST", "status": 302, "rstatus": 403}
        exs.append(jex("/login", {"to": "/home"}, {"error": "csrf"}, **kw))  # type: ignore[arg-type]
        exs.append(jex("/login", {"to": "/home"}, {"error": "csrf"}, role="baseline", **kw))  # type: ignore[arg-type]
    s = run(exs)
    assert not any("the baseline copy itself" in r for r in s["reasons"])  # 8 of 208: under 5%
    e = next(x for x in s["endpoints"] if x["endpoint"] == "POST /login")
    assert e["verdict"] == "unjudged" and e["unjudged"] == 8
    assert "3xx>4xx on 8 of 8 baseline replays" in e["unjudged_reason"]
    assert s["unjudged"] == 8 and s["totals"]["unjudged_endpoints"] == 1
    # 8 of 208 replayed requests (3.8%) is under max_unjudged_rate 5%: shown, not failed
    assert s["verdict"] == "pass"
    s = run(exs, GateConfig(max_unjudged_rate=0))
    assert s["verdict"] == "fail" and s["reasons"][0].startswith("cannot judge 8 of 208")
    # a candidate that answers like the original on that endpoint is judged as usual
    exs = [x for x in exs if not (x.request.target == "/login" and "role" not in x.meta)]
    exs += [
        jex("/login", {"to": "/home"}, {"to": "/home"}, method="POST", status=302, rstatus=302)
        for _ in range(8)
    ]
    s = run(exs, GateConfig(max_unjudged_rate=0))
    assert s["unjudged"] == 0 and s["verdict"] == "pass"


def _request_only(target: str, rstatus: int | None, recorded: int | None = None, **kw: Any) -> Any:
    ex = jex(target, {"a": 1}, {"a": 1}, rstatus=rstatus or 200, **kw)
    ex.response = None
    if rstatus is None:
        ex.replayed = None
        ex.replay_error = "connect_refused: [Errno 111] Connection refused"
    if recorded is not None:
        ex.meta["status"] = str(recorded)  # what formats/accesslog.py keeps
    return ex


def test_request_only_recording_is_judged_on_what_can_be_judged() -> None:
    """#11: GoReplay's default capture (requests only) replayed fine: 300 replayed, all 200,
    passes (it said "only 0 exchanges were replayed" and failed), and says what could not be
    compared."""
    s = run([_request_only(f"/p/{i}", 200) for i in range(300)])
    assert s["verdict"] == "pass", s["reasons"]
    assert s["totals"]["replayed"] == 300 and s["totals"]["status_only"] == 300
    assert "bodies and headers could not be compared" in s["limitations"][0]
    # 5xx and replay errors still fail
    s = run([_request_only(f"/p/{i}", 500 if i < 5 else 200) for i in range(300)])
    assert s["verdict"] == "fail" and any("5 new 5xx of 300" in r for r in s["reasons"])
    exs = [_request_only(f"/p/{i}", 200) for i in range(300)] + [_request_only("/p/1", None)] * 9
    s = run(exs)
    assert any("9 replay errors of 309" in r for r in s["reasons"])
    # access logs keep the status: the status mix is compared with it
    exs = [_request_only(f"/p/{i}", 404 if i % 3 == 0 else 200, recorded=200) for i in range(300)]
    s = run(exs)
    assert s["verdict"] == "fail" and s["status_matrix"] == {"2xx>2xx": 200, "2xx>4xx": 100}
    assert any("status changed (100)" in r for r in s["reasons"])
    s = run([_request_only(f"/p/{i}", 200, recorded=200) for i in range(300)])
    assert s["verdict"] == "pass"
    # latency thresholds, if configured, judge what cannot be compared
    slow = [_request_only(f"/p/{i}", 200, rlatency_ms=900) for i in range(50)]
    assert run(slow)["verdict"] == "pass"
    s = run(slow, GateConfig(max_p99_ms=500))
    assert s["verdict"] == "fail" and any("max_p99_ms 500" in r for r in s["reasons"])


def test_exit_codes_of_the_verdict() -> None:
    c = Comparator()
    v = judge(c.result(), GateConfig())
    assert v.exit_code == 2 and "no exchanges to judge" in (v.job_error or "")
    c.add(jex("/a", {"a": 1}, None))  # never replayed
    v = judge(c.result(), GateConfig())
    assert v.exit_code == 2 and "none of 1 requests was replayed" in (v.job_error or "")
    assert v.summary()["job_error"] == v.job_error
    c = Comparator()
    for i in range(3):
        c.add(_request_only(f"/u/{i}", None))  # target refused every request
    v = judge(c.result(), GateConfig())
    assert v.exit_code == 2 and "unreachable for every one of 3" in (v.job_error or "")
    c = Comparator()
    c.add(jex("/a", {"a": 1}, {"a": 2}))
    assert judge(c.result(), GateConfig()).exit_code == 1
    c = Comparator()
    c.add(jex("/a", {"a": 1}, {"a": 1}))
    assert judge(c.result(), GateConfig()).exit_code == 0
