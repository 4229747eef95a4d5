"""The library-level run: one place that builds source -> stages -> (replay) -> sinks and
comparator -> reports from typed configuration objects.

Every command that moves traffic is a thin face over it (``convert``, ``capture``,
``proxy``, ``replay``, ``shadow``, ``worker``), and library users call it directly::

    from replaygate.runner import FileInput, Output, RunConfig, run
    from replaygate.replay import ReplayConfig

    result = run(
        RunConfig(
            source=FileInput(("traffic.gor",)),
            replay=ReplayConfig(targets=["http://127.0.0.1:8080"]),
            output=Output("replayed.jsonl"),
        )
    )
    print(result.replay.answered if result.replay else 0)

or pull the exchanges out of it as they come (``for ex in Run(config): ...``).
"""

from __future__ import annotations

from ._config import (
    CaptureInput,
    FileInput,
    Output,
    ProxyInput,
    Reports,
    RunConfig,
    StreamInput,
    Watch,
)
from ._files import FileSource, count_requests
from ._run import Run, RunResult, run

__all__ = [
    "CaptureInput",
    "FileInput",
    "FileSource",
    "Output",
    "ProxyInput",
    "Reports",
    "Run",
    "RunConfig",
    "RunResult",
    "StreamInput",
    "Watch",
    "count_requests",
    "run",
]
