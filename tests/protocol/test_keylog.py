"""NSS key log parsing and following a growing file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replaygate.errors import InputError
from replaygate.protocol.keylog import KeyLog, KeyLogFollower, load_keylog

CR = "ab" * 32
LINE = f"CLIENT_RANDOM {CR} {'11' * 48}\n"
TLS13 = (
    f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR} {'22' * 32}\nSERVER_TRAFFIC_SECRET_0 {CR} {'33' * 48}\n"
)


def test_lines_by_label_and_client_random() -> None:
    k = KeyLog()
    assert k.feed(("# comment\n" + LINE + TLS13).encode()) == 3
    cr = bytes.fromhex(CR)
    assert k.get(cr, "CLIENT_RANDOM") == bytes.fromhex("11" * 48)
    assert k.get(cr, "SERVER_TRAFFIC_SECRET_0") == bytes.fromhex("33" * 48)
    assert k.get(cr, "CLIENT_TRAFFIC_SECRET_0") is None
    assert k.get(bytes(32), "CLIENT_RANDOM") is None
    assert k.stats.secrets == 3


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (f"EXPORTER_SECRET {CR} {'44' * 32}", "ignored"),
        (f"RSA {'00' * 8} {'11' * 48}", "ignored"),
        ("CLIENT_RANDOM zz 11", "malformed"),
        (f"CLIENT_RANDOM {CR[:10]} {'11' * 48}", "malformed"),
        (f"CLIENT_RANDOM {CR}", "malformed"),
        (f"NOT_A_LABEL {CR} 11", "malformed"),
    ],
)
def test_other_lines_are_counted_not_kept(line: str, field: str) -> None:
    k = KeyLog()
    assert k.feed(line.encode() + b"\r\n") == 0
    assert getattr(k.stats, field) == 1
    assert len(k) == 0


def test_a_line_split_across_feeds_and_crlf() -> None:
    k = KeyLog()
    data = LINE.replace("\n", "\r\n").encode()
    assert k.feed(data[:30]) == 0
    assert k.feed(data[30:]) == 1
    assert k.feed(LINE.encode()) == 0  # the same secret again is not new
    last = TLS13.splitlines()[0].encode()
    assert k.feed(last) == 0
    assert k.end() == 1  # a last line without its newline


def test_generation_grows_only_with_new_secrets() -> None:
    k = KeyLog()
    k.feed(LINE.encode())
    g = k.generation
    k.feed(LINE.encode())
    assert k.generation == g
    k.feed(TLS13.encode())
    assert k.generation > g


def test_load_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--tls-keylog: no such file"):
        load_keylog(str(tmp_path / "nope.log"))


def test_follower_reads_appends_waits_for_the_file_and_rereads_after_truncation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.log"
    f = KeyLogFollower(str(path))
    assert f.poll() == 0  # not written yet
    path.write_text(LINE[:40])
    assert f.poll() == 0  # partial line
    with path.open("a") as out:
        out.write(LINE[40:])
    assert f.poll() == 1
    assert f.poll() == 0
    with path.open("a") as out:
        out.write(TLS13)
    assert f.poll() == 2
    path.write_text(f"CLIENT_RANDOM {'cd' * 32} {'55' * 48}\n")  # rewritten, shorter
    assert f.poll() == 1
    assert f.keys.get(bytes.fromhex("cd" * 32), "CLIENT_RANDOM") is not None


@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64))
def test_any_bytes_any_split_never_raise_and_split_does_not_matter(data: bytes, step: int) -> None:
    whole = KeyLog()
    whole.feed(data + b"\n" + LINE.encode())
    pieces = KeyLog()
    blob = data + b"\n" + LINE.encode()
    for i in range(0, len(blob), step):
        pieces.feed(blob[i : i + step])
    assert pieces.get(bytes.fromhex(CR), "CLIENT_RANDOM") == whole.get(
        bytes.fromhex(CR), "CLIENT_RANDOM"
    )
    assert pieces.stats.secrets == whole.stats.secrets


def test_bounded_key_log_forgets_the_oldest_connections() -> None:
    k = KeyLog(max_connections=2)
    for i in range(4):
        k.add_line(f"CLIENT_RANDOM {i:064x} {'11' * 48}")
    assert k.get(bytes.fromhex(f"{0:064x}"), "CLIENT_RANDOM") is None
    assert k.get(bytes.fromhex(f"{3:064x}"), "CLIENT_RANDOM") is not None
    assert len(k) == 2 and k.stats.evicted == 2
    assert KeyLogFollower("x").keys.max_connections == 1_000_000
