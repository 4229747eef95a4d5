"""HTTP/2 connections of the replay client (``replay/_h2conn``) against a scripted h2 server:
flow control, GOAWAY, RST_STREAM, timeouts and size limits, each counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from replaygate.model import Exchange, Flag
from replaygate.replay import ReplayConfig, ReplayStats
from replaygate.testing import make_exchange

from ._h2replay import replay, write_gor
from ._h2servers import RawH2Server


@pytest.fixture
def server() -> Iterator[RawH2Server]:
    with RawH2Server() as s:
        yield s


def gets(path: str, n: int) -> list[Exchange]:
    return [make_exchange("GET", path, id=f"{i:040x}") for i in range(n)]


def test_request_bodies_wait_for_window_updates(server: RawH2Server) -> None:
    # the server's stream windows are 1 KiB after the first request: 256 KiB bodies need
    # a WINDOW_UPDATE every KiB, several streams at once
    first = [make_exchange("GET", "/small-window", id="0" * 40)]
    replay(first, server.url)
    body = bytes(range(256)) * 1024
    posts = [
        make_exchange("POST", "/small-window", request_body=body, id=f"{i + 1:040x}")
        for i in range(4)
    ]
    stats, out = replay(first + posts, server.url, concurrency=8, h2_streams=8)
    assert stats.errors == {} and stats.answered == 5
    for e in out[1:]:
        assert e.replayed is not None and json.loads(e.replayed.body())["len"] == len(body)


def test_goaway_sends_unprocessed_streams_again_on_a_new_connection(server: RawH2Server) -> None:
    stats, out = replay(gets("/goaway", 6), server.url, concurrency=6, h2_streams=6)
    assert stats.errors == {}, stats.errors
    assert all(e.replayed is not None and e.replayed.status == 200 for e in out)
    assert stats.http2["goaway"] >= 1 and server.connections >= 2
    assert stats.http2["retried"] == stats.retries and stats.retries >= 1
    from replaygate.cli._replay_summary import format_replay_stats

    assert any(ln.startswith("  http2 goaway=") for ln in format_replay_stats(stats))


def test_refused_stream_is_sent_again_once(server: RawH2Server) -> None:
    stats, _out = replay(gets("/refuse", 1), server.url)
    assert stats.errors == {} and stats.http2 == {"refused_stream": 1, "retried": 1}
    assert [p for _, p, _ in server.requests] == ["/refuse", "/refuse"]


def test_rst_stream_is_an_error_and_the_connection_goes_on(server: RawH2Server) -> None:
    exs = [*gets("/reset", 2), make_exchange("GET", "/ok", id="f" * 40)]
    stats, out = replay(exs, server.url, concurrency=1)
    assert stats.errors == {"stream_reset": 2} and stats.http2["rst_stream"] == 2
    assert out[-1].replayed is not None and out[-1].replayed.status == 200
    assert server.connections == 1


def test_timeout_cancels_the_stream_not_the_connection(server: RawH2Server) -> None:
    exs = [*gets("/hang", 1), make_exchange("GET", "/ok", id="f" * 40)]
    _stats, out = replay(exs, server.url, concurrency=1, response_timeout=2.0)
    assert out[0].replay_error == "timeout"
    assert out[1].replayed is not None and out[1].replayed.status == 200
    assert server.connections == 1


def test_response_limits(server: RawH2Server) -> None:
    stats, out = replay(gets("/" + "x" * 3000, 1), server.url, max_response_size=1024)
    assert out[0].replayed is not None and Flag.REPLAY_TRUNCATED in out[0].flags
    assert stats.truncated == 1
    stats, out = replay(gets("/ok", 1), server.url, max_header_size=1024)
    assert stats.errors == {}
    stats, out = replay(
        [make_exchange("GET", "/big-head", id="0" * 40)], server.url, max_header_size=1024
    )
    assert stats.errors == {"headers_too_large": 1}


def test_connect_refused_is_per_exchange() -> None:
    from replaygate.testing.servers import free_port

    stats, _out = replay(gets("/x", 3), f"http://127.0.0.1:{free_port()}")
    assert stats.errors == {"connect_refused": 3}


def test_an_http1_target_is_not_http2_and_nothing_hangs() -> None:
    from replaygate.testing.servers import NginxServer

    with NginxServer() as ng:
        stats, _out = replay(gets("/json", 3), ng.url)
    assert stats.errors == {"not_http2": 3}


def test_a_silent_target_is_a_connect_timeout() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # the handshake completes in the backlog; nobody ever answers
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        stats, _ = replay(gets("/x", 2), url, connect_timeout=0.3)
    assert stats.errors == {"connect_timeout": 2}


def test_an_answer_before_the_body_ends_frees_the_stream(server: RawH2Server) -> None:
    big = make_exchange("POST", "/early", request_body=b"x" * 300_000, id="0" * 40)
    exs = [big, *gets("/ok", 2)]
    for i, e in enumerate(exs[1:]):
        e.id = f"{i + 1:040x}"
    stats, out = replay(exs, server.url, concurrency=1)
    assert stats.errors == {} and [e.replayed.status for e in out if e.replayed] == [200] * 3
    assert (1, "reset-by-client", 1) in server.requests  # the unsent rest was cancelled


def test_stream_ids_used_up_move_to_a_new_connection(server: RawH2Server) -> None:
    """After 2^30 streams a connection has no stream id left: the next request goes out on a
    new connection (the old one is not reused). The id space is jumped to its end here."""
    import asyncio

    from replaygate.replay._config import Target
    from replaygate.replay._h2client import H2Mux
    from replaygate.replay.client import Tracker

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        stats = ReplayStats()
        cfg = ReplayConfig(targets=[server.url], connect_timeout=60.0)
        mux = H2Mux(loop, Target.parse(server.url), cfg, None, stats, Tracker())
        try:
            handle = mux.handle()
            raw = b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
            first = await handle.request(raw, False)
            assert first.status == 200, first.error
            statuses = [first.status]
            mux.conns[0].h2.highest_outbound_stream_id = 2**31 - 1
            for _ in range(2):
                statuses.append((await handle.request(raw, False)).status)
            assert stats.http2["stream_ids_used_up"] == 1 and stats.connections == 2
            return statuses
        finally:
            mux.close()

    assert asyncio.run(main()) == [200, 200, 200]
    assert [c for c, _, _ in server.requests] == [1, 2, 2]


def test_the_reports_carry_the_http2_events(server: RawH2Server, tmp_path: Path) -> None:
    """A real ``replay --http2 --report`` against a server that refuses one stream and
    resets two: the JSON report's ``replay.http2`` has the counts replay prints, and the
    Markdown, HTML and JUnit reports show them."""
    from ..cli.test_replay import run

    exs = [*gets("/refuse", 1), make_exchange("GET", "/reset", id="e" * 40)]
    rec = write_gor(tmp_path / "rec.gor", exs)
    out = tmp_path / "out"
    out.mkdir()
    code, text = run(
        str(rec), "-t", server.url, "--http2", "--max", "--allow-unsafe-target",
        "--connect-timeout", "60", "--no-progress", "--report", str(out),
    )  # fmt: skip
    assert code in (0, 1), text
    events = {"refused_stream": 1, "retried": 1, "rst_stream": 1}
    assert "  http2 refused_stream=1, retried=1, rst_stream=1" in text.splitlines()
    report = json.loads((out / "report.json").read_text())
    assert report["replay"]["http2"] == events
    assert report["replay"]["order"] == "recorded"  # the other replay facts stay
    line = "Replay HTTP/2 events: refused_stream=1, retried=1, rst_stream=1."
    assert line in (out / "report.md").read_text().splitlines()
    assert f'<div class="meta" id="run-http2">{line}</div>' in (out / "report.html").read_text()
    junit = (out / "report.xml").read_text()
    assert '<property name="replay.http2.rst_stream" value="1" />' in junit and line in junit
