"""The live recorders' never-blocking sink, in the mode where the producer encodes
(``encode_here``: the proxy writing ``.gor``): same files, same counters, same losses."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from replaygate.errors import CaptureError
from replaygate.formats.gor import GorWriter, write_bytes
from replaygate.model import Exchange
from replaygate.pipeline import Stage
from replaygate.sources._recording import RecordingSink
from replaygate.testing import MemorySink, make_exchange

DEADLINE_S = 30.0  # generous: a busy machine


def _exchanges(n: int) -> list[Exchange]:
    return [make_exchange(target=f"/{i}", response_body=b"ok") for i in range(n)]


def test_encoded_batches_write_every_exchange_in_order(tmp_path: Path) -> None:
    exs = _exchanges(50)
    rs = RecordingSink(GorWriter(tmp_path / "r.gor"), encode_here=True)
    assert rs._encode is not None
    for ex in exs:
        rs.write(ex)
    rs.close()
    assert (tmp_path / "r.gor").read_bytes() == write_bytes(exs)
    st = rs.stats()
    assert st["recorded"] == 50 and st["dropped_recordings"] == 0
    assert st["lost_on_sink_error"] == 0 and rs.submitted == 50


class _Keep:
    name = "keep"

    def process(self, ex: Exchange) -> Sequence[Exchange]:
        return [ex]

    def close(self) -> Sequence[Exchange]:
        return []


def test_stages_or_a_sink_without_encoder_keep_the_exchange_path(tmp_path: Path) -> None:
    stage: Stage = _Keep()
    for rs in (
        RecordingSink(GorWriter(tmp_path / "s.gor"), [stage], encode_here=True),
        RecordingSink(MemorySink(), encode_here=True),
        RecordingSink(GorWriter(tmp_path / "o.gor")),
    ):
        assert rs._encode is None
        rs.write(make_exchange())
        rs.close()
        assert rs.stats()["recorded"] == 1


class _Gated(GorWriter):
    """A writer that blocks in its first batch until released."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_encoded(self, batch: Sequence[list[bytes]]) -> None:
        self.entered.set()
        assert self.release.wait(DEADLINE_S)
        super().write_encoded(batch)


def test_a_full_queue_drops_whole_exchanges_and_counts_them(tmp_path: Path) -> None:
    sink = _Gated(tmp_path / "g.gor")
    rs = RecordingSink(sink, max_queue=4, encode_here=True)
    first, *rest = _exchanges(8)
    rs.write(first)
    assert sink.entered.wait(DEADLINE_S)  # the writer holds `first`, the queue is empty
    for ex in rest:
        rs.write(ex)  # 4 fit, 3 do not
    sink.release.set()
    rs.close()
    st = rs.stats()
    assert st["recorded"] == 5 and st["dropped_recordings"] == 3
    assert (tmp_path / "g.gor").read_bytes() == write_bytes([first, *rest[:4]])


class _Failing(GorWriter):
    def __init__(self, path: Path, *, on_flush: bool) -> None:
        super().__init__(path)
        self.on_flush = on_flush

    def write_encoded(self, batch: Sequence[list[bytes]]) -> None:
        if not self.on_flush:
            raise OSError(28, "No space left on device")
        super().write_encoded(batch)

    def flush(self) -> None:
        if self.on_flush:
            raise OSError(28, "No space left on device")


@pytest.mark.parametrize("on_flush", [False, True])
def test_a_failing_sink_loses_counted_exchanges_and_says_so(tmp_path: Path, on_flush: bool) -> None:
    rs = RecordingSink(_Failing(tmp_path / "f.gor", on_flush=on_flush), encode_here=True)
    for ex in _exchanges(10):
        rs.write(ex)
    with pytest.raises(CaptureError, match=r"No space left on device.*10 exchange\(s\) were lost"):
        rs.close()
    st = rs.stats()
    assert st["recorded"] == 0 and st["lost_on_sink_error"] == 10
    assert rs.failed is not None
