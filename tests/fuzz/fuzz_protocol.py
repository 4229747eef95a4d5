"""Fuzz targets for the sans-I/O protocol code: HTTP/1 stream parser and TCP assembler."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SEEDS", "TARGETS"]


def _noop(data: bytes) -> None:
    del data


TARGETS: dict[str, Callable[[bytes], None]] = {}
SEEDS: dict[str, list[bytes]] = {}
