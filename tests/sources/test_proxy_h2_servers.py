"""The HTTP/2 proxy in front of real and misbehaving HTTP/2 servers on 127.0.0.1:
hypercorn serving a JSON API (recorded with curl through the proxy, replayed with
``replay --http2`` to the same version and to a changed one, compared), and a scripted h2
server that sends GOAWAY, refuses and resets streams and keeps its windows small."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.formats import open_reader
from replaygate.formats.gor import GorWriter
from replaygate.sources.proxy import ProxyConfig, ProxyServer
from replaygate.testing import MemorySink

from ..replay._h2servers import Hypercorn, RawH2Server
from .h2client import H2Request, h2_exchange

pytest.importorskip("hypercorn")


def _run(*args: str) -> int:
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r.exit_code


def test_hypercorn_json_api_recorded_replayed_and_judged(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    rec = tmp_path / "api.gor"
    paths = [f"/api/items/{i}" for i in (1, 2, 3, 13)]
    with Hypercorn(1) as v1, Hypercorn(2) as v2:
        cfg = ProxyConfig(upstream=v1.url, listen="127.0.0.1:0", upstream_http2=True)
        with ProxyServer(cfg, GorWriter(rec)) as px:
            for path in paths:
                out = subprocess.run(
                    ["curl", "-sS", "--http2-prior-knowledge", f"http://127.0.0.1:{px.port}{path}"],
                    capture_output=True, timeout=60, check=True,
                ).stdout  # fmt: skip
                assert json.loads(out)["id"] == int(path.rsplit("/", 1)[1])
        assert {v for v, _, _ in v1.seen} == {"2"}  # hypercorn was spoken to in HTTP/2
        reports: dict[str, tuple[int, dict[str, Any]]] = {}
        for name, target in (("v1", v1), ("v2", v2)):
            out_file, js = tmp_path / f"{name}.gor", tmp_path / f"{name}.json"
            assert _run("replay", str(rec), "--target", target.url, "--http2",
                        "-o", str(out_file), "--no-progress") == 0  # fmt: skip
            code = _run("compare", str(out_file), "-q", "--json", str(js))
            reports[name] = (code, json.loads(js.read_text()))
    recorded = list(open_reader(rec))
    assert sorted(e.request.target for e in recorded) == sorted(paths)
    assert all(e.request.version == "HTTP/2" and e.complete for e in recorded)
    assert reports["v1"][0] == 0
    code, report = reports["v2"]
    assert code == 1
    failing = {
        ep["endpoint"]: sorted(
            (f["field"], f["count"]) for f in ep["fields"] if f["status"] == "regression"
        )
        for ep in report["endpoints"]
        if ep["verdict"] == "fail"
    }
    # exactly the two changes of v2: item 3's price, item 13's status
    assert failing == {"GET /api/items/{int}": [("body:$.price", 1), ("status", 1)]}, failing


def test_misbehaving_h2_upstream(tmp_path: Path) -> None:
    """GOAWAY after the first stream (later streams go on a new connection), REFUSED_STREAM
    passed on (the client may retry), a reset after the head, 1 KiB windows for a large body."""
    with RawH2Server() as up:
        sink = MemorySink()
        cfg = ProxyConfig(upstream=up.url, listen="127.0.0.1:0", upstream_http2=True)
        with ProxyServer(cfg, sink) as px:
            (first,) = h2_exchange(px.port, [H2Request("/goaway")])
            (after,) = h2_exchange(px.port, [H2Request("/goaway")])
            refused, reset, small = h2_exchange(
                px.port,
                [H2Request("/refuse"), H2Request("/reset"),
                 H2Request("/small-window", "POST", b"z" * 200_000)],
            )  # fmt: skip
        st = px.stats
    assert first.status == after.status == 200
    assert refused.reset == 7  # REFUSED_STREAM, as the upstream said
    assert reset.reset is not None and reset.status in (0, 200)
    assert small.status == 200 and json.loads(small.body)["len"] == 200_000
    assert st["h2_resets_from_upstream"] >= 2
    assert st["errors"] == 0
    got = {e.request.target: e for e in sink.exchanges}
    assert got["/small-window"].request.body() == b"z" * 200_000 and got["/small-window"].complete
    assert got["/reset"].meta["h2.reset"] == "INTERNAL_ERROR"
