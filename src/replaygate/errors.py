"""The exception tree. Every failure a user can cause is one of these.

::

    ReplaygateError                 base; str(err) is one line fit for a terminal
     ├── InputError                 a file, flag or field the user gave is wrong
     │    ├── UnknownFormatError    no reader/writer for that file name
     │    ├── OutputError           an output file could not be written (disk full, ...)
     │    ├── FormatError           the file's bytes are not what its format says (has offset)
     │    │    └── TruncatedError   the file ends inside a record (has offset)
     │    └── ConfigError           a flag or config field is invalid (names it)
     ├── ProtocolError              sans-I/O parser refused bytes (caught inside the package)
     ├── CaptureError               live capture could not start (permission, interface, port)
     ├── ReplayError                the replay could not run (bad target, unsafe target)
     ├── MiddlewareError            an external middleware crashed or spoke nonsense
     └── StreamError                the NATS stream could not be reached or used

The CLI turns any ``ReplaygateError`` into ``replaygate: error: <message>`` and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os

__all__ = [
    "CaptureError",
    "ConfigError",
    "FormatError",
    "InputError",
    "MiddlewareError",
    "OutputError",
    "ProtocolError",
    "ReplayError",
    "ReplaygateError",
    "StreamError",
    "TruncatedError",
    "UnknownFormatError",
]


class ReplaygateError(Exception):
    """Base of every error replaygate raises on purpose."""

    exit_code = 2


class InputError(ReplaygateError):
    """Something the user handed us is wrong. ``path`` and ``offset`` say where, when known."""

    def __init__(
        self, message: str, *, path: str | os.PathLike[str] | None = None, offset: int | None = None
    ) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.offset = offset
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.offset is not None:
                where += f" (offset {self.offset})"
            where += ": "
        return (where + self.message).replace("\n", " ")


class UnknownFormatError(InputError):
    """No reader or writer is known for this file name."""


class OutputError(InputError):
    """An output file the user named could not be written (disk full, read-only, ...)."""


class FormatError(InputError):
    """The bytes do not follow the format the file claims."""


class TruncatedError(FormatError):
    """The file ends in the middle of a record; everything before ``offset`` was read."""


class ConfigError(InputError):
    """An invalid flag, option or configuration field."""


class ProtocolError(ReplaygateError):
    """A sans-I/O parser could not make sense of its input."""


class CaptureError(ReplaygateError):
    """Live capture could not start or continue."""


class ReplayError(ReplaygateError):
    """Replay could not run."""


class MiddlewareError(ReplaygateError):
    """An external middleware process failed."""


class StreamError(ReplaygateError):
    """The NATS JetStream backend failed."""
