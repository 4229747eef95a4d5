from __future__ import annotations

from typing import Any

import pytest

from replaygate.compare import Comparator, CompareSink, GateConfig, judge
from replaygate.errors import FormatError
from replaygate.model import Flag
from replaygate.pipeline import run_pipeline

from ._helpers import jex


def exchanges(n: int, offset: int = 0) -> list:
    out = []
    for i in range(offset, offset + n):
        out.append(
            jex(
                f"/u/{i % 7}",
                {"i": i, "t": 0},
                {"i": i, "t": i % 3},
                rlatency_ms=5 + i % 11,
                ts_s=i / 10,
            )
        )
        out.append(
            jex(f"/u/{i % 7}", {"i": i, "t": 0}, {"i": i, "t": 0}, role="baseline", rlatency_ms=6)
        )
        if i % 13 == 0:
            out.append(
                jex(
                    f"/p/{i}",
                    {"x": 1},
                    None,
                    error="ConnectionResetError: [Errno 104] reset by peer",
                )
            )
    return out


def strip(s: dict) -> dict:
    s = dict(s)
    s.pop("generated_at")
    return s


def test_merge_and_state_are_exact() -> None:
    whole = Comparator()
    for e in exchanges(200):
        whole.add(e)
    a, b = Comparator(), Comparator()
    for e in exchanges(100):
        a.add(e)
    for e in exchanges(100, 100):
        b.add(e)
    merged = Comparator.from_state(a.to_state())
    merged.merge(Comparator.from_state(b.to_state()))
    sw = strip(judge(whole.result(), GateConfig()).summary())
    sm = strip(judge(merged.result(), GateConfig()).summary())
    # learned pairs are found within one comparator only; everything else must agree exactly
    for s in (sw, sm):
        for e in s["endpoints"]:
            for f in e["fields"]:
                f.pop("learned_count"), f.pop("learned_pairs"), f.pop("samples")
    assert sm["totals"] == sw["totals"]
    assert sm["endpoints"] == sw["endpoints"]
    assert sm["timeline"] == sw["timeline"]


def test_damaged_state() -> None:
    with pytest.raises(FormatError, match="damaged"):
        Comparator.from_state(b"{not json")
    with pytest.raises(FormatError, match="version"):
        Comparator.from_state(b'{"v": 99}')


def test_skips_are_counted_and_sink() -> None:
    bad = jex("/t", {"a": 1}, {"a": 2})
    bad.flags.add(Flag.RESPONSE_TRUNCATED)
    nores = jex("/t", {"a": 1}, {"a": 1})
    nores.response = None
    sink = CompareSink()
    run_pipeline([bad, nores, jex("/t", {"a": 1}, {"a": 1})], [], sink)
    assert sink.closed
    e = judge(sink.comparator.result(), GateConfig()).summary()["endpoints"][0]
    # #11: a replayed request without an original response is judged on what can be judged
    # (status, 5xx, errors, latency), not skipped
    assert e["skipped"] == {"original incomplete (response_truncated)": 1}
    assert e["compared"] == 2 and e["requests"] == 3 and e["verdict"] == "pass"
    totals = judge(sink.comparator.result(), GateConfig()).summary()["totals"]
    assert totals["not_compared"] == e["skipped"]


def test_samples_bounded_with_both_responses() -> None:
    c = Comparator()
    for i in range(20):
        c.add(jex(f"/s/{i}", {"v": i}, {"v": -i - 1}))
    f = judge(c.result(), GateConfig()).summary()["endpoints"][0]["fields"][0]
    assert len(f["samples"]) == 3
    s = f["samples"][0]
    assert s["path"] == "$.v" and s["original"] == 0 and s["replayed"] == -1
    assert s["request"].startswith("GET /s/0 HTTP/1.1") and '"v": 0' in s["original_response"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["endpoints"]["GET /u/{int}"].update(status=[1, 2]),
        lambda d: d["endpoints"]["GET /u/{int}"].update(samples={"f": "x"}),
        lambda d: d["endpoints"]["GET /u/{int}"].update(diffs=[["a"]]),
        lambda d: d["endpoints"]["GET /u/{int}"].update(lat_rep="!!notbase64"),
        lambda d: d.update(learn_pairs={"x": "y"}),
        lambda d: d.update(endpoints=[]),
    ],
)
def test_wrongly_typed_state_is_a_format_error(mutate: Any) -> None:
    import orjson

    c = Comparator()
    for e in exchanges(3):
        c.add(e)
    d = orjson.loads(c.to_state())
    mutate(d)
    with pytest.raises(FormatError):
        Comparator.from_state(orjson.dumps(d))


def test_damaged_histogram_state() -> None:
    import base64

    import orjson

    c = Comparator()
    for e in exchanges(3):
        c.add(e)
    d = orjson.loads(c.to_state())
    d["endpoints"]["GET /u/{int}"]["lat_rep"] = base64.b64encode(
        b"\x1c\x84\x93\x14garbage"
    ).decode()
    with pytest.raises(FormatError):
        Comparator.from_state(orjson.dumps(d))


def test_whole_message_samples_bounded_per_endpoint() -> None:
    from replaygate.compare._comparator import MAX_FULL_SAMPLES

    c = Comparator()
    for i in range(10):
        c.add(jex(f"/w/{i}", {f"k{j}": 0 for j in range(40)}, {f"k{j}": i + 1 for j in range(40)}))
    fields = judge(c.result(), GateConfig()).summary()["endpoints"][0]["fields"]
    samples = [s for f in fields for s in f["samples"]]
    assert len(samples) == 40 * 3
    assert sum(1 for s in samples if "original_response" in s) <= MAX_FULL_SAMPLES * 40
    assert len({s["id"] for s in samples if "original_response" in s}) <= MAX_FULL_SAMPLES


def test_host_rewritten_by_the_replay_is_not_a_difference() -> None:
    from replaygate.testing import make_exchange

    c = Comparator()
    for i in range(3):
        ex = make_exchange(
            "GET",
            f"/r/{i}",
            status=302,
            response_headers=[("Location", "http://example.test/next")],
            response_body=b'{"self": "http://example.test/r"}',
            replayed_status=302,
            replayed_headers=[("Location", "http://127.0.0.1:8080/next")],
            replayed_body=b'{"self": "http://127.0.0.1:8080/r", "x": 1}',
        )
        ex.meta["target"] = "http://127.0.0.1:8080"
        c.add(ex)
    f = judge(c.result(), GateConfig()).summary()["endpoints"][0]["fields"]
    assert [(x["field"], x["kind"]) for x in f] == [("body:$.x", "extra")]


def test_field_cardinality_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import replaygate.compare._comparator as comp

    monkeypatch.setattr(comp, "MAX_FIELDS", 5)
    c = Comparator()
    c.add(jex("/m", {f"name{i}": 0 for i in range(20)}, {f"name{i}": 1 for i in range(20)}))
    fields = {f.field for e in c.result().endpoints for f in e.fields}
    assert len(fields) == 6 and "body:(other fields)" in fields
