"""Fuzz target for the leaf classifier of the compiled JSON masker (``_mask_leaf.h``): on any
text, whatever ``LeafConfig.classify`` answers but UNKNOWN is what the scanner finds.

The first byte picks the scanner (default rules, IP addresses, no field patterns, odd field
names), whether the field names are given, and whether the text is cut down to what a JSON
string holds (no quote, backslash or control character). Without the compiled core the
target only runs the scanner.
"""

from __future__ import annotations

from collections.abc import Callable

from replaygate.stages._mask_fp import CORE

from ..stages.leafref import UNKNOWN, expected, leaf_config, scanners

__all__ = ["SEEDS", "TARGETS"]

_SCANNERS = list(scanners().items())
_LEAVES = (
    [(leaf_config(sc), leaf_config(sc, names=False)) for _n, sc in _SCANNERS]
    if CORE is not None
    else []
)


def fuzz_mask_leaf(data: bytes) -> None:
    sel = data[0] if data else 0
    which = sel % len(_SCANNERS)
    scanner = _SCANNERS[which][1]
    text = data[1:].decode("utf-8", "replace")
    if sel & 0x10:  # the content of a JSON string
        text = "".join(c for c in text if c >= " " and c not in '"\\')
    if not _LEAVES:
        expected(scanner, text, False)
        return
    leaf = _LEAVES[which][1 if sel & 0x20 else 0]
    for whole in (False, True):
        got = leaf.classify(text, whole)
        if got != UNKNOWN:
            want = expected(scanner, text, whole)
            assert got == want, f"classify({text!r}, whole={whole}) = {got}, scanner: {want}"


TARGETS: dict[str, Callable[[bytes], None]] = {"mask_leaf": fuzz_mask_leaf}

SEEDS: dict[str, list[bytes]] = {
    "mask_leaf": [
        b"\x10user123456@corp3.io",
        b"\x104111 1111 1111 1111",
        b"\x11pw-123456789 password=x <pin>1</pin>",
        b"\x12tok_0123456789abcdef01234567 2024-01-01T10:00:00Z fe80::1 10.0.0.1",
        b"\x13name='pwd' value='x' a%40b.io DE89370400440532013000",
        b"\x30cGFzc3dvcmQ9aHVudGVyMiBhbmQgbW9yZQ== Basic dTpw Bearer abcdefgh",
        b"\x00AKIAIOSFODNN7EXAMPLE eyJhbGciOiJI.eyJzdWIiOjF9.sig +44 20 7946 0958",
        b"\x21x.api.key = 1 api key: 2 Pass-Word_x=3 \xc4\xb0 \xe2\x84\xaa",
    ],
}
