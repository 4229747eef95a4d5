"""The ``h2`` library builds a log message for every frame it receives, even unlogged.

``H2Connection._receive_frame`` logs ``logger.trace("Received frame: %s", repr(frame))``:
the ``repr`` (flags, stream id and a hex dump of the payload's start) is built before the
logger is called, and the default logger (``h2.config.DummyLogger``) drops it. On an
``--http2`` replay that was about 4% of the CPU (two frames per request).

:func:`defer_frame_reprs` gives ``h2.connection`` a module-level ``repr`` that returns a
:class:`DeferredRepr`: the same text, built only when a logger formats the message (``%s``
calls ``str``). So a real trace logger still writes exactly what it wrote before. It is
installed only when that log call is the module's one use of ``repr`` (checked on the
compiled code of every function in ``h2.connection``), so no other behaviour of the library
can change; an ``h2`` that uses ``repr`` elsewhere keeps the builtin.
"""

from __future__ import annotations

import dis
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["DeferredRepr", "defer_frame_reprs"]


class DeferredRepr:
    """``repr(obj)``, computed when the string is asked for."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __str__(self) -> str:
        return repr(self.obj)

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(repr(self.obj), spec)


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _codes(c)


def _module_codes(module: types.ModuleType) -> Iterator[types.CodeType]:
    seen: set[int] = set()
    stack: list[Any] = list(vars(module).values())
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, type) and obj.__module__ == module.__name__:
            stack.extend(vars(obj).values())
        elif isinstance(obj, staticmethod | classmethod):
            stack.append(obj.__func__)
        elif isinstance(obj, property):
            stack.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
        elif isinstance(obj, types.FunctionType) and obj.__module__ == module.__name__:
            yield from _codes(obj.__code__)


def _repr_uses(module: types.ModuleType) -> list[str]:
    """The qualified names of the functions of ``module`` that read the global ``repr``,
    once per read. (Only the few functions that name ``repr`` at all are disassembled:
    all of ``h2.connection`` would cost a replay's start-up ~30 ms.)"""
    return [
        code.co_qualname
        for code in _module_codes(module)
        if "repr" in code.co_names
        for ins in dis.get_instructions(code)
        if ins.opname == "LOAD_GLOBAL" and ins.argval == "repr"
    ]


def defer_frame_reprs() -> bool:
    """Install the deferred ``repr`` in ``h2.connection`` if its one use is the received-frame
    trace; True when it is (now or already) installed."""
    import h2.connection as conn

    if vars(conn).get("repr") is DeferredRepr:
        return True
    if "repr" in vars(conn) or _repr_uses(conn) != ["H2Connection._receive_frame"]:
        return False
    vars(conn)["repr"] = DeferredRepr  # shadows the builtin in that module only
    return True
