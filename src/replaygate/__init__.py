"""replaygate: turn real production HTTP traffic into a release gate.

The public API is what ``__all__`` lists; modules whose names start with ``_`` are private.
"""

from __future__ import annotations

from ._version import __version__
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
from .formats import (
    FormatPlugin,
    ReadOptions,
    WriteOptions,
    open_reader,
    open_writer,
    register_format,
)
from .model import ConnectionId, Exchange, Flag, HTTPMessage, Request, Response
from .pipeline import BoundedSink, Counters, Pipeline, Sink, Stage, run_pipeline
from .runner import Run, RunConfig, RunResult, run

# The composition root registers the formats that live outside ``formats`` the way a third
# party would: nats://HOST:PORT/STREAM "paths" are a JetStream stream (scale-out).
register_format(
    FormatPlugin(
        "nats",
        reader="replaygate.jetstream._io:read",
        writer="replaygate.jetstream._io:Writer",
        prefixes=("nats://", "tls://"),
    )
)

__all__ = [
    "BoundedSink",
    "CaptureError",
    "ConfigError",
    "ConnectionId",
    "Counters",
    "Exchange",
    "Flag",
    "FormatError",
    "FormatPlugin",
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
    "Run",
    "RunConfig",
    "RunResult",
    "Sink",
    "Stage",
    "StreamError",
    "TruncatedError",
    "UnknownFormatError",
    "WriteOptions",
    "__version__",
    "open_reader",
    "open_writer",
    "register_format",
    "run",
    "run_pipeline",
]
