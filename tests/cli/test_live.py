"""The live commands' shared pieces (cli/_live.py)."""

from __future__ import annotations

import pytest


def test_stats_line_interval_is_measured_on_the_clock(capsys: pytest.CaptureFixture[str]) -> None:
    """``--stats 30s`` prints a line once 30 s have passed on its clock (a fake one)."""
    from replaygate.cli._live import StatsLine
    from replaygate.testing import FakeClock

    clock = FakeClock()
    line = StatsLine(30.0, "proxy", clock)
    line({"exchanges": 1})
    clock.advance(29.9)
    line({"exchanges": 2})
    assert capsys.readouterr().err == ""
    clock.advance(0.1)
    line({"exchanges": 3})
    line({"exchanges": 4})
    err = capsys.readouterr().err
    assert err.count("replaygate: proxy:") == 1 and "3" in err
