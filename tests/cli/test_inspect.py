"""``replaygate inspect``: the summary and the --json contract."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.formats.gor import write_bytes
from replaygate.model import ConnectionId, Flag
from replaygate.testing import make_exchange

KEYS = [
    "id",
    "ts_ns",
    "method",
    "target",
    "host",
    "version",
    "status",
    "request_body_len",
    "response_body_len",
    "latency_ns",
    "complete",
    "flags",
]
HAVE_PCAP = importlib.util.find_spec("replaygate.protocol.assembler") is not None


def _file(tmp_path: Path) -> Path:
    import gzip

    c1 = ConnectionId("10.0.0.1", 1000, "10.0.0.2", 80)
    c2 = ConnectionId("10.0.0.1", 1001, "10.0.0.2", 80)
    exs = [
        make_exchange("GET", "/a?x=1", response_body=b"hello", conn=c1, ts_ns=10**18),
        make_exchange("GET", "/a?x=2", status=404, conn=c1, ts_ns=10**18 + 10**9),
        make_exchange(
            "POST",
            "/b",
            request_body=b"12345",
            response_body=gzip.compress(b"z" * 100),
            response_headers=[("Content-Encoding", "gzip")],
            conn=c2,
            ts_ns=10**18 + 2 * 10**9,
        ),
        make_exchange("GET", "/c", status=None, ts_ns=10**18 + 3 * 10**9),
    ]
    exs[1].flags.add(Flag.RESPONSE_GAP)
    p = tmp_path / "t.gor"
    p.write_bytes(write_bytes(exs))
    return p


def test_summary(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["inspect", str(_file(tmp_path))])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "exchanges:    4 (complete 2, incomplete 2)" in out
    assert "incomplete:   no_response 1, response_gap 1" in out
    assert "connections:  2 (+1 exchanges without connection info)" in out
    assert "methods:      GET 3, POST 1" in out
    assert "status codes: 200 2, 404 1, none 1" in out
    assert "2  GET /a" in out and "1  POST /b" in out
    assert "(3.0 s)" in out
    assert "unparsed/dropped: 0" in out


def test_json_contract(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["inspect", "--json", str(_file(tmp_path))])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert len(rows) == 4
    assert all(list(row) == KEYS for row in rows)
    post = rows[2]
    assert post["request_body_len"] == 5 and post["response_body_len"] == 100  # decoded
    assert rows[3]["status"] is None and rows[3]["response_body_len"] is None
    assert rows[1]["flags"] == ["response_gap"] and rows[1]["complete"] is False
    assert rows[0]["latency_ns"] == 1_000_000 and rows[0]["host"] == "example.test"


def test_reader_drops_are_reported(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        '1.2.3.4 - - [25/Oct/2016:14:49:33 +0200] "GET /x HTTP/1.1" 200 6 "-" "ua"\n'
        "complete garbage\n"
    )
    r = CliRunner().invoke(cli, ["inspect", str(log)])
    assert r.exit_code == 0, r.output
    assert "status codes: 200(logged) 1" in r.output and "no response bytes" in r.output
    assert "unparsed/dropped: 1 (accesslog_unparsable_line=1)" in r.output
    assert f"{log}:2:" in r.output
    r = CliRunner().invoke(cli, ["inspect", "--json", str(log)])
    assert r.exit_code == 0
    assert "dropped 1 (accesslog_unparsable_line=1)" in r.stderr


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replaygate", *args], capture_output=True, text=True, timeout=120
    )


def _one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("replaygate: error: ")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr


def test_bad_inputs_one_line_exit_2(tmp_path: Path) -> None:
    har = tmp_path / "bad.har"
    har.write_text('{"log": {"entries": [}')
    _one_line_error(_run("inspect", str(har)), str(har), "line 1, column", "not a HAR file")
    _one_line_error(_run("inspect", str(tmp_path / "x.unknown")), "unknown file extension")
    _one_line_error(_run("inspect", str(tmp_path / "missing.gor")), "no such file")
    gor = tmp_path / "text.gor"
    gor.write_text("just text\n")
    _one_line_error(_run("inspect", str(gor)), "not a .gor file")


@pytest.mark.skipif(not HAVE_PCAP, reason="pcap reader (protocol.assembler) not built yet")
def test_bad_pcaps_one_line_exit_2(tmp_path: Path) -> None:
    text = tmp_path / "text.pcap"
    text.write_text("hello\n" * 10)
    _one_line_error(_run("inspect", str(text)), str(text))
    trunc = tmp_path / "trunc.pcap"
    # a valid global header and a record header that promises more bytes than the file has
    import struct

    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack("<IIII", 1, 0, 1000, 1000) + b"\x00" * 20
    trunc.write_bytes(hdr + rec)
    r = _run("inspect", str(trunc))
    # a cut capture reads what it can: either a one-line error or a summary noting the cut
    assert "Traceback" not in r.stderr
    assert r.returncode in (0, 2)


def test_several_files_get_a_total(tmp_path: Path) -> None:
    a = _file(tmp_path)
    b = tmp_path / "b.jsonl"
    r = CliRunner().invoke(cli, ["convert", "-q", str(a), str(b)])
    assert r.exit_code == 0
    r = CliRunner().invoke(cli, ["inspect", str(a), str(b)])
    assert r.exit_code == 0, r.output
    assert "total of 2 files" in r.output
    assert r.output.count("exchanges:    4 (complete 2, incomplete 2)") == 2
    assert "exchanges:    8 (complete 4, incomplete 4)" in r.output
    assert "connections:  2 (+2 exchanges without connection info)" in r.output


def test_tls_keylog_decrypts_and_names_a_missing_file(tmp_path: Path) -> None:
    from tests.protocol.tlsconv import converse, pcap_bytes, segments

    kl = tmp_path / "keys.log"
    req = b"GET /secret HTTP/1.1\r\nHost: shop.test\r\n\r\n"
    conv, _ = converse([(req, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")], str(kl))
    cap = tmp_path / "https.pcap"
    cap.write_bytes(pcap_bytes(segments(conv.flights)))
    r = CliRunner().invoke(cli, ["inspect", str(cap), "--json", "--tls-keylog", str(kl)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.splitlines()[0])["target"] == "/secret"
    _one_line_error(_run("inspect", str(cap), "--tls-keylog", str(tmp_path / "no")),
                    "--tls-keylog", "no such readable file")  # fmt: skip
    r = CliRunner().invoke(cli, ["inspect", str(cap)])  # without keys: counted, not silent
    assert r.exit_code == 0 and "pcap.tls_flows: 1" in r.output
    assert "1 TLS connections not decrypted (give --tls-keylog FILE)" in r.output
    r = CliRunner().invoke(cli, ["inspect", str(cap), "--tls-keylog", str(kl)])
    assert "https:        1 TLS connections, 1 decrypted to HTTP/1" in r.output
