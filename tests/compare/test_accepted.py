from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from replaygate.compare import AcceptedDiffs, Comparator, GateConfig, judge
from replaygate.compare.accepted import format_entries
from replaygate.errors import ConfigError, InputError

from ._helpers import jex

TODAY = dt.date(2026, 12, 1)


def result():
    c = Comparator()
    for i in range(10):
        c.add(jex(f"/u/{i}", {"email": "a@x", "n": 1}, {"email": "***", "n": 1}, rstatus=200))
    c.add(jex("/u/99", {"n": 1}, {"n": 1}, rstatus=500))
    return c.result()


def test_accepted_passes_expired_fails(tmp_path: Path) -> None:
    assert judge(result(), GateConfig()).verdict == "fail"
    f = tmp_path / "accepted.toml"
    f.write_text(
        '[[accepted]]\nendpoint = "GET /u/*"\nfield = "$.email"\nreason = "masked in staging"\n'
        'who = "alice"\nexpires = 2027-01-31\n\n'
        '[[accepted]]\nendpoint = "GET /u/{int}"\nstatus = "2xx>5xx"\nreason = "known flake"\n'
        'who = "bob"\nexpires = "2027-01-31"\n'
    )
    acc = AcceptedDiffs.load(f, today=TODAY)
    v = judge(result(), GateConfig(), acc)
    s = v.summary()
    assert v.verdict == "pass", s["reasons"]
    fld = s["endpoints"][0]["fields"]
    assert [x["status"] for x in fld if x["field"] == "body:$.email"] == ["accepted"]
    assert s["accepted"][0]["used"] == 10 and s["accepted"][1]["used"] >= 1
    later = AcceptedDiffs.load(f, today=dt.date(2027, 2, 1))
    s = judge(result(), GateConfig(), later).summary()
    assert s["verdict"] == "fail"
    assert any("accepted difference expired on 2027-01-31" in r for r in s["reasons"])
    assert all(a["expired"] for a in s["accepted"])


def test_roundtrip_and_json(tmp_path: Path) -> None:
    acc = AcceptedDiffs.from_data(
        [
            {
                "endpoint": 'GET /a "q"',
                "field": "header:X-A",
                "reason": "r\nx",
                "who": "w",
                "expires": "2027-01-01",
                "kind": "changed",
            },
            {"endpoint": "*", "latency": True, "reason": "r", "who": "w", "expires": "2027-01-01"},
        ]
    )
    p = tmp_path / "a.toml"
    p.write_text(format_entries(acc.entries))
    back = AcceptedDiffs.load(p)
    assert [(e.endpoint, e.field, e.kind, e.latency, e.reason) for e in back.entries] == [
        ('GET /a "q"', "header:x-a", "changed", False, "r\nx"),
        ("*", None, None, True, "r"),
    ]
    j = tmp_path / "a.json"
    j.write_text(
        '{"accepted": [{"endpoint": "*", "status": "200->500", "reason": "r", "who": "w", "expires": "2027-01-01"}]}'
    )
    assert AcceptedDiffs.load(j).entries[0].status == "200>500"


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("[[accepted]]\nendpoint='x'\n", "missing 'reason'"),
        (
            "[[accepted]]\nendpoint='x'\nreason='r'\nwho='w'\nexpires='soon'\nfield='a'\n",
            "expires must be a date",
        ),
        (
            "[[accepted]]\nendpoint='x'\nreason='r'\nwho='w'\nexpires=2027-01-01\n",
            "needs one of field",
        ),
        (
            "[[accepted]]\nendpoint='x'\nreason='r'\nwho='w'\nexpires=2027-01-01\nfield='a'\ncolour=1\n",
            "unknown field",
        ),
        ("not toml [", "cannot parse"),
        ("accepted = 3", "expected a list"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, msg: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        AcceptedDiffs.load(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        AcceptedDiffs.load(tmp_path / "nope.toml")
