"""Compare original and replayed responses, cancel noise, judge the release.

``Comparator`` is streaming and mergeable (workers merge exactly); ``judge`` applies the
``[gate]`` thresholds and accepted differences; ``Verdict.summary()`` is the JSON summary that
every report is written from.
"""

from __future__ import annotations

from ._comparator import Comparator, CompareSink, error_type, status_class
from ._config import DEFAULT_VOLATILE_HEADERS, CompareConfig, GateConfig
from ._result import CompareResult, EndpointResult, FieldResult
from .accepted import AcceptedDiff, AcceptedDiffs
from .diff import Difference, ResponseDiffer
from .endpoints import EndpointRule, EndpointTemplater, fold_endpoints, load_routes, template_path
from .gate import EndpointVerdict, Verdict, judge
from .watch import TargetWatcher

__all__ = [
    "DEFAULT_VOLATILE_HEADERS",
    "AcceptedDiff",
    "AcceptedDiffs",
    "Comparator",
    "CompareConfig",
    "CompareResult",
    "CompareSink",
    "Difference",
    "EndpointResult",
    "EndpointRule",
    "EndpointTemplater",
    "EndpointVerdict",
    "FieldResult",
    "GateConfig",
    "ResponseDiffer",
    "TargetWatcher",
    "Verdict",
    "error_type",
    "fold_endpoints",
    "judge",
    "load_routes",
    "status_class",
    "template_path",
]
