"""What a comparator found, before judging: per endpoint and per difference key."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ._config import CompareConfig
from .latency import LatencyHistogram, TimeSeries

__all__ = ["CompareResult", "EndpointResult", "FieldResult"]


@dataclass
class FieldResult:
    """One difference key (field + kind) on one endpoint."""

    field: str
    kind: str
    count: int  # candidate exchanges with this difference
    rate: float  # count / compared
    baseline_count: int = 0
    baseline_rate: float | None = None  # None: no baseline replays
    learned_count: int = 0
    learned_pairs: int = 0
    noise_reason: str | None = None  # None: a real difference
    p_value: float | None = None  # one-sided Fisher test against the baseline copy, if run
    unjudged: str | None = None  # why there is too little evidence to call it either way
    explicit: bool = False  # excluded by an ignore rule or a volatile-header list
    samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.field, self.kind)


@dataclass
class EndpointResult:
    endpoint: str
    requests: int
    compared: int
    baseline_requests: int
    baseline_compared: int
    fields: list[FieldResult]
    signatures: dict[tuple[tuple[str, str], ...], int]
    status_matrix: dict[str, int]
    baseline_status_matrix: dict[str, int]
    errors: dict[str, int]
    baseline_errors: dict[str, int]
    new_5xx: int
    baseline_new_5xx: int
    latency_original: LatencyHistogram
    latency_replayed: LatencyHistogram
    latency_baseline: LatencyHistogram
    skipped: dict[str, int]
    status_only: int = 0  # replayed, no original response: status/5xx/errors/latency only

    @property
    def replayed(self) -> int:
        """Candidate replays that produced a response or an error."""
        return self.compared + sum(self.errors.values())


@dataclass
class CompareResult:
    endpoints: list[EndpointResult]
    timeline: dict[str, TimeSeries]
    skipped: dict[str, int]
    target: dict[str, Any]
    config: CompareConfig
    sources: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    replay: dict[str, Any] = dataclasses.field(default_factory=dict)  # replay order summary

    def endpoint(self, name: str) -> EndpointResult | None:
        for e in self.endpoints:
            if e.endpoint == name:
                return e
        return None
