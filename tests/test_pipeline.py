"""The pipeline's sinks: BoundedSink (the live recorders' queue and writer thread)."""

from __future__ import annotations

import threading

import pytest

from replaygate.model import Exchange
from replaygate.pipeline import BoundedSink, Counters
from replaygate.testing import make_exchange


class GatedSink:
    """Writes wait for ``gate``; the first write says it started."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.got: list[str] = []
        self.fail_at = fail_at
        self.closed = False

    def write(self, ex: Exchange) -> None:
        self.started.set()
        assert self.gate.wait(30)
        if self.fail_at is not None and len(self.got) == self.fail_at:
            raise OSError(28, "No space left on device")
        self.got.append(ex.id)

    def close(self) -> None:
        self.closed = True


def test_writes_in_order_and_drops_what_does_not_fit() -> None:
    inner = GatedSink()
    counters = Counters()
    sink = BoundedSink(inner, maxsize=3, counters=counters)
    exs = [make_exchange(id=f"e{i}") for i in range(8)]
    sink.write(exs[0])
    assert inner.started.wait(30)  # e0 is taken by the writer and waits in the inner sink
    for ex in exs[1:]:
        sink.write(ex)  # never blocks: e1..e3 queue, e4..e7 do not fit
    assert sink.pending == 3
    inner.gate.set()
    sink.close()
    assert inner.got == ["e0", "e1", "e2", "e3"] and inner.closed
    assert counters.dropped["backpressure"] == 4


def test_an_inner_error_stops_writing_and_is_raised_by_close() -> None:
    inner = GatedSink(fail_at=1)
    inner.gate.set()
    sink = BoundedSink(inner)
    for i in range(5):
        sink.write(make_exchange(id=f"e{i}"))
    with pytest.raises(OSError, match="No space"):
        sink.close()
    assert inner.got == ["e0"] and inner.closed
    assert sink.counters.dropped["sink_error"] == 4


class Twice:
    """Drops /drop, doubles /twice (an injected copy), keeps the rest."""

    name = "twice"

    def process(self, ex: Exchange) -> tuple[Exchange, ...]:
        if ex.request.target == "/drop":
            return ()
        if ex.request.target == "/twice":
            cp = ex.copy()
            cp.id += "-copy"
            return (ex, cp)
        return (ex,)

    def close(self) -> tuple[Exchange, ...]:
        return ()


class ListSink:
    def __init__(self) -> None:
        self.got: list[str] = []

    def write(self, ex: Exchange) -> None:
        self.got.append(ex.id)

    def close(self) -> None:
        pass


def test_push_and_pull_modes_give_the_same_exchanges_and_counts() -> None:
    from replaygate.pipeline import iter_through, run_pipeline

    def source() -> list[Exchange]:
        return [make_exchange(target=t, id=t) for t in ("/a", "/drop", "/twice", "/b")]

    sink = ListSink()
    pushed = run_pipeline(source(), [Twice(), Twice()], sink)
    pulled = Counters()
    got = [ex.id for ex in iter_through(source(), [Twice(), Twice()], pulled)]
    assert (
        got == sink.got == ["/a", "/twice", "/twice-copy", "/twice-copy", "/twice-copy-copy", "/b"]
    )
    assert pushed.read == pulled.read == 4
    assert pushed.dropped == pulled.dropped == {"twice": 1}
