from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from replaygate.errors import FormatError
from replaygate.formats import ReadOptions, open_reader
from replaygate.model import Flag

mitm_io = pytest.importorskip("mitmproxy.io")
tflow = pytest.importorskip("mitmproxy.test.tflow")


def _write(path: Path, flows: list[object]) -> None:
    with path.open("wb") as f:
        w = mitm_io.FlowWriter(f)
        for fl in flows:
            w.add(fl)


def test_http1_flow_and_error_flow(tmp_path: Path) -> None:
    ok = tflow.tflow(resp=True)
    ok.request.headers["Content-Encoding"] = "gzip"
    ok.request.raw_content = b"\x1f\x8bnot-really"
    err = tflow.tflow(err=True)
    h2 = tflow.tflow(resp=True)
    h2.request.http_version = "HTTP/2.0"
    h2.request.headers[":authority"] = "h2.test"
    tcp = tflow.ttcpflow()
    p = tmp_path / "f.mitm"
    _write(p, [ok, err, h2, tcp])
    opts = ReadOptions()
    exs = list(open_reader(p, opts))
    assert len(exs) == 3
    a, b, c = exs
    assert a.id == ok.id
    assert a.request.method == ok.request.method and a.request.target == ok.request.path
    assert a.request.body() == b"\x1f\x8bnot-really"  # raw (encoded) bytes kept
    assert a.request.header("content-length") == str(len(b"\x1f\x8bnot-really"))
    assert a.response is not None and a.response.status == ok.response.status_code
    assert a.response.body() == ok.response.raw_content
    assert a.conn is not None and a.latency_ns is not None
    assert b.response is None and Flag.NO_RESPONSE in b.flags and "error" in b.meta
    assert c.meta["source_version"] == "HTTP/2" and c.request.version == "HTTP/1.1"
    assert b":authority" not in c.request.raw
    assert opts.counters.dropped["mitm_not_http"] == 1


def test_not_a_flow_file(tmp_path: Path) -> None:
    p = tmp_path / "x.mitm"
    p.write_bytes(b"this is not a tnetstring")
    with pytest.raises(FormatError, match=r"x\.mitm"):
        list(open_reader(p))


def test_missing_mitmproxy_gives_install_hint(tmp_path: Path) -> None:
    p = tmp_path / "x.mitm"
    p.write_bytes(b"")
    code = (
        "import sys; sys.modules['mitmproxy'] = None\n"
        "from replaygate.cli import main\n"
        f"main(['inspect', {str(p)!r}])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "pip install 'replaygate[mitm]'" in r.stderr
    assert "Traceback" not in r.stderr
