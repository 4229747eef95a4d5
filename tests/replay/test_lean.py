"""The lean ``--max`` path: when it applies, and that it counts what the full path counts.

Each case replays the same request file twice against the same server, once through the
lean path and once with it switched off (the full path: exchanges, units, ``record``), and
compares everything in the stats that does not depend on timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import replaygate.replay.engine as engine_mod
from replaygate.cli import cli
from replaygate.errors import ReplayError
from replaygate.formats.gor import SEPARATOR
from replaygate.model import Counters
from replaygate.replay import ReplayConfig, ReplayStats, run_replay
from replaygate.replay._lean import lean_source
from replaygate.replay.correlation import CorrelationHook
from replaygate.runner._config import FileInput
from replaygate.runner._files import FileSource
from replaygate.testing import MemorySink
from replaygate.testing.servers import free_port

from ._servers import TestServer

T0 = 1_700_000_000_000_000_000
_TIMING = {
    "elapsed_s",
    "achieved_rate",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_max_ms",
}


def get(path: str, host: str = "prod.example", extra: bytes = b"") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path.encode(), host.encode(), extra)


def write_gor(path: Path, requests: list[bytes], header: bytes = b"") -> Path:
    with open(path, "wb") as f:
        for i, raw in enumerate(requests):
            f.write(b"1 %040x %d -1%s\n" % (i, T0 + i * 1000, header) + raw + SEPARATOR)
    return path


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer() as s:
        yield s


def cfg(url: str, **kw: Any) -> ReplayConfig:
    kw.setdefault("max_speed", True)
    kw.setdefault("concurrency", 4)
    return ReplayConfig(targets=[url], **kw)


def replay(
    paths: list[Path], config: ReplayConfig, *, lean: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[ReplayStats, Counters, bool]:
    """One replay through the runner's file source; returns stats, counters, lean path used."""
    used: list[bool] = []

    def spy(*a: Any, **kw: Any) -> Any:
        batches = lean_source(*a, **kw) if lean else None
        used.append(batches is not None)
        return batches

    with monkeypatch.context() as m:
        m.setattr(engine_mod, "lean_source", spy)
        counters = Counters()
        source = FileSource(FileInput(tuple(str(p) for p in paths)), [], counters)
        st = run_replay(source, config)
    return st, counters, used == [True]


