"""What the HTTP/2 replay tests share: a ``--http2 --max`` replay of some exchanges, and a
``.gor`` recording of them for the CLI."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from replaygate.formats.gor import GorWriter
from replaygate.model import Exchange
from replaygate.replay import ReplayConfig, ReplayStats, run_replay
from replaygate.testing import MemorySink

__all__ = ["replay", "write_gor"]


def replay(
    exchanges: list[Exchange], url: str, sink: Any = None, **kw: Any
) -> tuple[ReplayStats, list[Exchange]]:
    """Replay copies of ``exchanges`` to ``url`` over HTTP/2 (``max_speed``, ``order="none"``,
    then the ``ReplayConfig`` fields in ``kw``); the replayed exchanges by id, or none when
    they went to ``sink``."""
    mem = MemorySink() if sink is None else sink
    cfg = ReplayConfig(
        targets=[url], http2=True, max_speed=True, order="none", allow_unsafe_target=True
    )
    cfg.connect_timeout = 60.0  # the test servers are Python threads on a busy machine
    for k, v in kw.items():
        setattr(cfg, k, v)
    stats = run_replay([e.copy() for e in exchanges], cfg, sink=mem)
    return stats, (sorted(mem.exchanges, key=lambda e: e.id) if sink is None else [])


def write_gor(path: Path, exchanges: Iterable[Exchange]) -> Path:
    w = GorWriter(path)
    for e in exchanges:
        w.write(e)
    w.close()
    return path
