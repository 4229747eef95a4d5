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
