"""Sampling: consistent by key (GoReplay's FNV-1a limiter) and random."""

from __future__ import annotations

import pytest

from replaygate.errors import ConfigError
from replaygate.model import ConnectionId
from replaygate.stages.sample import RandomSampleStage, SampleStage, fnv1a_32, sample_key
from replaygate.testing import make_exchange


def test_fnv1a_matches_go() -> None:
    # reference values of Go's hash/fnv New32a
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


def _user(i: int):
    return make_exchange("GET", f"/x?uid=u{i}", request_headers=[("X-User", f"user-{i}")])


@pytest.mark.parametrize("by", ["header:X-User", "query:uid"])
def test_consistent_sampling_is_stable_and_close_to_percentage(by: str) -> None:
    keys = range(10_000)
    first = {i for i in keys if list(SampleStage("25%", by).process(_user(i)))}
    stage = SampleStage("25%", by)  # a new run: same keys kept
    second = {i for i in keys if list(stage.process(_user(i)))}
    assert first == second
    assert 0.23 <= len(first) / 10_000 <= 0.27


def test_same_user_always_same_decision() -> None:
    stage = SampleStage("10%", "header:X-User")
    for i in range(200):
        decisions = {bool(list(stage.process(_user(i)))) for _ in range(3)}
        assert len(decisions) == 1


def test_goreplay_equivalence_whole_percent() -> None:
    stage = SampleStage("30%", "header:X-User")
    for i in range(500):
        value = f"user-{i}".encode()
        assert bool(list(stage.process(_user(i)))) == (fnv1a_32(value) % 100 < 30)


def test_fractional_percent() -> None:
    stage = SampleStage("12.5%", "header:X-User")
    kept = sum(bool(list(stage.process(_user(i)))) for i in range(10_000))
    assert 0.11 <= kept / 10_000 <= 0.14


def test_boundaries() -> None:
    assert all(list(SampleStage("100%", "header:X-User").process(_user(i))) for i in range(100))
    assert not any(list(SampleStage("0%", "header:X-User").process(_user(i))) for i in range(100))


def test_missing_key_is_kept_and_counted() -> None:
    stage = SampleStage("1%", "header:X-User")
    ex = make_exchange("GET", "/")
    assert list(stage.process(ex)) == [ex]
    assert stage.counters.notes["sample.no_key"] == 1


def test_keys() -> None:
    ex = make_exchange(
        "GET",
        "/p?a=1&uid=42&uid=43",
        request_headers=[("Cookie", "x=1; sid=abc"), ("Cookie", "sid2=z")],
        conn=ConnectionId("10.0.0.9", 4000, "10.0.0.1", 80),
    )
    assert sample_key(ex, "query", "uid") == "42"
    assert sample_key(ex, "cookie", "sid") == "abc"
    assert sample_key(ex, "cookie", "sid2") == "z"
    assert sample_key(ex, "cookie", "nope") is None
    assert sample_key(ex, "session", "") == "10.0.0.9:4000"
    ex.session = "s-1"
    assert sample_key(ex, "session", "") == "s-1"
    bare = make_exchange("GET", "/", id="abc")  # no session, no connection (e.g. HAR)
    assert sample_key(bare, "session", "") == "abc"


def test_session_sampling_keeps_whole_sessions() -> None:
    stage = SampleStage("50%")
    for s in range(100):
        exs = [make_exchange("GET", f"/{i}", session=f"sess-{s}") for i in range(5)]
        kept = [bool(list(stage.process(e))) for e in exs]
        assert len(set(kept)) == 1


@pytest.mark.parametrize(
    ("pct", "by", "message"),
    [
        ("abc", None, "--sample: cannot read"),
        ("150%", None, "--sample: '150%' is not between"),
        ("10%", "body:x", "--sample-by: expected"),
        ("10%", "header:", "--sample-by: expected"),
        ("10%", "session:x", "--sample-by: expected"),
    ],
)
def test_bad_values(pct: str, by: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SampleStage(pct, by)


def test_random_sampling() -> None:
    stage = RandomSampleStage("10%", seed=7)
    kept = sum(bool(list(stage.process(make_exchange()))) for _ in range(10_000))
    assert 800 <= kept <= 1200
    with pytest.raises(ConfigError, match="--sample-random"):
        RandomSampleStage("x")
