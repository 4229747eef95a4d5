"""What the leaf classifier of the compiled JSON masker (``_mask_leaf.h``) must answer, from
:class:`TextScanner` itself, and the scanners its tests and fuzz target compare it under."""

from __future__ import annotations

from typing import Any

from replaygate.stages._detectors import DEFAULT_DETECTORS, Finding, TextScanner
from replaygate.stages._mask_fp import CORE
from replaygate.stages.mask import MaskConfig

__all__ = ["CARD", "CLEAN", "EMAIL", "UNKNOWN", "expected", "leaf_config", "scanners"]

CLEAN, EMAIL, CARD, UNKNOWN = 0, 1, 2, 3


def expected(scanner: TextScanner, text: str, whole: bool) -> int:
    """The scanner's own answer: CLEAN, EMAIL, CARD, or UNKNOWN for anything else."""
    if whole:
        return {None: CLEAN, "email": EMAIL, "card": CARD}.get(scanner.whole(text), UNKNOWN)
    found = list(scanner.findings(text))
    if not found:
        return CLEAN
    if found == [Finding("email", 0, len(text))]:
        return EMAIL
    if found == [Finding("card", 0, len(text))]:
        return CARD
    return UNKNOWN


def leaf_config(scanner: TextScanner, names: bool = True) -> Any:
    """The classifier's settings for ``scanner`` (as the JSON masker makes them; without the
    field names: the fallback that treats every field word loosely)."""
    assert CORE is not None
    args: tuple[Any, ...] = (tuple(scanner.detectors), tuple(scanner.words), scanner.has_fields)
    if names:
        args += (scanner.field_names,)
    return CORE.LeafConfig(*args)


#: odd field names: separators at the ends, dots and spaces (not matched exactly in C),
#: upper case, prefix/suffix/contains patterns
ODD_FIELDS = ["x.api.key", "api key", "*tok*", "__a_", "Pass-Word*", "*b-c", "q", "pin2"]


def scanners() -> dict[str, TextScanner]:
    """The default rules' scanner, one with IP addresses, one without field patterns, and one
    with every detector and odd field names."""
    return {
        "default": MaskConfig().rules().scanner,
        "ip": MaskConfig(ip_addresses=True).rules().scanner,
        "nofields": TextScanner(DEFAULT_DETECTORS, []),
        "odd": TextScanner(
            [*DEFAULT_DETECTORS, "ipv4", "ipv6"],
            [*MaskConfig().rules().scanner.field_names, *ODD_FIELDS],
        ),
    }
