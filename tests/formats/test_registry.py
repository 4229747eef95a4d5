"""The format registry: plugins register the way NATS does, through ``register_format``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from replaygate import formats
from replaygate.errors import UnknownFormatError
from replaygate.formats import FormatPlugin, ReadOptions, format_of, open_reader, register_format
from replaygate.model import Exchange
from replaygate.testing import make_exchange

SEEN: list[str] = []


def read(path: str, options: ReadOptions) -> Iterator[Exchange]:
    SEEN.append(path)
    yield make_exchange()


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_FORMATS", dict(formats._FORMATS))
    monkeypatch.setattr(formats, "_EXTENSIONS", dict(formats._EXTENSIONS))
    monkeypatch.setattr(formats, "_PREFIXES", dict(formats._PREFIXES))


def test_nats_is_a_registered_plugin() -> None:
    assert format_of("nats://127.0.0.1:4222/traffic") == "nats"
    assert format_of("tls://127.0.0.1:4222/traffic") == "nats"


@pytest.mark.usefixtures("registry")
def test_a_plugin_by_extension_and_prefix(tmp_path: Path) -> None:
    register_format(
        FormatPlugin("mine", reader=f"{__name__}:read", extensions=(".mine",), prefixes=("mem://",))
    )
    assert format_of(tmp_path / "a.MINE") == "mine"
    assert [ex.request.method for ex in open_reader("mem://x")] == ["GET"]
    assert SEEN[-1] == "mem://x"
    with pytest.raises(UnknownFormatError, match="can be read but not written"):
        formats.open_writer("mem://x")


def test_unknown_extension_still_one_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError, match="unknown file extension"):
        format_of(tmp_path / "a.nope")
