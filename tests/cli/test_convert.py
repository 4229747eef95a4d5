"""``replaygate convert``: formats by extension, stages, rotation, one summary line."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.formats import open_reader, open_writer
from replaygate.formats.gor import read_exchanges, write_bytes
from replaygate.testing import make_exchange

HAVE_PCAP = importlib.util.find_spec("replaygate.protocol.assembler") is not None


def _gor(path: Path, n: int = 5) -> list[str]:
    exs = [
        make_exchange("GET" if i % 2 == 0 else "POST", f"/item/{i}", response_body=b"x" * 50)
        for i in range(n)
    ]
    path.write_bytes(write_bytes(exs))
    return [e.id for e in exs]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replaygate", *args], capture_output=True, text=True, timeout=120
    )


def test_help() -> None:
    r = CliRunner().invoke(cli, ["convert", "--help"])
    assert r.exit_code == 0
    for flag in ("--log-format", "--max-bytes", "--max-seconds", "IN... OUT"):
        assert flag in r.output


@pytest.mark.parametrize("out", ["o.har", "o.jsonl", "o.gor.gz", "o.gor.zst"])
def test_gor_to_other_formats_and_back(tmp_path: Path, out: str) -> None:
    src = tmp_path / "in.gor"
    ids = _gor(src)
    r = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / out)])
    assert r.exit_code == 0, r.output
    assert "read 5, written 5, dropped 0, incomplete 0" in r.stderr
    back = tmp_path / "back.gor"
    r = CliRunner().invoke(cli, ["convert", "-q", str(tmp_path / out), str(back)])
    assert r.exit_code == 0, r.output
    assert [e.id for e in read_exchanges(back)] == ids
    assert back.read_bytes() == src.read_bytes()  # byte-exact through every format of ours


def test_several_inputs_and_stages(tmp_path: Path) -> None:
    a, b = tmp_path / "a.gor", tmp_path / "b.jsonl"
    _gor(a, 4)
    _gor(tmp_path / "tmp.gor", 3)
    CliRunner().invoke(cli, ["convert", "-q", str(tmp_path / "tmp.gor"), str(b)])
    out = tmp_path / "o.jsonl"
    r = CliRunner().invoke(cli, ["convert", str(a), str(b), "--deny-method", "POST", str(out)])
    assert r.exit_code == 0, r.output
    assert "read 7, written 4, dropped 3 (filter=3)" in r.stderr
    assert [json.loads(x)["method"] for x in out.read_text().splitlines()] == ["GET"] * 4


def test_rotation_by_size(tmp_path: Path) -> None:
    src = tmp_path / "in.gor"
    _gor(src, 40)
    r = CliRunner().invoke(
        cli, ["convert", str(src), "--max-bytes", "2kb", str(tmp_path / "r.gor")]
    )
    assert r.exit_code == 0, r.output
    files = sorted(tmp_path.glob("r_*.gor"), key=lambda p: int(p.stem.split("_")[1]))
    assert len(files) > 2
    assert sum(len(list(read_exchanges(f))) for f in files) == 40


def test_access_log_with_host_and_reasons(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        '1.2.3.4 - - [25/Oct/2016:14:49:33 +0200] "GET /x HTTP/1.1" 200 6 "-" "ua"\n'
        '1.2.3.4 - - [25/Oct/2016:14:49:34 +0200] "POST /y HTTP/1.1" 201 6 "-" "ua"\n'
        '1.2.3.4 - - [25/Oct/2016:14:49:35 +0200] "" 400 0 "-" "-"\n'
    )
    out = tmp_path / "o.gor"
    r = CliRunner().invoke(
        cli, ["convert", "-v", str(log), "--log-format", "nginx", "--host", "shop.test", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "accesslog_method_not_replayable=1" in r.stderr
    assert "accesslog_empty_request=1" in r.stderr
    assert f"{log}:2:" in r.stderr  # -v prints the notes with line numbers
    (ex,) = list(open_reader(out))
    assert ex.request.host == "shop.test" and ex.meta["status"] == "200"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["in.gor", "out.pcap"], "cannot write"),
        (["in.gor", "out.xyz"], "unknown file extension"),
        (["nope.gor", "out.gor"], "nope.gor: no such file"),
        (["in.gor", "out.har", "--max-bytes", "1mb"], "rotation is for .gor"),
        (["in.gor", "out.har", "--append"], "--append"),
        (["in.gor", "out.gor", "--max-bytes", "lots"], "--max-bytes"),
        (["in.gor", "in.gor"], "output is also an input"),
        (["in.gor", "out.gor", "--allow-url", "("], "--allow-url"),
    ],
)
def test_user_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    _gor(tmp_path / "in.gor")
    full = [str(tmp_path / a) if a.endswith((".gor", ".har", ".pcap", ".xyz")) else a for a in args]
    r = _run("convert", *full)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert r.stderr.startswith("replaygate: error: ")
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_bad_har_leaves_no_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.har"
    bad.write_text("<html>not json</html>")
    out = tmp_path / "out.gor"
    r = _run("convert", str(bad), str(out))
    assert r.returncode == 2
    assert r.stderr.startswith(f"replaygate: error: {bad} (offset 0): not a HAR file")
    assert not out.exists()


@pytest.mark.skipif(not HAVE_PCAP, reason="pcap reader (protocol.assembler) not built yet")
def test_bad_pcaps_through_the_cli(tmp_path: Path) -> None:
    text = tmp_path / "text.pcap"
    text.write_text("this is a text file\n")
    r = _run("convert", str(text), str(tmp_path / "o.gor"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"replaygate: error: {text}")


@pytest.mark.parametrize("out", ["o.jsonl", "o.gor"])
def test_append(tmp_path: Path, out: str) -> None:
    src = tmp_path / "in.gor"
    _gor(src, 3)
    for _ in range(2):
        r = CliRunner().invoke(cli, ["convert", "-q", "--append", str(src), str(tmp_path / out)])
        assert r.exit_code == 0, r.output
    assert len(list(open_reader(tmp_path / out))) == 6 or out == "o.gor"
    if out == "o.gor":  # same ids twice: still every record there
        from replaygate.formats.gor import read_records

        assert len(list(read_records(tmp_path / out))) == 12


def test_help_says_outputs_are_overwritten() -> None:
    """convert is a converter (cp-like) and keeps overwriting; recorders refuse instead."""
    r = CliRunner().invoke(cli, ["convert", "--help"])
    assert r.exit_code == 0
    assert "overwritten" in r.output and "--append" in r.output


# --- cut inputs, full disks, partial outputs, limits (#12) ----------------------------------


def _cut_inputs(tmp_path: Path) -> dict[str, Path]:
    """The same 40 exchanges in every writable format (compressed too), each cut at 2/3."""
    import gzip

    import zstandard

    exs = [make_exchange("GET", f"/{i}", response_body=bytes(range(256)) * 4) for i in range(40)]
    out: dict[str, Path] = {}
    for ext in (".gor", ".jsonl", ".har"):
        p = tmp_path / f"all{ext}"
        w = open_writer(p)
        for ex in exs:
            w.write(ex)
        w.close()
        out[ext] = p
    raw = {
        ".gor.gz": gzip.compress(out[".gor"].read_bytes()),
        ".jsonl.gz": gzip.compress(out[".jsonl"].read_bytes()),
        ".gor.zst": zstandard.ZstdCompressor().compress(out[".gor"].read_bytes()),
    }
    for ext, data in raw.items():
        out[ext] = tmp_path / f"all{ext}"
        out[ext].write_bytes(data)
    cut = {}
    for ext, p in out.items():
        data = p.read_bytes()
        cut[ext] = tmp_path / f"cut{ext}"
        cut[ext].write_bytes(data[: len(data) * 2 // 3])
    return cut


@pytest.mark.parametrize("ext", [".gor", ".jsonl", ".har", ".gor.gz", ".jsonl.gz", ".gor.zst"])
def test_a_cut_input_of_any_format_is_written_then_reported_exit_2(
    tmp_path: Path, ext: str
) -> None:
    cut = _cut_inputs(tmp_path)[ext]
    out = tmp_path / "out.jsonl"
    r = _run("convert", str(cut), str(out))
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"replaygate: error: {cut}") and "cut" in last, r.stderr
    assert "Traceback" not in r.stderr
    got = [e.request.target for e in open_reader(out)]
    assert got == [f"/{i}" for i in range(len(got))]
    if not ext.endswith(".zst"):  # zstd emits whole blocks only: a 2/3 cut may hold none
        assert 0 < len(got) < 40


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("ext", [".gor", ".jsonl", ".har"])
def test_a_full_disk_is_one_line_exit_2(tmp_path: Path, ext: str) -> None:
    src = tmp_path / "in.gor"
    _gor(src, 50)
    out = tmp_path / f"full{ext}"
    out.symlink_to("/dev/full")
    r = _run("convert", str(src), str(out))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"replaygate: error: {out}: cannot write: No space left on device" in r.stderr


def test_a_failed_conversion_says_its_output_is_partial(tmp_path: Path) -> None:
    good = write_bytes([make_exchange("GET", f"/{i}") for i in range(3)])
    src2 = tmp_path / "bad.jsonl"
    src2.write_bytes(b"{nope}\n")
    out = tmp_path / "out.gor"
    (tmp_path / "ok.gor").write_bytes(good)
    r = _run("convert", str(tmp_path / "ok.gor"), str(src2), str(out))
    assert r.returncode == 2
    assert f"{out} is incomplete: it holds the 3 exchange(s) converted before the error" in r.stderr
    assert len(list(open_reader(out))) == 3


@pytest.mark.parametrize("ext", [".gor", ".har", ".jsonl", ".log"])
def test_dev_zero_named_like_a_traffic_file_fails_fast(tmp_path: Path, ext: str) -> None:
    link = tmp_path / f"zero{ext}"
    link.symlink_to("/dev/zero")
    r = _run("convert", str(link), str(tmp_path / "out.gor"))
    assert r.returncode == 2
    assert r.stderr.startswith(f"replaygate: error: {link} (offset 0): "), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_max_record_size_flag(tmp_path: Path) -> None:
    src = tmp_path / "in.gor"
    src.write_bytes(write_bytes([make_exchange("POST", "/", request_body=b"z" * 5000)]))
    r = _run("convert", "--max-record-size", "4kb", str(src), str(tmp_path / "o.gor"))
    assert r.returncode == 2 and "record is longer than 4KiB (limit: --max-record-size)" in r.stderr
    r = _run("convert", "--max-record-size", "10", str(src), str(tmp_path / "o.gor"))
    assert r.returncode == 2 and "--max-record-size: must be at least 1KiB" in r.stderr


def test_a_really_full_disk_is_one_line_and_no_partial_file(
    tmp_path: Path, full_disk: Path
) -> None:
    src = tmp_path / "in.gor"
    _gor(src, 200)
    out = full_disk / "out.gor"
    r = _run("convert", str(src), str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"replaygate: error: {out}: cannot write: No space left on device" in r.stderr
    assert not out.exists() or "is incomplete" in r.stderr


def test_tls_keylog_only_for_captures(tmp_path: Path) -> None:
    kl = tmp_path / "keys.log"
    kl.write_text("")
    har = tmp_path / "in.har"
    har.write_text('{"log": {"entries": []}}')
    r = _run("convert", str(har), str(tmp_path / "o.gor"), "--tls-keylog", str(kl))
    assert r.returncode == 2 and "--tls-keylog: only pcap/pcapng" in r.stderr, r.stderr
