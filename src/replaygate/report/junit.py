"""JUnit XML: one test case per endpoint, a failure per failing endpoint, so CI systems show
which endpoints broke. Gate-wide reasons (overall diff rate, too few replays) are one more
test case named ``replaygate gate``."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from ._facts import http2_line, order_line

__all__ = ["render_junit"]


def _clean(s: str) -> str:
    # XML 1.0 cannot hold most control characters
    return "".join(c if c in "\t\n\r" or ord(c) >= 0x20 else "\ufffd" for c in s)


def _flat(facts: dict[Any, Any], prefix: str) -> list[tuple[str, str | int | float]]:
    """The scalar facts as (dotted name, value), sorted; a dict one level down (``http2``)
    gives ``prefix.key.name``."""
    out: list[tuple[str, str | int | float]] = []
    for k, v in facts.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, str | int | float):
            out.append((f"{prefix}.{k}", v))
        elif isinstance(v, dict):
            out.extend(
                (f"{prefix}.{k}.{name}", n)
                for name, n in v.items()
                if isinstance(n, str | int | float) and not isinstance(n, bool)
            )
    return sorted(out, key=lambda kv: kv[0])


def render_junit(summary: dict[str, Any]) -> str:
    eps = summary.get("endpoints", [])
    judged = [e for e in eps if e.get("judged", True)]
    failures = sum(1 for e in judged if e["verdict"] == "fail")
    ep_reasons = {f"{e['endpoint']}: {r}" for e in eps for r in e.get("reasons", [])}
    gate_reasons = [r for r in summary.get("reasons", []) if r not in ep_reasons]
    suites = ET.Element("testsuites", name="replaygate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="replaygate",
        tests=str(len(eps) + 1),
        failures=str(failures + (1 if gate_reasons else 0)),
        errors="0",
        skipped=str(
            len(eps)
            - len(judged)
            + sum(1 for e in judged if e.get("unjudged") and e["verdict"] != "fail")
        ),
    )
    rep = summary.get("replay")
    if isinstance(rep, dict) and rep:
        # how the replay ran (order used, waits, HTTP/2 events as replay.http2.NAME):
        # properties come before the test cases
        props = ET.SubElement(suite, "properties")
        for k, v in _flat(rep, "replay"):
            ET.SubElement(props, "property", name=k, value=_clean(str(v)))
    gate = ET.SubElement(suite, "testcase", classname="replaygate", name="replaygate gate")
    totals = summary.get("totals", {})
    if gate_reasons:
        f = ET.SubElement(gate, "failure", message=_clean(gate_reasons[0]), type="gate")
        f.text = _clean("\n".join(gate_reasons))
    ET.SubElement(gate, "system-out").text = _clean(
        f"verdict {summary.get('verdict')}: {totals.get('compared', 0)} compared, "
        f"{totals.get('differing', 0)} differing, {totals.get('unjudged', 0)} unjudged"
        + "".join(f"\nnot compared: {x}" for x in summary.get("limitations") or [])
        + "".join(f"\n{fact}" for fact in (order_line(summary), http2_line(summary)) if fact)
    )
    for e in eps:
        lat = e.get("latency_ms", {})
        rep = lat.get("replayed", {})
        tc = ET.SubElement(
            suite,
            "testcase",
            classname="replaygate.endpoints",
            name=_clean(e["endpoint"]),
            time=f"{(rep.get('mean') or 0) / 1000 * max(rep.get('count') or 0, 0):.3f}",
        )
        if not e.get("judged", True):
            ET.SubElement(tc, "skipped", message="ignored by [gate] ignore_endpoints")
        elif e["verdict"] == "fail":
            f = ET.SubElement(tc, "failure", message=_clean(e["reasons"][0]), type="regression")
            f.text = _clean("\n".join(e["reasons"]))
        elif e.get("unjudged"):
            why = e.get("unjudged_reason") or "the baseline copy disagrees with the original"
            ET.SubElement(
                tc, "skipped", message=_clean(f"cannot judge {e['unjudged']} requests: {why}")
            )
        out = [
            f"requests {e['requests']}, compared {e['compared']}, differing {e['differing']} "
            f"({e['diff_rate']:.2%})",
        ]
        for fld in e.get("fields", []):
            if fld["status"] != "noise" and fld["count"]:
                out.append(f"{fld['status']}: {fld['field']} {fld['kind']} ({fld['count']})")
        for fld in e.get("noise_fields", []):
            out.append(f"noise: {fld['field']} {fld['kind']}: {fld['reason']}")
        ET.SubElement(tc, "system-out").text = _clean("\n".join(out))
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
