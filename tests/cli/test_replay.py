"""``replaygate replay``: help, happy paths against nginx, documented bad inputs."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from replaygate.cli import main
from replaygate.formats.gor import GorWriter, read_records
from replaygate.model import ConnectionId
from replaygate.testing import make_exchange, make_request
from replaygate.testing.servers import NginxServer

T0 = 1_700_000_000_000_000_000


def write_gor(path: Path, n: int = 40, method: str = "GET", host: str = "prod.example") -> Path:
    w = GorWriter(path)
    for i in range(n):
        ex = make_exchange(
            method,
            f"/json?i={i}",
            id=f"{i:040x}",
            ts_ns=T0 + i * 1_000_000,
            conn=ConnectionId("10.0.0.1", 1000 + i % 4, "10.0.0.2", 80),
        )
        ex.request = make_request(method, f"/json?i={i}", host=host, ts_ns=T0 + i * 1_000_000)
        w.write(ex)
    w.close()
    return path


def run(*args: str) -> tuple[int, str]:
    """Through ``main`` (as the console script): user errors become one line + exit 2."""
    r = CliRunner().invoke(_entry, ["replay", *args])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.output


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def _entry(argv: tuple[str, ...]) -> None:
    main(list(argv))


def test_help_lists_the_contract_flags() -> None:
    code, out = run("--help")
    assert code == 0
    for flag in (
        "--target", "--split", "--baseline", "--speed", "--rate", "--max", "--concurrency",
        "--ramp", "--loop", "--duration", "--limit", "--max-wait", "--sessions",
        "--session-key", "--keep-host", "--connect-timeout", "--timeout", "--redirects",
        "--insecure", "--ca-file", "--allow-unsafe-target", "--workers", "--output",
        "--progress", "--correlate", "--config", "--report", "--allow-url",
    ):  # fmt: skip
        assert flag in out, flag


def test_replay_max_to_output(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor")
    out = tmp_path / "out.gor"
    code, text = run(str(src), "--target", nginx.url, "--max", "-c", "4", "-o", str(out))
    assert code == 0, text
    assert "replay: sent 40, answered 40, errors 0" in text
    assert "latency p50" in text and "output:" in text
    t3 = [r for r in read_records(out) if r.type == 3]
    assert len(t3) == 40 and all(r.payload.startswith(b"HTTP/1.1 200") for r in t3)


def test_replay_rate_sessions_progress_and_filters(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 30)
    code, text = run(
        str(src), "--target", nginx.url, "--rate", "300", "--sessions", "--progress",
        "--allow-url", r"i=1\d", "--no-correlate",
    )  # fmt: skip
    assert code == 0, text
    assert "sent 10," in text and "of 300.0 asked" in text and "ETA" in text


def test_replay_workers_with_output(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 40)
    out = tmp_path / "out.gor"
    code, text = run(str(src), "-t", nginx.url, "--max", "--workers", "2", "-o", str(out))
    assert code == 0, text
    assert "sent 40, answered 40" in text
    assert len([r for r in read_records(out) if r.type == 3]) == 40


def test_config_section(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 5)
    conf = tmp_path / "replaygate.toml"
    conf.write_text(
        f'[replay]\ntargets = ["{nginx.url}"]\nmax_speed = true\nresponse_timeout = "2s"\n'
    )
    code, text = run(str(src), "--config", str(conf))
    assert code == 0, text
    assert "sent 5," in text
    conf.write_text("[replay]\nspeeed = 2\n")
    code, text = run(str(src), "--config", str(conf), "-t", nginx.url)
    assert code == 2 and "unknown field 'speeed'" in text


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--max", "--rate", "5"], "--rate and --max: choose one timing mode"),
        (["--ramp", "100"], "--ramp"),
        (["--duration", "soon"], "--duration"),
        (["--session-key", "ip"], "--session-key"),
        (["--speed", "2", "--max"], "--speed"),
        (["-o", "out.xyz"], "unknown file extension"),
        # #12: numbers with sane bounds (1.6 GB for --concurrency 100000000; OverflowError)
        (["--max", "--concurrency", "100000000"], "not in the range 1<=x<=65536"),
        (["--rate", "1e-300"], "--rate"),
        (["--speed", "1e-300"], "--speed"),
        (["--ramp", "1e-300:10s"], "out of range"),
        (["--workers", "100000"], "--workers"),
        (["--duration", "9" * 400 + "h"], "too long a duration"),
        (["--max-response-size", "9" * 400 + "t"], "too large a size"),
    ],
)
def test_bad_flags_are_one_line_exit_2(tmp_path: Path, args: list[str], msg: str) -> None:
    src = write_gor(tmp_path / "in.gor", 1)
    code, text = run(str(src), "-t", "http://127.0.0.1:9", *args)
    assert code == 2 and msg in text
    assert "Traceback" not in text


def test_missing_target_and_file(tmp_path: Path) -> None:
    code, text = run(str(write_gor(tmp_path / "in.gor", 1)))
    assert code == 2 and "--target" in text
    code, text = run(str(tmp_path / "nope.gor"), "-t", "http://127.0.0.1:9")
    assert code == 2 and "no such file" in text


def test_safety_refusal_exit_2(nginx: NginxServer, tmp_path: Path) -> None:
    host = f"{nginx.host}:{nginx.port}"
    src = write_gor(tmp_path / "in.gor", 3, method="POST", host=host)
    code, text = run(str(src), "-t", nginx.url, "--max")
    assert code == 2 and "refusing to replay POST" in text and "--allow-unsafe-target" in text
    code, text = run(str(src), "-t", nginx.url, "--max", "--allow-unsafe-target")
    assert code == 0, text


def test_report_flags_compare_on_the_fly(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 10)
    rep = tmp_path / "rep"
    code, text = run(str(src), "-t", nginx.url, "--max", "--report", str(rep))
    assert code in (0, 1), text
    assert "replaygate: PASS" in text or "replaygate: FAIL" in text
    for name in ("report.json", "report.xml", "report.md", "report.html"):
        assert (rep / name).is_file(), name


def test_workers_jsonl_output_reads_back_whole(nginx: NginxServer, tmp_path: Path) -> None:
    from replaygate.formats import open_reader

    src = write_gor(tmp_path / "in.gor", 12)
    out = tmp_path / "out.jsonl"
    code, text = run(str(src), "-t", nginx.url, "--max", "--workers", "2", "-o", str(out))
    assert code == 0, text
    back = list(open_reader(out))
    assert len(back) == 12 and all(e.replayed is not None for e in back)
    assert sorted(e.id for e in back) == [f"{i:040x}" for i in range(12)]


def test_config_ramp_and_durations_as_strings(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 200)
    conf = tmp_path / "replaygate.toml"
    conf.write_text(
        f'[replay]\ntargets = ["{nginx.url}"]\nramp = "50:0.2s,100:0.1s"\nconnect_timeout = "1s"\n'
    )
    code, text = run(str(src), "--config", str(conf), "--no-correlate")
    assert code == 0, text
    assert "sent 20," in text and "asked" in text


def test_request_counter_for_eta(tmp_path: Path) -> None:
    from replaygate.cli.replay import _count, count_requests

    data = b"xxAByyABzABz" * 50
    for step in (1, 2, 3, 5, 7, 64):
        assert _count(data, b"AB", step) == 150
    assert count_requests([str(write_gor(tmp_path / "a.gor", 7))]) == 7
    assert count_requests([str(tmp_path / "a.gor"), "x.har"]) is None


def test_loop_rereads_the_files(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 10)
    out = tmp_path / "out.jsonl"
    code, text = run(str(src), "-t", nginx.url, "--max", "--loop", "--limit", "25", "-o", str(out))
    assert code == 0, text
    assert "sent 25," in text
    from replaygate.formats import open_reader

    back = list(open_reader(out))
    assert len({e.id for e in back}) == 25 and sum(e.meta.get("loop") == "2" for e in back) == 5


def test_watch_pid_lands_in_the_report(nginx: NginxServer, tmp_path: Path) -> None:
    import json
    import os

    src = write_gor(tmp_path / "in.gor", 10)
    rep = tmp_path / "rep.json"
    code, text = run(
        str(src), "-t", nginx.url, "--max", "--json", str(rep), "--watch-pid", str(os.getpid())
    )
    assert code in (0, 1), text
    target = json.loads(rep.read_text())["target"]
    assert target, "the watched process's samples are in the summary"


def test_middleware_in_replay_drops_nothing(nginx: NginxServer, tmp_path: Path) -> None:
    """Exchanges the middleware still holds at the end of the source are replayed, not
    counted as dropped; the middleware stays open for the replayed responses."""
    src = write_gor(tmp_path / "in.gor", 60)
    out = tmp_path / "out.gor"
    code, text = run(str(src), "-t", nginx.url, "--max", "--middleware", "cat", "-o", str(out))
    assert code == 0, text
    assert "filtered out" not in text
    assert "sent 60" in text
    assert sum(1 for r in read_records(out) if r.type == 3) == 60


def test_correlation_substitutions_reported(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 5)
    code, text = run(str(src), "-t", nginx.url, "--max")
    assert code == 0, text
    assert "correlation: 0 substitutions" in text  # per-rule counts, never values
    code, text = run(str(src), "-t", nginx.url, "--max", "--no-correlate")
    assert "correlation:" not in text


# --- #12: empty and cut inputs, full disks, targets without a scheme -------------------------


def test_an_empty_input_says_so_and_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gor"
    empty.write_bytes(b"")
    code, text = run(str(empty), "-t", "http://127.0.0.1:9", "--max")
    assert code == 2, text
    assert "nothing to replay: no exchanges in the input" in text.strip().splitlines()[-1]


def test_everything_filtered_out_says_so(tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 3)
    code, text = run(str(src), "-t", "http://127.0.0.1:9", "--max", "--deny-url", ".")
    assert code == 2 and "nothing to replay: every exchange was dropped" in text


def test_a_cut_input_is_replayed_then_reported_exit_2(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 10)
    data = src.read_bytes()
    src.write_bytes(data + data[:50])
    out = tmp_path / "out.gor"
    code, text = run(str(src), "-t", nginx.url, "--max", "-o", str(out))
    assert code == 2, text
    assert "replay: sent 10, answered 10" in text
    last = text.strip().splitlines()[-1]
    assert last == (
        f"replaygate: error: {src} (offset {len(data)}): file is cut inside a record; "
        "every complete record before it was read"
    )
    assert len([r for r in read_records(out) if r.type == 3]) == 10


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_to_a_full_disk_is_one_line_exit_2(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 20)
    out = tmp_path / "full.gor"
    out.symlink_to("/dev/full")
    code, text = run(str(src), "-t", nginx.url, "--max", "-o", str(out))
    assert code == 2, text
    assert "Traceback" not in text
    assert f"replaygate: error: {out}: cannot write: No space left on device" in text


@pytest.mark.parametrize("target", ["127.0.0.1:9", "http//127.0.0.1:9", "localhost"])
def test_a_target_without_scheme_is_an_error(tmp_path: Path, target: str) -> None:
    src = write_gor(tmp_path / "in.gor", 1)
    code, text = run(str(src), "-t", target, "--max")
    assert code == 2
    assert text.strip() == (
        f"replaygate: error: --target: {target!r} is not a URL: give the scheme, "
        "http://HOST[:PORT] or https://HOST[:PORT]"
    )


def test_workers_mask_original_and_replayed_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#15: with --workers and no mask key, every process (and the source and hooks inside
    one) made its own random key, so original and replayed values got different pseudonyms."""
    import http.server
    import threading

    from replaygate.formats import open_reader

    monkeypatch.delenv("REPLAYGATE_MASK_KEY", raising=False)
    body = b'{"token": "abcdef123456"}'

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Set-Cookie", "session=s3cr3tvalue123")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        w = GorWriter(tmp_path / "in.gor")
        for i in range(12):
            w.write(
                make_exchange(
                    "GET",
                    f"/x?i={i}",
                    id=f"{i:040x}",
                    conn=ConnectionId("10.0.0.1", 1000 + i, "10.0.0.2", 80),
                    response_headers=[
                        ("Set-Cookie", "session=s3cr3tvalue123"),
                        ("Content-Type", "application/json"),
                    ],
                    response_body=body,
                )
            )
        w.close()
        out = tmp_path / "out.jsonl"
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        code, text = run(
            str(tmp_path / "in.gor"), "-t", url, "--max", "--workers", "2", "--mask", "-o", str(out)
        )
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(10)
    assert code == 0, text
    got = list(open_reader(out))
    assert len(got) == 12
    for ex in got:
        assert ex.response is not None and ex.replayed is not None
        orig, repl = ex.response.header("set-cookie"), ex.replayed.header("set-cookie")
        assert orig is not None and "s3cr3tvalue123" not in orig
        assert orig == repl, (orig, repl)
        assert ex.response.body() == ex.replayed.body()


