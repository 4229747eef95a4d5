"""The run-facts line the human reports share: which order the replay used and the waits."""

from __future__ import annotations

from replaygate.report._facts import http2_line, order_line

from ._summary import make_summary, replay_facts


def test_order_line_names_the_mode_and_the_waits() -> None:
    line = order_line(make_summary(replay=replay_facts("recorded", 45)))
    assert line is not None
    assert line.startswith("Replay order: recorded")
    assert "45 requests waited for their predecessors (p50 " in line
    assert ", p99 " in line and ", max " in line and " ms" in line


def test_order_line_without_waits_or_order() -> None:
    assert order_line(make_summary()) is None  # compare judged a recording: nothing known
    line = order_line(make_summary(replay=replay_facts("recorded", 0)))
    assert line == (
        "Replay order: recorded (happens-before from the recording); "
        "0 requests waited for their predecessors."
    )
    assert order_line(make_summary(replay=replay_facts("none", 0))) == (
        "Replay order: none (each request on its own schedule)."
    )


def test_order_line_reports_inversions_and_survives_odd_values() -> None:
    facts = {**replay_facts("sessions", 2), "order_inversions": 3}
    line = order_line({"replay": facts})
    assert line is not None and "3 exchanges came after one they preceded" in line
    line = order_line(
        {"replay": {"order": "recorded", "order_waited": 1, "order_wait_p50_ms": None}}
    )
    assert line is not None and "p50 –" in line
    assert order_line({"replay": {"order": 5}}) is None
    assert order_line({"replay": []}) is None


H2 = {"goaway": 1, "refused_stream": 2, "retried": 3, "rst_stream": 4}


def test_http2_line_lists_the_events_as_replay_prints_them() -> None:
    line = http2_line(make_summary(replay=replay_facts("none", 0, H2)))
    assert line == "Replay HTTP/2 events: goaway=1, refused_stream=2, retried=3, rst_stream=4."


def test_http2_line_without_events_or_with_odd_values() -> None:
    assert http2_line(make_summary()) is None  # compare judged a recording
    assert http2_line(make_summary(replay=replay_facts("none", 0))) is None  # none happened
    assert http2_line({"replay": {"order": "none"}}) is None  # a summary from before http2
    assert http2_line({"replay": {"http2": []}}) is None
    odd = {"goaway": "x", "protocol_error": True, "rst_stream": 0, "retried": 2}
    assert http2_line({"replay": {"http2": odd}}) == "Replay HTTP/2 events: retried=2."
