"""Wildcards for field and endpoint patterns: ``*`` matches anything, ``?`` one character,
and ``[*]`` is the literal array marker of a field path (not an fnmatch character class)."""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["compile_glob", "glob_match"]


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    parts = pattern.split("[*]")
    rx = re.escape("[*]").join(re.escape(p).replace(r"\*", ".*").replace(r"\?", ".") for p in parts)
    return re.compile("^" + rx + "$", re.DOTALL)


def glob_match(text: str, pattern: str) -> bool:
    if pattern == text:
        return True
    if "*" not in pattern and "?" not in pattern:
        return False
    return compile_glob(pattern).match(text) is not None
