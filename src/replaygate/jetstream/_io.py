"""Registry adapters: ``open_reader("nats://...")`` / ``open_writer("nats://...")``."""

from __future__ import annotations

from collections.abc import Iterator

from ..formats import ReadOptions, WriteOptions
from ..model import Exchange
from .sink import NatsSink
from .source import read_stream


def read(path: str, options: ReadOptions) -> Iterator[Exchange]:
    return read_stream(path, counters=options.counters)


class Writer(NatsSink):
    def __init__(self, path: str, options: WriteOptions) -> None:
        super().__init__(path, results=bool(options.extra.get("results", False)))
