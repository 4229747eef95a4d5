"""Versioned .gor metadata: the current version is stamped, older ones are upgraded."""

from __future__ import annotations

from pathlib import Path

import pytest

from replaygate.formats import _gor_compat
from replaygate.formats.gor import META_VERSION, parse_bytes, read_exchanges, write_bytes
from replaygate.testing import make_exchange

GOLDEN_V1 = Path(__file__).parent / "golden" / "encode.gor"  # every field of version 1


def _header(data: bytes) -> str:
    return data.split(b"\n", 1)[0].decode()


def test_writer_stamps_the_current_version() -> None:
    data = write_bytes([make_exchange()])
    assert f" rg.v={META_VERSION} " in _header(data) + " "
    assert int(META_VERSION) == _gor_compat.META_VERSION


def _view(path: Path) -> list[tuple[object, ...]]:
    return [
        (ex.summary(), ex.meta, ex.session, ex.conn, ex.seq, ex.replay_error)
        for ex in read_exchanges(str(path))
    ]


def test_version_1_fixture_still_reads_the_same(tmp_path: Path) -> None:
    data = GOLDEN_V1.read_bytes()
    assert " rg.v=1 " in _header(data)
    first = tmp_path / "v1.gor"
    first.write_bytes(data)
    again = tmp_path / "again.gor"
    again.write_bytes(write_bytes(list(read_exchanges(str(first)))))
    view = _view(first)
    assert len(view) == data.count(b"\n1 ") + 1
    assert _view(again) == view


def test_upgrade_runs_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    def convert_1_2(req: dict[str, str], others: list[dict[str, str]]) -> None:
        req["session"] = req.pop("sess")
        for o in others:
            o.pop("old", None)

    def convert_2_3(req: dict[str, str], others: list[dict[str, str]]) -> None:
        req["sess"] = req.pop("session")

    monkeypatch.setattr(_gor_compat, "META_VERSION", 3)
    monkeypatch.setattr(_gor_compat, "CONVERTERS", {1: convert_1_2, 2: convert_2_3})
    req, other = {"v": "1", "sess": "s"}, {"old": "x", "tf": "1"}
    _gor_compat.upgrade(req, [other])
    assert req == {"v": "3", "sess": "s"} and other == {"tf": "1"}
    newer = {"v": "4", "sess": "s"}
    _gor_compat.upgrade(newer, [])
    assert newer == {"v": "4", "sess": "s"}


def test_newer_version_is_read_as_far_as_known(tmp_path: Path) -> None:
    data = write_bytes([make_exchange(session="s1")])
    path = tmp_path / "v9.gor"
    path.write_bytes(data.replace(b" rg.v=1 ", b" rg.v=9 rg.future=x ", 1))
    assert len(parse_bytes(path.read_bytes())) == 2
    (ex,) = read_exchanges(str(path))
    assert ex.session == "s1"
