"""JSON path patterns (``$.users[*].email``, ``$..password``): which fields of a body a rule
names. Shared by masking (:mod:`replaygate.stages.mask`) and session-token correlation
(:mod:`replaygate.replay.correlation`); a path is the keys and indexes from the root.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["JsonPath", "PathPart"]

PathPart = str | int

_DEEP = ("deep",)
_ANY = ("any",)
_TOKEN = re.compile(
    r"\.\.|\*\*|\.|\[\s*(?:\*|-?\d+|'[^']*'|\"[^\"]*\")\s*\]|[^.\[\]]+",
)


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A JSON path pattern: ``$.users[*].email``, ``$..password``, ``**.token``, ``a.b[0]``.

    ``*`` / ``[*]`` match one key or index, ``**`` / ``..`` any number of levels (also none).
    """

    text: str
    tokens: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, text: str, where: str = "[mask] json_paths") -> JsonPath:
        """Read a pattern; ``where`` names the config field in the error (one line, exit 2)."""
        s = text.strip()
        if s.startswith("$"):
            s = s[1:]
        pos = 0
        toks: list[tuple[str, ...]] = []
        while pos < len(s):
            m = _TOKEN.match(s, pos)
            if m is None or m.end() == pos:
                raise ConfigError(f"{where}: cannot read {text!r} at character {pos}")
            t = m.group()
            pos = m.end()
            if t in ("..", "**"):
                if not toks or toks[-1] != _DEEP:
                    toks.append(_DEEP)
            elif t == ".":
                continue
            elif t.startswith("["):
                inner = t[1:-1].strip()
                if inner == "*":
                    toks.append(_ANY)
                elif inner[:1] in "'\"":
                    toks.append(("key", inner[1:-1]))
                else:
                    toks.append(("idx", inner))
            elif t == "*":
                toks.append(_ANY)
            else:
                toks.append(("key", t))
        if not toks:
            raise ConfigError(f"{where}: {text!r} names no field")
        return cls(text, tuple(toks))

    def matches(self, path: Sequence[PathPart]) -> bool:
        return _match(self.tokens, path, 0, 0)


def _match(toks: tuple[tuple[str, ...], ...], path: Sequence[PathPart], i: int, j: int) -> bool:
    while i < len(toks):
        t = toks[i]
        if t == _DEEP:
            return any(_match(toks, path, i + 1, k) for k in range(j, len(path) + 1))
        if j >= len(path):
            return False
        p = path[j]
        if t == _ANY:
            pass
        elif t[0] == "key":
            if not isinstance(p, str) or p != t[1]:
                return False
        elif t[0] == "idx" and (not isinstance(p, int) or str(p) != t[1]):
            return False
        i += 1
        j += 1
    return j == len(path)
