"""GoReplay-protocol middleware with real child processes: keep, modify, drop, inject,
crash (stop / skip), 50 MB bodies, stderr passthrough, non-hex lines, type-3 messages."""

from __future__ import annotations

import shlex
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import ConfigError, MiddlewareError
from replaygate.model import Exchange, Flag
from replaygate.pipeline import Counters, run_pipeline
from replaygate.stages.middleware import (
    MiddlewareConfig,
    MiddlewareStage,
    decode_message,
    encode_message,
)
from replaygate.testing import MemorySink, make_exchange

ROOT = Path(__file__).resolve().parents[2]
PY = shlex.quote(sys.executable)

# A tiny protocol library the test middlewares share (what users write by hand).
PRELUDE = """
import sys, binascii
def messages():
    for line in sys.stdin.buffer:
        line = line.strip()
        if line:
            data = binascii.unhexlify(line)
            meta, _, payload = data.partition(b"\\n")
            yield meta.split(b" "), meta, payload
def emit(meta, payload):
    sys.stdout.buffer.write(binascii.hexlify(meta + b"\\n" + payload) + b"\\n")
    sys.stdout.buffer.flush()
"""


def script(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / name
    p.write_text(PRELUDE + textwrap.dedent(body))
    return f"{PY} {shlex.quote(str(p))}"


def exchanges(n: int, **kw: object) -> list[Exchange]:
    return [
        make_exchange("GET", f"/item/{i}", response_body=b"body %d\n" % i, id=f"{i:024x}", **kw)  # type: ignore[arg-type]
        for i in range(n)
    ]


def run(cmd: str, exs: list[Exchange], **cfg: object) -> tuple[list[Exchange], Counters]:
    stage = MiddlewareStage(MiddlewareConfig(command=cmd, **cfg))  # type: ignore[arg-type]
    sink = MemorySink()
    counters = run_pipeline(exs, [stage], sink)
    return sink.exchanges, counters


def test_message_codec() -> None:
    line = encode_message(1, "abc", 123, -1, b"GET / HTTP/1.1\r\n\r\n")
    assert line.endswith(b"\n") and b"\n" not in line[:-1]
    assert decode_message(line) == (1, "abc", 123, -1, b"GET / HTTP/1.1\r\n\r\n")
    # GoReplay's documented request header has only three fields
    three = (b"1 932079936fa4306fc308d67588178d17d823647c 1439818823587396305\n" + b"GET /a").hex()
    assert decode_message(three.encode())[3] is None
    # uppercase hex and CRLF line endings (a Windows-built middleware) are accepted
    assert decode_message(line.strip().upper() + b"\r\n")[4] == b"GET / HTTP/1.1\r\n\r\n"
    for bad in (
        b"zz",
        b"31",
        (b"9 id 1\nx").hex().encode(),
        (b"1 id notanumber\nx").hex().encode(),
    ):
        with pytest.raises(ValueError):
            decode_message(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decode_arbitrary_bytes_raises_only_valueerror(data: bytes) -> None:
    try:
        decode_message(data)
    except ValueError:
        pass


@pytest.mark.parametrize(
    "cmd",
    [
        f"{PY} {ROOT / 'examples/middleware/echo.py'}",
        f"bash {ROOT / 'examples/middleware/echo.sh'}",
    ],
    ids=["echo.py", "echo.sh"],
)
def test_goreplay_echo_examples_keep_everything(cmd: str) -> None:
    exs = exchanges(300)
    before = [(e.id, e.request.raw, e.response.raw if e.response else None) for e in exs]
    out, c = run(cmd, exs)
    assert [(e.id, e.request.raw, e.response.raw if e.response else None) for e in out] == before
    assert c.written == 300 and not c.dropped
    assert all(Flag.MODIFIED not in e.flags for e in out)


def test_drop_modify_inject(tmp_path: Path) -> None:
    cmd = script(
        tmp_path,
        "mw.py",
        """
        n = 0
        for fields, meta, payload in messages():
            if fields[0] == b"1":
                n += 1
                path = payload.split(b" ", 2)[1]
                if path.endswith((b"/1", b"/3")):
                    continue  # drop the request (its response is echoed: ignored)
                if path.endswith(b"/2"):
                    # change the body without fixing Content-Length: replaygate fixes framing
                    payload = payload.replace(b"GET", b"PUT", 1) + b"new body"
                if path.endswith(b"/4"):
                    emit(meta, payload)
                    emit(b"1 injected000000000000000 1 -1", b"GET /extra HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                    continue
            emit(meta, payload)
        """,
    )
    out, c = run(cmd, exchanges(6))
    paths = [e.request.target for e in out]
    assert paths == ["/item/0", "/item/2", "/item/4", "/extra", "/item/5"]
    assert c.dropped["middleware"] == 2
    assert c.notes["middleware.injected"] == 1
    modified = out[1]
    assert Flag.MODIFIED in modified.flags
    assert modified.request.method == "PUT"
    assert modified.request.body() == b"new body"
    assert modified.request.header("content-length") == "8"
    injected = out[3]
    assert Flag.INJECTED in injected.flags and injected.id == "injected000000000000000"
    assert all(e.response is not None for e in out if Flag.INJECTED not in e.flags)


def test_responses_not_echoed_are_kept(tmp_path: Path) -> None:
    cmd = script(
        tmp_path,
        "requests_only.py",
        """
        for fields, meta, payload in messages():
            if fields[0] == b"1":
                emit(meta, payload.replace(b"/item/", b"/v2/item/"))
        """,
    )
    exs = exchanges(20)
    responses = [e.response for e in exs]
    out, c = run(cmd, exs)
    assert [e.request.target for e in out] == [f"/v2/item/{i}" for i in range(20)]
    assert [e.response for e in out] == responses
    assert c.notes["middleware.response_not_echoed"] == 20


def test_response_modified(tmp_path: Path) -> None:
    cmd = script(
        tmp_path,
        "resp.py",
        """
        for fields, meta, payload in messages():
            if fields[0] == b"2":
                payload = payload.replace(b"body", b"BODY!")
            emit(meta, payload)
        """,
    )
    out, c = run(cmd, exchanges(3))
    assert [e.response.body() for e in out if e.response] == [b"BODY! %d\n" % i for i in range(3)]
    assert c.notes["middleware.response_modified"] == 3


def test_buffered_middleware_and_drop_everything(tmp_path: Path) -> None:
    # drops every message and never writes: the in-flight window fills, silence settles it
    cmd = script(tmp_path, "drop_all.py", "for _ in messages():\n    pass\n")
    out, c = run(cmd, exchanges(50), max_inflight=8, settle_timeout="0.2s")
    assert out == [] and c.dropped["middleware"] == 50


def test_silence_settles_after_settle_timeout_on_the_clock(tmp_path: Path) -> None:
    """A full window and a silent child: the oldest exchange is given up (dropped, counted)
    once ``settle_timeout`` has passed on the stage's clock, not before."""
    import threading

    from replaygate.testing import FakeClock

    clock = FakeClock(10.0)
    cmd = script(tmp_path, "silent.py", "for _ in messages():\n    pass\n")
    cfg = MiddlewareConfig(command=cmd, max_inflight=1, settle_timeout="5s", linger="0s")
    stage = MiddlewareStage(cfg, clock=clock)
    a, b = exchanges(2)
    try:
        assert list(stage.process(a)) == []
        got: list[Exchange] = []
        t = threading.Thread(target=lambda: got.extend(stage.process(b)))
        t.start()
        t.join(1.0)
        assert t.is_alive(), "settled before settle_timeout passed on its clock"
        clock.advance(5)
        t.join(30)
        assert not t.is_alive() and got == []
        assert stage.counters.dropped["middleware"] == 1
    finally:
        stage.abort()


def test_window_bounds_inflight(tmp_path: Path) -> None:
    stage = MiddlewareStage(
        MiddlewareConfig(command=f"{PY} {ROOT / 'examples/middleware/echo.py'}", max_inflight=4)
    )
    released: list[Exchange] = []
    for ex in exchanges(40):
        released.extend(stage.process(ex))
        assert len(stage._order) <= 5
    released.extend(stage.close())
    assert [e.id for e in released] == [f"{i:024x}" for i in range(40)]


def test_50mb_body_passes() -> None:
    body = bytes(range(256)) * (50 * 1024 * 1024 // 256)
    ex = make_exchange("POST", "/upload", request_body=body, response_body=b"ok")
    out, _c = run(f"{PY} {ROOT / 'examples/middleware/echo.py'}", [ex])
    assert len(out) == 1
    assert out[0].request.raw == ex.request.raw
    assert len(out[0].request.body()) == 50 * 1024 * 1024


def test_crash_stops_with_status_and_last_stderr_line(tmp_path: Path) -> None:
    cmd = script(
        tmp_path,
        "crash.py",
        """
        for i, (fields, meta, payload) in enumerate(messages()):
            emit(meta, payload)
            if i == 4:
                sys.stderr.write("something broke: KeyError 'x'\\n")
                sys.stderr.flush()
                sys.exit(3)
        """,
    )
    with pytest.raises(MiddlewareError) as err:
        run(cmd, exchanges(200))
    text = str(err.value)
    assert "exited with status 3" in text
    assert "something broke: KeyError 'x'" in text
    assert "\n" not in text


def test_crash_skip_passes_exchanges_through(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cmd = script(
        tmp_path,
        "crash.py",
        """
        for i, (fields, meta, payload) in enumerate(messages()):
            emit(meta, payload)
            if i == 3:
                sys.exit(1)
        """,
    )
    exs = exchanges(100)
    out, c = run(cmd, exs, on_error="skip")
    assert [e.id for e in out] == [e.id for e in exs]
    assert c.notes["middleware.bypassed"] >= 95
    assert "passing exchanges through unchanged" in capfd.readouterr().err


def test_exit_zero_before_input_ended_is_an_error(tmp_path: Path) -> None:
    cmd = script(tmp_path, "quit.py", "import sys\nsys.stdin.readline()\n")
    big = [make_exchange("POST", "/", request_body=b"x" * 200_000) for _ in range(30)]
    with pytest.raises(MiddlewareError, match="status 0 before its input ended"):
        run(cmd, big)


def test_stderr_is_passed_through_prefixed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cmd = script(
        tmp_path,
        "talk.py",
        """
        for fields, meta, payload in messages():
            sys.stderr.write("saw %s\\n" % fields[1].decode())
            sys.stderr.flush()
            emit(meta, payload)
        """,
    )
    run(cmd, exchanges(2))
    err = capfd.readouterr().err
    assert f"[middleware] saw {0:024x}" in err
    assert f"[middleware] saw {1:024x}" in err


def test_non_hex_lines_are_skipped_and_counted(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cmd = script(
        tmp_path,
        "chatty.py",
        """
        for fields, meta, payload in messages():
            print("debug: not a message", flush=True)
            emit(meta, payload)
        """,
    )
    out, c = run(cmd, exchanges(3))
    assert len(out) == 3
    assert c.notes["middleware.bad_line"] == 6  # request and response lines
    assert "not a hex message" in capfd.readouterr().err


def test_type3_messages_for_replayed_responses(tmp_path: Path) -> None:
    log = tmp_path / "seen.txt"
    cmd = script(
        tmp_path,
        "learn.py",
        f"""
        with open({str(log)!r}, "w") as f:
            for fields, meta, payload in messages():
                f.write(b" ".join(fields[:2]).decode() + " " + payload.split(b"\\r\\n")[0].decode() + "\\n")
                f.flush()
                if fields[0] != b"3":
                    emit(meta, payload)
        """,
    )
    stage = MiddlewareStage(MiddlewareConfig(command=cmd))
    ex = make_exchange("GET", "/r", id="r1", replayed_status=503)
    released = list(stage.process(ex)) + list(stage.process(make_exchange(id="r2")))
    assert stage.send_replayed(ex)
    stage.after_response(ex)  # the ReplayHook face does the same
    assert stage.before_send(ex, ex.request) is ex.request
    released += list(stage.close())
    assert [e.id for e in released] == ["r1", "r2"]
    lines = log.read_text().splitlines()
    assert lines[:2] == ["1 r1 GET /r HTTP/1.1", "2 r1 HTTP/1.1 200 OK"]
    # once because the exchange already held it, twice sent by the replay side
    assert lines.count("3 r1 HTTP/1.1 503 Service Unavailable") == 3


def test_ids_that_cannot_travel_are_replaced(tmp_path: Path) -> None:
    exs = [
        make_exchange("GET", "/a", id="has space"),
        make_exchange("GET", "/b", id="dup"),
        make_exchange("GET", "/c", id="dup"),
    ]
    out, _c = run(f"{PY} {ROOT / 'examples/middleware/echo.py'}", exs)
    assert [e.request.target for e in out] == ["/a", "/b", "/c"]
    assert [e.id for e in out] == ["has space", "dup", "dup"]


def test_bad_commands() -> None:
    with pytest.raises(ConfigError, match="--middleware: empty command"):
        MiddlewareStage(MiddlewareConfig(command="  "))
    with pytest.raises(ConfigError, match="--middleware: cannot parse"):
        MiddlewareStage(MiddlewareConfig(command="echo 'unterminated"))
    with pytest.raises(ConfigError, match="--middleware-on-error"):
        MiddlewareStage(MiddlewareConfig(command="cat", on_error="ignore"))
    with pytest.raises(MiddlewareError, match="could not start"):
        MiddlewareStage(MiddlewareConfig(command="/nonexistent/middleware --x"))


def test_child_that_ignores_eof_is_terminated(tmp_path: Path) -> None:
    cmd = script(
        tmp_path,
        "sleepy.py",
        """
        import time
        for fields, meta, payload in messages():
            emit(meta, payload)
        time.sleep(60)
        """,
    )
    with pytest.raises(MiddlewareError, match="did not exit within"):
        run(cmd, exchanges(2), close_timeout="0.5s")


def test_reordering_middleware_loses_nothing(tmp_path: Path) -> None:
    # answers each pair of exchanges in reverse order (an async middleware would)
    cmd = script(
        tmp_path,
        "swap.py",
        """
        held = []
        for fields, meta, payload in messages():
            held.append((meta, payload))
            if len(held) == 4:
                for m, p in held[2:] + held[:2]:
                    emit(m, p)
                held = []
        for m, p in held:
            emit(m, p)
        """,
    )
    exs = exchanges(40)
    out, c = run(cmd, exs)
    assert sorted(e.id for e in out) == sorted(e.id for e in exs)
    assert not c.dropped
    assert all(Flag.INJECTED not in e.flags for e in out)


@pytest.mark.parametrize("on_error", ["stop", "skip"])
def test_middleware_that_exits_at_once(on_error: str) -> None:
    exs = exchanges(20)
    if on_error == "stop":
        with pytest.raises(MiddlewareError, match="exited with status 1"):
            run("false", exs, on_error=on_error)
    else:
        out, c = run("false", exs, on_error=on_error)
        assert [e.id for e in out] == [e.id for e in exs]
        assert c.notes["middleware.bypassed"] == 20


def test_late_reply_after_drop_is_released_not_lost(tmp_path: Path) -> None:
    # deterministic: a silent child, and replies fed to the reassembly by hand
    cmd = script(tmp_path, "silent.py", "for _ in messages():\n    pass\n")
    stage = MiddlewareStage(MiddlewareConfig(command=cmd, send_responses=False))
    a, b = make_exchange("GET", "/a", id="a" * 24), make_exchange("GET", "/b", id="b" * 24)
    assert list(stage.process(a)) == [] and list(stage.process(b)) == []
    with stage._cond:
        stage._apply(1, "b" * 24, b.ts_ns, -1, b.request.raw)  # b answered first: a is dropped
        first = stage._release()
        assert [e.id for e in first] == ["b" * 24]
        assert stage.counters.dropped["middleware"] == 1
        stage._apply(1, "a" * 24, a.ts_ns, -1, a.request.raw)  # a arrives late
        late = stage._release()
    assert [e.id for e in late] == ["a" * 24]
    assert not stage.counters.dropped and stage.counters.notes["middleware.late_reply"] == 1
    assert list(stage.close()) == []


def test_sparse_live_traffic_is_not_held_back() -> None:
    # live capture: one exchange now and then; each comes back from the call that sent it
    from replaygate.testing import FakeClock

    clock = FakeClock(100.0)
    stage = MiddlewareStage(MiddlewareConfig(command="cat", linger="2s"), clock=clock)
    try:
        for ex in exchanges(3):
            clock.advance(5)  # the previous exchange came 5 s ago
            assert [e.id for e in stage.process(ex)] == [ex.id]
    finally:
        assert list(stage.close()) == []


def test_close_error_still_closes_everything_after(tmp_path: Path) -> None:
    # the first middleware fails at close; the second one and the sink are still closed
    failing = script(
        tmp_path, "fail_at_end.py", "for f, m, p in messages():\n    emit(m, p)\nsys.exit(4)\n"
    )
    first = MiddlewareStage(MiddlewareConfig(command=failing))
    second = MiddlewareStage(MiddlewareConfig(command="cat"))
    # Start the second child now: on a busy machine the first one may still hold every
    # exchange when it fails, so none would reach the second and start it (and ``.proc``
    # below would start a fresh one instead of checking that this one was closed).
    assert second.proc.poll() is None
    sink = MemorySink()
    with pytest.raises(MiddlewareError, match="exited with status 4"):
        run_pipeline(exchanges(5), [first, second], sink)
    assert sink.closed
    assert second.proc.poll() == 0


def test_request_echoed_twice_is_an_injected_copy(tmp_path: Path) -> None:
    cmd = script(
        tmp_path,
        "twice.py",
        """
        for fields, meta, payload in messages():
            emit(meta, payload)
            if fields[0] == b"1":
                emit(meta, payload)
        """,
    )
    exs = exchanges(3)
    out, c = run(cmd, exs)
    assert [e.request.target for e in out] == [t for i in range(3) for t in [f"/item/{i}"] * 2]
    originals = [e for e in out if Flag.INJECTED not in e.flags]
    copies = [e for e in out if Flag.INJECTED in e.flags]
    assert [e.id for e in originals] == [e.id for e in exs]
    assert len(copies) == 3 and not {e.id for e in copies} & {e.id for e in exs}
    assert c.notes["middleware.injected"] == 3 and c.written == 6


def test_no_process_until_traffic_flows(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    stage = MiddlewareStage(MiddlewareConfig(command=f"touch {marker}"))
    assert list(stage.close()) == []  # built, never used (e.g. the command failed later)
    assert not marker.exists()
    with pytest.raises(MiddlewareError, match="'no-such-cmd-xyz' is not an executable"):
        MiddlewareStage(MiddlewareConfig(command="no-such-cmd-xyz --flag"))
    not_exec = tmp_path / "mw.sh"
    not_exec.write_text("cat\n")
    with pytest.raises(MiddlewareError, match="could not start"):
        MiddlewareStage(MiddlewareConfig(command=str(not_exec)))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_inflight", "many", "max_inflight: expected a number"),
        ("max_inflight", 0, "must be positive"),
        ("max_inflight_bytes", "lots", "max_inflight_bytes: cannot read"),
        ("settle_timeout", "soon", "settle_timeout: cannot read"),
        ("linger", "-1s", "linger: cannot read"),
    ],
)
def test_bad_advanced_settings(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MiddlewareStage(MiddlewareConfig(command="cat", **{field: value}))  # type: ignore[arg-type]


def test_type3_messages_through_a_real_replay(nginx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from replaygate.cli._options import close_stages, iter_through, replay_hooks
    from replaygate.replay import ReplayConfig, run_replay

    log = tmp_path / "seen.txt"
    cmd = script(
        tmp_path,
        "learn.py",
        f"""
        with open({str(log)!r}, "w") as f:
            for fields, meta, payload in messages():
                status = payload.split(b"\\r\\n")[0].decode()
                f.write(fields[0].decode() + " " + fields[1].decode() + " " + status + "\\n")
                f.flush()
                if fields[0] != b"3":
                    emit(meta, payload)
        """,
    )
    exs = [
        make_exchange("GET", "/json" if i % 2 else "/status/404", id=f"{i:024x}") for i in range(10)
    ]

    class Learner:
        def __init__(self) -> None:
            self.statuses: list[int] = []

        def replayed(self, ex: Exchange) -> None:
            self.statuses.append(ex.replayed.status if ex.replayed else 0)

    from replaygate.stages.filter import FilterConfig, FilterStage
    from replaygate.stages.plugins import PluginStage

    plugin = PluginStage(Learner(), "inline")
    stages = [
        FilterStage(FilterConfig(deny_url=["^/never"])),
        MiddlewareStage(MiddlewareConfig(command=cmd)),
        plugin,
    ]
    exs.append(make_exchange("GET", "/never", id="n" * 24))  # filtered before replay
    counters = Counters()
    sink = MemorySink()
    cfg = ReplayConfig(targets=[nginx.url], max_speed=True, concurrency=4)
    try:
        run_replay(iter_through(exs, stages, counters), cfg, sink=sink, hooks=replay_hooks(stages))
    finally:
        close_stages(stages, counters)
    assert sorted(e.id for e in sink.exchanges) == sorted(e.id for e in exs[:10])
    assert all(e.replayed is not None for e in sink.exchanges)
    lines = log.read_text().splitlines()
    replayed = sorted(line for line in lines if line.startswith("3 "))
    assert len(replayed) == 10
    assert sum("404 Not Found" in line for line in replayed) == 5
    assert sum("200 OK" in line for line in replayed) == 5
    assert counters.read == 11 and counters.dropped == {"filter": 1}
    assert sorted(plugin.plugin.statuses) == [200] * 5 + [404] * 5


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_reassembly_invariants(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Whatever subset and order of answers comes back, every exchange is released once or
    counted dropped once, nothing is invented, and answers in order keep their order."""
    n = data.draw(st.integers(1, 12))
    answered = data.draw(st.lists(st.integers(0, n - 1), unique=True))
    cmd = script(tmp_path_factory.mktemp("mw"), "silent.py", "for _ in messages():\n    pass\n")
    stage = MiddlewareStage(MiddlewareConfig(command=cmd, send_responses=False, linger=0))
    exs = [make_exchange("GET", f"/{i}", id=f"{i:024x}") for i in range(n)]
    released: list[Exchange] = []
    for ex in exs:
        released.extend(stage.process(ex))
    for i in answered:
        with stage._cond:
            stage._apply(1, exs[i].id, exs[i].ts_ns, -1, exs[i].request.raw)
            if data.draw(st.booleans()):
                released.extend(stage._release())
    released.extend(stage.close())
    ids = [e.id for e in released]
    assert len(ids) == len(set(ids))
    assert set(ids) <= {e.id for e in exs}
    assert len(ids) + stage.counters.dropped["middleware"] == n
    assert set(ids) == {exs[i].id for i in answered}
    if answered == sorted(answered):
        assert ids == [exs[i].id for i in answered]


def _reference_decode(line: bytes) -> tuple[int, str, int, int | None, bytes]:
    import binascii

    data = binascii.unhexlify(line.rstrip(b" \t\r\n").lstrip(b" \t"))
    nl = data.find(b"\n")
    if nl < 0:
        raise ValueError("no header line")
    parts = data[:nl].decode("latin-1").strip("\r").split(" ")
    if len(parts) < 3 or parts[0] not in ("1", "2", "3") or not parts[1]:
        raise ValueError("bad header")
    lat = int(parts[3]) if len(parts) > 3 and parts[3].lstrip("-").isdigit() else None
    return int(parts[0]), parts[1], int(parts[2]), lat, data[nl + 1 :]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=60).map(lambda b: b.hex().encode()),
        st.builds(
            lambda t, i, p, up: (
                encode_message(t, i, 5, -1, p).upper() if up else encode_message(t, i, 5, -1, p)
            ),
            st.sampled_from([1, 2, 3]),
            st.text("abc0123456789", min_size=1, max_size=8),
            st.binary(max_size=40),
            st.booleans(),
        ),
        st.binary(max_size=40),
    )
)
def test_decode_matches_reference(line: bytes) -> None:
    try:
        expected = _reference_decode(line)
    except ValueError:
        with pytest.raises(ValueError):
            decode_message(line)
        return
    assert decode_message(line) == expected


def test_recorded_replayed_responses_are_shown_as_type3(tmp_path: Path) -> None:
    log = tmp_path / "types.txt"
    cmd = script(
        tmp_path,
        "types.py",
        f"""
        with open({str(log)!r}, "w") as f:
            for fields, meta, payload in messages():
                f.write(fields[0].decode())
                f.flush()
                emit(meta, payload)
        """,
    )
    exs = [make_exchange("GET", f"/{i}", replayed_status=500, id=f"{i:024x}") for i in range(3)]
    out, c = run(cmd, exs)
    assert log.read_text() == "123123123"
    assert [e.replayed.status for e in out if e.replayed] == [500, 500, 500]
    assert c.notes["middleware.replayed_echo"] == 3 and not c.dropped


def test_inflight_bytes_stay_bounded() -> None:
    body = b"z" * (1 << 20)
    stage = MiddlewareStage(
        MiddlewareConfig(
            command=f"{PY} {ROOT / 'examples/middleware/echo.py'}", max_inflight_bytes="4mb"
        )
    )
    released: list[Exchange] = []
    for i in range(20):
        ex = make_exchange("POST", f"/u/{i}", request_body=body, id=f"{i:024x}")
        released.extend(stage.process(ex))
        # at most the bound plus the exchange just sent
        assert stage._inflight_bytes <= (4 << 20) + len(ex.request.raw) + 200
    released.extend(stage.close())
    assert [e.id for e in released] == [f"{i:024x}" for i in range(20)]


def test_middleware_does_not_get_the_terminals_ctrl_c() -> None:
    import os

    stage = MiddlewareStage(MiddlewareConfig(command="cat"))
    try:
        list(stage.process(make_exchange()))
        assert os.getpgid(stage.proc.pid) != os.getpgid(0)
    finally:
        list(stage.close())
