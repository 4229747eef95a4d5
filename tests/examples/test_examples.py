"""The shipped examples run for real: middleware through the stage and through
``replaygate convert --middleware``, plugins through ``--plugin``."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from replaygate.formats.gor import read_exchanges, write_bytes
from replaygate.model import Exchange, Flag
from replaygate.pipeline import run_pipeline
from replaygate.stages.middleware import MiddlewareConfig, MiddlewareStage
from replaygate.stages.plugins import load_plugin_stage
from replaygate.testing import MemorySink, make_exchange

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PY = shlex.quote(sys.executable)
REPLAYGATE = Path(sys.executable).with_name("replaygate")

MIDDLEWARE = {
    "echo.sh": f"bash {EXAMPLES / 'middleware/echo.sh'}",
    "echo.py": f"{PY} {EXAMPLES / 'middleware/echo.py'}",
    "gor_rewrite.py": f"{PY} {EXAMPLES / 'middleware/gor_rewrite.py'}",
}


def traffic() -> list[Exchange]:
    exs = [
        make_exchange("GET", f"/v1/users/{i}", response_body=b'{"id": %d}\n' % i, id=f"{i:024x}")
        for i in range(20)
    ]
    exs.append(make_exchange("GET", "/healthz", response_body=b"ok\n", id="f" * 24))
    exs.append(make_exchange("POST", "/v1/orders", request_body=b'{"n": 1}', id="e" * 24))
    return exs


def _run_stage(cmd: str) -> list[Exchange]:
    sink = MemorySink()
    c = run_pipeline(traffic(), [MiddlewareStage(MiddlewareConfig(command=cmd))], sink)
    assert c.written == 22 and not c.dropped
    return sink.exchanges


@pytest.mark.parametrize("name", ["echo.sh", "echo.py"])
def test_echo_examples_through_stage(name: str) -> None:
    out = _run_stage(MIDDLEWARE[name])
    assert [e.request.raw for e in out] == [e.request.raw for e in traffic()]
    assert [e.response.raw for e in out if e.response] == [
        e.response.raw for e in traffic() if e.response
    ]


def test_gor_package_middleware_through_stage() -> None:
    pytest.importorskip("gor")
    out = _run_stage(MIDDLEWARE["gor_rewrite.py"])
    assert out[0].request.target == "/v2/users/0"
    assert out[0].request.header("x-replayed-by") == "gor-middleware"
    assert Flag.MODIFIED in out[0].flags
    assert out[20].request.target == "/healthz"  # not under /v1/: path kept, header added
    assert out[21].request.body() == b'{"n": 1}'
    assert out[5].response is not None and out[5].response.body() == b'{"id": 5}\n'


def _convert(tmp_path: Path, *args: str) -> tuple[list[Exchange], str]:
    src = tmp_path / "in.gor"
    src.write_bytes(write_bytes(traffic()))
    dst = tmp_path / "out.gor"
    proc = subprocess.run(
        [str(REPLAYGATE), "convert", str(src), str(dst), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    return list(read_exchanges(dst)), proc.stderr


@pytest.mark.parametrize("name", sorted(MIDDLEWARE))
def test_middleware_examples_through_convert(tmp_path: Path, name: str) -> None:
    if name == "gor_rewrite.py":
        pytest.importorskip("gor")
    out, err = _convert(tmp_path, "--middleware", MIDDLEWARE[name])
    assert len(out) == 22
    assert "read 22, written 22" in err
    if name == "gor_rewrite.py":
        assert out[3].request.target == "/v2/users/3"
    else:
        assert "[middleware] " in err  # the echo examples log on stderr: passed through
        assert [e.request.raw for e in out] == [e.request.raw for e in traffic()]


def test_plugins_through_convert(tmp_path: Path) -> None:
    out, _err = _convert(
        tmp_path,
        "--plugin",
        f"{EXAMPLES / 'plugins/drop_health.py'}:DropHealth",
        "--plugin",
        str(EXAMPLES / "plugins/add_header.py"),
    )
    assert [e.request.path for e in out] == [
        *[e.request.path for e in traffic()][:20],
        "/v1/orders",
    ]
    assert all(e.request.header("x-replayed-by") == "replaygate" for e in out)
    assert all(Flag.MODIFIED in e.flags for e in out)
    assert out[-1].request.body() == b'{"n": 1}'


def test_drop_health_plugin_counts() -> None:
    stage = load_plugin_stage(f"{EXAMPLES / 'plugins/drop_health.py'}:DropHealth")
    sink = MemorySink()
    c = run_pipeline(traffic(), [stage], sink)
    assert c.dropped["plugin"] == 1
    assert (stage.plugin.dropped, stage.plugin.kept) == (1, 21)


@pytest.mark.conformance
@pytest.mark.parametrize("name", sorted(MIDDLEWARE))
def test_real_goreplay_recording_through_middleware(corpus: Path, name: str) -> None:
    """A real GoReplay recording (old 3-field headers, cookies, CSRF tokens, JSON POSTs)
    through each example middleware: 101 requests in, 101 out, byte-identical for the echoes."""
    if name == "gor_rewrite.py":
        pytest.importorskip("gor")
    exs = list(read_exchanges(corpus / "ecommerce-workshop/requests_0.gor"))
    assert len(exs) == 101
    sink = MemorySink()
    c = run_pipeline(exs, [MiddlewareStage(MiddlewareConfig(command=MIDDLEWARE[name]))], sink)
    assert c.written == 101 and not c.dropped
    out = sink.exchanges
    assert [e.id for e in out] == [e.id for e in exs]
    if name == "gor_rewrite.py":
        assert all(e.request.header("x-replayed-by") == "gor-middleware" for e in out)
        assert [e.request.body() for e in out] == [e.request.body() for e in exs]
    else:
        assert [e.request.raw for e in out] == [e.request.raw for e in exs]


@pytest.mark.conformance
def test_real_goreplay_recording_filters_and_sampling(corpus: Path) -> None:
    from replaygate.cli._options import stages_from_options

    exs = list(read_exchanges(corpus / "ecommerce-workshop/requests_0.gor"))
    sink = MemorySink()
    run_pipeline(exs, stages_from_options({"allow_method": ("POST",)}), sink)
    assert len(sink.exchanges) == 2
    assert sink.exchanges[0].request.path == "/api/v2/storefront/cart/add_item"
    # one browser (one guest_token; the Rails session cookie rotates): consistent sampling by
    # the user's cookie keeps all of it or nothing, the same on every run
    kept = []
    for pct in ("50%", "50%", "100%"):
        sink = MemorySink()
        opts = {"sample": pct, "sample_by": "cookie:guest_token"}
        run_pipeline(exs, stages_from_options(opts), sink)
        kept.append(len(sink.exchanges))
    assert kept[0] == kept[1] and kept[0] in (0, 101) and kept[2] == 101


def test_gor_package_limit_binary_bodies_are_dropped_and_counted(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The documented limit of the PyPI ``gor`` package: it decodes payloads as UTF-8, so a
    binary body makes it drop the message. replaygate counts the drop and shows its stderr."""
    pytest.importorskip("gor")
    exs = [
        make_exchange("POST", "/v1/img", request_body=b"\xff\xd8\xff\xe0binary", id="b" * 24),
        make_exchange("GET", "/v1/ok", id="c" * 24),
    ]
    sink = MemorySink()
    stage = MiddlewareStage(MiddlewareConfig(command=MIDDLEWARE["gor_rewrite.py"]))
    c = run_pipeline(exs, [stage], sink)
    assert [e.request.target for e in sink.exchanges] == ["/v2/ok"]
    assert c.dropped["middleware"] == 1
    assert "[middleware] Error while parsing incoming request" in capfd.readouterr().err


def test_middleware_and_plugin_through_the_recording_proxy(nginx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Stages run in the proxy's recorder: traffic flows unchanged to the client, the
    recording holds what the middleware and plugin made of it."""
    import time
    import urllib.error
    import urllib.request

    from replaygate.testing.servers import free_port, wait_for_port

    port = free_port()
    out = tmp_path / "rec.gor"
    proc = subprocess.Popen(
        [
            str(REPLAYGATE), "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", nginx.url,
            "-o", str(out), "--duration", "20s",
            "--middleware", MIDDLEWARE["echo.py"],
            "--plugin", f"{EXAMPLES / 'plugins/drop_health.py'}:DropHealth",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, timeout=20)
        for path in ("/json", "/healthz", "/static/hello.txt", "/json"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                    r.read()
            except urllib.error.HTTPError as e:
                e.close()
        time.sleep(0.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    recorded = list(read_exchanges(out))
    assert [e.request.path for e in recorded] == ["/json", "/static/hello.txt", "/json"]
    assert [e.response.status for e in recorded if e.response] == [200, 200, 200]
    assert "[middleware] " in err
