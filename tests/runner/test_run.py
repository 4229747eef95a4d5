"""The library-level run: push and pull modes over files, with and without replay."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import pytest

from replaygate.formats import open_reader, open_writer
from replaygate.replay import ReplayConfig
from replaygate.runner import FileInput, Output, ProxyInput, Reports, Run, RunConfig, run
from replaygate.sources.proxy import ProxyConfig
from replaygate.stages.defaults import TrafficOptions
from replaygate.testing import make_exchange
from replaygate.testing.servers import NginxServer


def _write(path: Path, n: int = 12) -> Path:
    w = open_writer(str(path))
    for i in range(n):
        w.write(make_exchange("GET", f"/json?i={i}", id=f"{i:040x}"))
    w.write(make_exchange("GET", "/static/logo.png", id="f" * 40))
    w.close()
    return path


def _deny_png() -> TrafficOptions:
    return TrafficOptions(deny_url=(r"\.png$",))


def test_convert_push_counts_and_writes(tmp_path: Path) -> None:
    src, out = _write(tmp_path / "in.gor"), tmp_path / "out.jsonl"
    result = run(RunConfig(FileInput((str(src),)), _deny_png(), output=Output(str(out))))
    assert (result.counters.read, result.counters.written) == (13, 12)
    assert dict(result.counters.dropped) == {"filter": 1}
    assert len(list(open_reader(str(out)))) == 12


def test_convert_pull_yields_what_is_written(tmp_path: Path) -> None:
    src, out = _write(tmp_path / "in.gor"), tmp_path / "out.gor"
    r = Run(RunConfig(FileInput((str(src),)), _deny_png(), output=Output(str(out))))
    paths = [ex.request.target for ex in r]
    assert paths == [f"/json?i={i}" for i in range(12)]
    assert r.result.counters.written == 12
    assert [ex.request.target for ex in open_reader(str(out))] == paths


def test_pull_without_output_is_a_filter(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.gor", n=3)
    r = Run(RunConfig(FileInput((str(src),)), _deny_png()))
    assert len(list(r)) == 3 and r.result.counters.dropped["filter"] == 1


def test_stages_are_built_once(tmp_path: Path) -> None:
    r = Run(RunConfig(FileInput(()), TrafficOptions(mask=True)))
    assert r.stages is r.stages and [s.name for s in r.stages] == ["mask"]


def test_replay_push_compares_and_reports(nginx: NginxServer, tmp_path: Path) -> None:
    src = _write(tmp_path / "in.gor")
    cfg = RunConfig(
        FileInput((str(src),)),
        _deny_png(),
        replay=ReplayConfig(targets=[nginx.url], max_speed=True, concurrency=4),
        output=Output(str(tmp_path / "replayed.jsonl")),
        reports=Reports(json=str(tmp_path / "r.json")),
        compare_sources=(str(src),),
    )
    result = run(cfg)
    assert result.replay is not None and result.replay.sent == 12
    assert result.verdict is not None and result.reports_written == [str(tmp_path / "r.json")]
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["totals"]["replayed"] == 12
    assert all(ex.replayed is not None for ex in open_reader(str(tmp_path / "replayed.jsonl")))


def test_replay_pull_yields_replayed_exchanges(nginx: NginxServer, tmp_path: Path) -> None:
    src = _write(tmp_path / "in.gor")
    cfg = RunConfig(
        FileInput((str(src),)),
        _deny_png(),
        replay=ReplayConfig(targets=[nginx.url], max_speed=True, concurrency=2),
    )
    r = Run(cfg)
    got = list(r)
    assert len(got) == 12 and all(ex.replayed is not None for ex in got)
    assert r.result.replay is not None and r.result.replay.answered == 12


def test_replay_pull_stopped_early_ends_the_run(nginx: NginxServer, tmp_path: Path) -> None:
    src = _write(tmp_path / "in.gor", n=200)
    cfg = RunConfig(FileInput((str(src),)), replay=ReplayConfig(targets=[nginx.url], concurrency=2))
    r = Run(cfg)
    for i, _ in enumerate(r):
        if i == 2:
            break
    assert r.result.replay is not None and r.result.replay.sent < 201


def test_report_needs_reports(tmp_path: Path) -> None:
    r = Run(RunConfig(FileInput(())))
    with pytest.raises(ValueError, match="without reports"):
        r.report()


def test_live_duration_is_measured_on_the_runs_clock(tmp_path: Path) -> None:
    """A proxy run with a duration ends when its clock says so (a fake clock here): no
    minute of wall time, no race with a busy machine."""
    import threading
    import time

    from replaygate.runner import ProxyInput
    from replaygate.sources.proxy import ProxyConfig
    from replaygate.testing import FakeClock

    clock = FakeClock()
    out = tmp_path / "rec.gor"
    cfg = RunConfig(
        ProxyInput(ProxyConfig(upstream="http://127.0.0.1:9", listen="127.0.0.1:0"), 60.0),
        output=Output(str(out)),
    )
    r = Run(cfg, clock=clock)
    ready = threading.Event()
    t = threading.Thread(target=lambda: r.run(on_ready=ready.set))
    t.start()
    assert ready.wait(30)
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:  # still running: its clock has not moved
        t.join(0.1)
        assert t.is_alive()
    clock.advance(60)
    t.join(30)
    assert not t.is_alive() and out.exists()


def test_proxy_pull_yields_recorded_exchanges(nginx: NginxServer, tmp_path: Path) -> None:
    """Pull mode over a live source: what the proxy records, as it is recorded."""
    out = tmp_path / "rec.gor"
    cfg = ProxyConfig(upstream=nginx.url, listen="127.0.0.1:0")
    r = Run(RunConfig(ProxyInput(cfg), output=Output(str(out), force=False)))
    pulled = r.__iter__()
    got = []

    def send() -> None:
        deadline = time.monotonic() + 30
        while r.port is None and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for the listening port, not synchronising on time
        assert r.port is not None
        for i in range(3):
            c = http.client.HTTPConnection("127.0.0.1", r.port, timeout=30)
            c.request("GET", f"/json?i={i}")
            c.getresponse().read()
            c.close()

    t = threading.Thread(target=send)
    t.start()
    for ex in pulled:
        got.append(ex.request.target)
        if len(got) == 3:
            break
    pulled.close()  # stops the proxy
    t.join(30)
    assert sorted(got) == [f"/json?i={i}" for i in range(3)]
    assert r.result.live["recorded"] >= 3  # the final counters, once the proxy stopped
