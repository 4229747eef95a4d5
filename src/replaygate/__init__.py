"""replaygate: turn real production HTTP traffic into a release gate.

The public API is what ``__all__`` lists; modules whose names start with ``_`` are private.
"""

from __future__ import annotations

from .errors import (
    CaptureError,
    ConfigError,
    FormatError,
    InputError,
    MiddlewareError,
    OutputError,
    ProtocolError,
    ReplayError,
    ReplaygateError,
    StreamError,
    TruncatedError,
    UnknownFormatError,
)
from .formats import ReadOptions, WriteOptions, open_reader, open_writer
from .model import ConnectionId, Exchange, Flag, HTTPMessage, Request, Response
from .pipeline import BoundedSink, Counters, Pipeline, Sink, Stage, run_pipeline

__version__ = "0.1.0"

__all__ = [
    "BoundedSink",
    "CaptureError",
    "ConfigError",
    "ConnectionId",
    "Counters",
    "Exchange",
    "Flag",
    "FormatError",
    "HTTPMessage",
    "InputError",
    "MiddlewareError",
    "OutputError",
    "Pipeline",
    "ProtocolError",
    "ReadOptions",
    "ReplayError",
    "ReplaygateError",
    "Request",
    "Response",
    "Sink",
    "Stage",
    "StreamError",
    "TruncatedError",
    "UnknownFormatError",
    "WriteOptions",
    "__version__",
    "open_reader",
    "open_writer",
    "run_pipeline",
]