def test_unreachable_target_exit_2(tmp_path: Path) -> None:
    """#11: when no request ever reaches the target, the job is wrong (exit 2, one line), not
    the release (and not a success)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused at once
    src = write_gor(tmp_path / "in.gor", 3)
    code, text = run(str(src), "-t", f"http://127.0.0.1:{port}", "--max")
    assert code == 2, text
    assert "the target was unreachable for every request (connect_refused=3)" in text
    assert text.count("replaygate: error:") == 1 and "Traceback" not in text


def test_a_cut_input_with_workers_is_reported_too(nginx: NginxServer, tmp_path: Path) -> None:
    src = write_gor(tmp_path / "in.gor", 10)
    data = src.read_bytes()
    src.write_bytes(data + data[:50])
    code, text = run(str(src), "-t", nginx.url, "--max", "--workers", "2")
    assert code == 2, text
    assert "replay: sent 10, answered 10" in text
    assert (
        text.strip().splitlines()[-1].startswith(f"replaygate: error: {src} (offset {len(data)})")
    )


def test_routes_flag_reaches_the_comparison(nginx: NginxServer, tmp_path: Path) -> None:
    """``replay --routes FILE`` names endpoints as compare and shadow do (it used to be ignored)."""
    import json

    src = write_gor(tmp_path / "in.gor", 10)
    routes = tmp_path / "routes.txt"
    routes.write_text("GET /{page}\n")
    rep = tmp_path / "rep.json"
    code, text = run(
        str(src), "-t", nginx.url, "--max", "--json", str(rep), "--routes", str(routes)
    )
    assert code in (0, 1), text
    assert [e["endpoint"] for e in json.loads(rep.read_text())["endpoints"]] == ["GET /{page}"]