def both(
    paths: list[Path],
    config: ReplayConfig,
    monkeypatch: pytest.MonkeyPatch,
    racy: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Replay both ways; the stats (but timing, and the ``racy`` fields) and the input
    counters must be equal."""
    lean_st, lean_c, used = replay(paths, config, lean=True, monkeypatch=monkeypatch)
    assert used, "the lean path did not apply"
    full_st, full_c, used = replay(paths, config, lean=False, monkeypatch=monkeypatch)
    assert not used
    a = {k: v for k, v in lean_st.as_dict().items() if k not in _TIMING | racy}
    b = {k: v for k, v in full_st.as_dict().items() if k not in _TIMING | racy}
    assert a == b
    assert lean_st.latency.count == full_st.latency.count == lean_st.answered
    assert (lean_c.dropped, lean_c.notes, lean_c.cuts) == (
        full_c.dropped,
        full_c.notes,
        full_c.cuts,
    )
    return a


def test_gets_statuses_and_drops(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reqs = [get(f"/p{i}") for i in range(40)]
    reqs += [
        get("/chunked"),
        get("/close"),
        get("/continue"),
        b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /cut HTTP/1.1\r\nHost: x\r\n",  # no end of head: dropped, incomplete_request
        b"POST /echo HTTP/1.1\r\nHost: x\r\n\r\nbody",  # Content-Length added
        get("/ka-then-close"),
        get("/after"),
    ]
    path = write_gor(tmp_path / "in.gor", reqs)
    # whether the server's close reaches us before the next request goes out on that
    # connection (then it is sent again on a new one) is a race, on either path
    got = both([path], cfg(server.url), monkeypatch, racy=frozenset({"connections", "retries"}))
    assert got["sent"] == len(reqs) - 1
    assert got["dropped"] == {"incomplete_request": 1}
    assert got["status"]["200"] == len(reqs) - 1


def test_errors_and_truncation(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pad = b"X-Pad: " + b"a" * 2000 + b"\r\n"
    reqs = [get("/garbage"), get("/reset"), get("/echo", extra=pad), get("/ok")]
    path = write_gor(tmp_path / "in.gor", reqs)
    got = both([path], cfg(server.url, concurrency=1, max_response_size=1024), monkeypatch)
    assert got["sent"] == 4
    assert got["truncated"] == 1
    assert got["errors"] == {"bad_response": 1, "reset": 1}
    refused = both([path], cfg(f"http://127.0.0.1:{free_port()}"), monkeypatch)
    assert refused["errors"] == {"connect_refused": 4}


def test_timeouts_closes_and_head_among_answers(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the lean connection counts plain answers itself and hands everything else to the
    # full path's code; a generous timeout: on a busy machine the fast answers must not be
    # taken for timeouts
    reqs = [
        get("/a"),
        get("/hang?s=8"),
        get("/hang?s=0"),
        b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n",
        get("/b"),
        get("/continue"),
        get("/close"),
        get("/c"),
    ]
    path = write_gor(tmp_path / "in.gor", reqs)
    got = both(
        [path],
        cfg(server.url, concurrency=2, response_timeout=3.0),
        monkeypatch,
        racy=frozenset({"connections", "retries"}),
    )
    assert got["sent"] == len(reqs)
    assert got["errors"] == {"timeout": 1, "closed": 1}


def test_metadata_records_cut_file_and_several_inputs(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write_gor(tmp_path / "a.gor", [get("/a1"), get("/a2")])
    b = tmp_path / "b.gor"
    b.write_bytes(
        b"1 x 1 -1 rg.v=1 rg.flags=request_gap\n" + get("/gap") + SEPARATOR
        + b"1 y 2 -1 rg.v=1\n" + get("/meta") + SEPARATOR
        + b"1 z 3 -1\nGET /cut HTT"
    )  # fmt: skip
    got = both([a, b], cfg(server.url, order="none"), monkeypatch)
    assert got["sent"] == 3
    assert got["dropped"] == {"incomplete_request": 1}


def test_order_recorded_applies_without_sessions(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_gor(tmp_path / "in.gor", [get(f"/{i}") for i in range(10)])
    got = both([path], cfg(server.url, order="recorded"), monkeypatch)
    assert got["order"] == "recorded" and got["order_waited"] == 0
    conn = write_gor(
        tmp_path / "conn.gor",
        [get("/1"), get("/2")],
        header=b" rg.v=1 rg.conn=1.1.1.1:1->2.2.2.2:80",
    )
    st, _, used = replay(
        [conn], cfg(server.url, order="recorded"), lean=True, monkeypatch=monkeypatch
    )
    assert not used and st.sent == 2  # the order gate needs exchanges: the full path ran
    both([conn], cfg(server.url, order="none"), monkeypatch)


def test_unsafe_target_raises_on_both_paths(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = f"127.0.0.1:{server.port}"
    reqs = [get("/fine", host), b"DELETE /x HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode()]
    path = write_gor(tmp_path / "in.gor", reqs)
    for lean in (True, False):
        with pytest.raises(ReplayError, match="refusing to replay DELETE"):
            replay([path], cfg(server.url, concurrency=1), lean=lean, monkeypatch=monkeypatch)


@pytest.mark.parametrize(
    "kw",
    [
        {"max_speed": False, "speed": 1.0},
        {"loop": True, "limit": 3},
        {"limit": 3},
        {"sessions": True},
        {"order": "sessions"},
        {"redirects": 2},
        {"split": True},
        {"http2": True},
    ],
)
def test_full_path_when_something_needs_it(
    tmp_path: Path, server: TestServer, kw: dict[str, Any]
) -> None:
    path = write_gor(tmp_path / "in.gor", [get("/1")])
    source = FileSource(FileInput((str(path),)), [], Counters())
    c = cfg(server.url, **kw)
    assert lean_source(source, c, [], None, object()) is None  # type: ignore[arg-type]


def test_full_path_for_hooks_sinks_stages_and_other_formats(tmp_path: Path) -> None:
    path = write_gor(tmp_path / "in.gor", [get("/1")])
    c = cfg("http://127.0.0.1:1")
    pool: Any = object()
    src = FileSource(FileInput((str(path),)), [], Counters())
    assert lean_source(src, c, [], None, pool) is not None
    assert lean_source(src, c, [object()], None, pool) is None
    # token correlation learns from recorded responses only: idle on request-only input
    assert lean_source(src, c, [CorrelationHook()], None, pool) is not None
    assert lean_source(src, c, [CorrelationHook(), object()], None, pool) is None
    assert lean_source(src, c, [], MemorySink(), pool) is None
    assert lean_source(src, c, [], None, None) is None  # several targets or a baseline
    staged = FileSource(FileInput((str(path),)), [object()], Counters())  # type: ignore[list-item]
    assert lean_source(staged, c, [], None, pool) is None
    assert lean_source([], c, [], None, pool) is None  # not a file source
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("")
    other = FileSource(FileInput((str(path), str(jsonl))), [], Counters())
    assert lean_source(other, c, [], None, pool) is None


def test_cli_summary_is_the_same(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_gor(tmp_path / "in.gor", [get(f"/{i}") for i in range(30)] + [get("/reset")])
    args = ["replay", str(path), "-t", server.url, "--max", "-c", "4", "--no-correlate"]
    outs = []
    for lean in (True, False):
        with monkeypatch.context() as m:
            if not lean:
                m.setattr(engine_mod, "lean_source", lambda *a, **k: None)
            res = CliRunner().invoke(cli, [*args, "--no-progress"])
        assert res.exit_code == 0, res.output
        outs.append(
            [ln for ln in res.output.splitlines() if "rate " not in ln and "latency" not in ln]
        )
    assert outs[0] == outs[1]
    assert any("sent 31" in ln for ln in outs[0])


def test_cli_default_flags_take_the_lean_path_with_the_same_summary(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # correlation on (the default) and --order recorded (the default): nothing to correlate
    # in a request-only file, so the lean path runs and says what the full path says
    reqs = [get(f"/{i}", extra=b"Cookie: sid=abcdefgh12345678\r\n") for i in range(20)]
    path = write_gor(tmp_path / "in.gor", [*reqs, get("/reset")])
    args = ["replay", str(path), "-t", server.url, "--max", "-c", "4", "--no-progress"]
    outs = []
    for lean in (True, False):
        used: list[bool] = []

        def spy(*a: Any, lean: bool = lean, used: list[bool] = used, **kw: Any) -> Any:
            batches = lean_source(*a, **kw) if lean else None
            used.append(batches is not None)
            return batches

        with monkeypatch.context() as m:
            m.setattr(engine_mod, "lean_source", spy)
            res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        assert used == [lean]
        outs.append(
            [ln for ln in res.output.splitlines() if "rate " not in ln and "latency" not in ln]
        )
    assert outs[0] == outs[1]
    assert any("sent 21" in ln for ln in outs[0])


@pytest.mark.parametrize("session_key", [None, "header:X-User"])
def test_workers_take_the_same_shares(
    tmp_path: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch, session_key: str | None
) -> None:
    from replaygate.replay import run_replay_parallel
    from replaygate.replay._workers import Shard

    reqs = [get(f"/{i}", extra=b"X-User: u%d\r\n" % (i % 5)) for i in range(30)]
    a = write_gor(tmp_path / "a.gor", reqs)
    b = tmp_path / "b.gor"
    b.write_bytes(b"1 m 1 -1 rg.v=1 rg.sess=s9\n" + get("/meta") + SEPARATOR)
    paths = (str(a), str(b))

    def factory() -> FileSource:
        return FileSource(FileInput(paths), [], Counters())

    # the lean shares are the full shares, request for request
    for i in range(3):
        sh = Shard(factory(), i, 3, session_key)
        batches = sh.lean_requests(sessions_ok=True)
        assert batches is not None
        got = [x if isinstance(x, bytes) else x.request.raw for bt in batches for x in bt]
        assert got == [ex.request.raw for ex in sh]
    # and a parallel replay counts the same either way
    c = cfg(server.url, workers=2, order="none", session_key=session_key)
    sts = []
    for lean in (True, False):
        with monkeypatch.context() as m:
            if not lean:
                m.setattr(engine_mod, "lean_source", lambda *a, **k: None)
            sts.append(run_replay_parallel(factory, c))
    x, y = ({k: v for k, v in s.as_dict().items() if k not in _TIMING} for s in sts)
    assert x == y and x["sent"] == 31
