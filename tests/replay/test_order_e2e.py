"""End to end: a stateful app recorded through ``replaygate proxy``, replayed at ``--max`` to
fresh copies, repeatedly, with zero status differences (happens-before order + correlation).

The app (replaygate.testing.stateful) has accounts, server-made ids, a login cookie, users
interleaved on connections the server closes every 3 answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.formats import open_reader
from replaygate.testing.stateful import (
    StatefulApp,
    drive_users,
    record_through_proxy,
    status_differences,
)

RUNS = 5


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("order") / "rec.gor")
    with StatefulApp() as app:
        record_through_proxy(app.url, out, lambda url: drive_users(url, users=6, items=4))
    return out


def test_recording_spans_reconnects_and_users(recording: str) -> None:
    exs = list(open_reader(recording))
    assert len(exs) == 6 * (3 + 4 * 2 + 4 * 2 + 2)
    assert len({e.conn for e in exs}) > 6  # each user reconnected
    statuses = {e.response.status for e in exs if e.response is not None}
    assert {200, 201, 204, 404} <= statuses


def _replay(recording: str, target: str, out: Path, *flags: str) -> list[str]:
    r = CliRunner().invoke(
        cli, ["replay", recording, "--target", target, "--max", "-o", str(out), *flags]
    )
    assert r.exit_code == 0, r.output
    return status_differences(str(out))


def test_replay_to_fresh_copies_has_no_status_difference(recording: str, tmp_path: Path) -> None:
    for i in range(RUNS):
        with StatefulApp() as fresh:
            diffs = _replay(recording, fresh.url, tmp_path / f"out{i}.jsonl")
        assert diffs == [], f"run {i + 1}/{RUNS}: {len(diffs)} differences: {diffs[:5]}"


def test_order_sessions_also_replays_cleanly(recording: str, tmp_path: Path) -> None:
    with StatefulApp() as fresh:
        diffs = _replay(recording, fresh.url, tmp_path / "out.jsonl", "--order", "sessions")
    assert diffs == []


def test_summary_says_which_order_and_waits(recording: str, tmp_path: Path) -> None:
    with StatefulApp() as fresh:
        r = CliRunner().invoke(
            cli, ["replay", recording, "--target", fresh.url, "--max", "-c", "16"]
        )
    assert r.exit_code == 0, r.output
    assert "order recorded:" in r.output and "waited for their predecessors" in r.output


@pytest.mark.parametrize(
    "flags",
    [
        ["--rate", "3000"],
        ["--speed", "50"],
        ["--max", "--sessions"],
        ["--max", "--baseline", "BASELINE"],
        ["--max", "--order", "sessions", "--sessions", "-c", "4"],
    ],
    ids=["rate", "speed", "sessions", "baseline", "order-sessions-c4"],
)
def test_every_timing_mode_and_worker_path(
    recording: str, tmp_path: Path, flags: list[str]
) -> None:
    out = tmp_path / "out.jsonl"
    with StatefulApp() as fresh, StatefulApp() as base:
        args = [base.url if f == "BASELINE" else f for f in flags]
        r = CliRunner().invoke(
            cli, ["replay", recording, "--target", fresh.url, "-o", str(out), *args]
        )
        assert r.exit_code == 0, r.output
    assert status_differences(str(out)) == []


def test_coroutine_workers(recording: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from replaygate.replay.engine import Engine

    monkeypatch.setattr(Engine, "fast_lanes", False)
    with StatefulApp() as fresh:
        assert _replay(recording, fresh.url, tmp_path / "out.jsonl") == []


def test_live_replayer_keeps_the_order(recording: str) -> None:
    """The feed of shadow and NATS workers: exchanges pushed one by one from a thread."""
    from replaygate.replay import LiveReplayer, ReplayConfig
    from replaygate.replay.correlation import CorrelationHook
    from replaygate.testing import MemorySink

    sink = MemorySink()
    with StatefulApp() as fresh:
        rp = LiveReplayer(
            ReplayConfig(targets=[fresh.url], max_speed=True), sink=sink, hooks=[CorrelationHook()]
        )
        rp.start()
        for ex in open_reader(recording):
            assert rp.submit(ex)
        st = rp.close(60)
    assert st.order == "recorded" and st.sent == len(sink.exchanges)
    bad = [
        e.request.target
        for e in sink.exchanges
        if e.replayed is None or e.response is None or e.replayed.status != e.response.status
    ]
    assert bad == []
