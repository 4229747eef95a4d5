"""The ``[compare]`` and ``[gate]`` sections of ``replaygate.toml``, with documented defaults.

Defaults are chosen so that a run with no configuration at all still gives a verdict an SRE
can act on: any real difference on more than 1% of requests (5% on one endpoint), any new 5xx,
more than 1% transport errors, or a p99 at least 1.5x and 20 ms slower fails the gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import parse_percent
from ..errors import ConfigError

__all__ = ["DEFAULT_VOLATILE_HEADERS", "FRAMING_HEADERS", "CompareConfig", "GateConfig"]

# Headers whose values change on every response by design; compared, but counted as noise.
DEFAULT_VOLATILE_HEADERS: tuple[str, ...] = (
    "date",
    "age",
    "expires",
    "last-modified",
    "etag",
    "set-cookie",  # values only: cookie *names* are still compared
    "x-request-id",
    "x-correlation-id",
    "request-id",
    "x-amzn-requestid",
    "x-amzn-trace-id",
    "x-amz-request-id",
    "x-amz-id-2",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "x-trace-id",
    "x-span-id",
    "uber-trace-id",
    "server-timing",
    "x-runtime",
    "x-response-time",
    "x-served-by",
    "x-cache",
    "x-cache-hits",
    "x-timer",
    "cf-ray",
    "via",
    "report-to",
    "nel",
    "strict-transport-security",
    "alt-svc",
    "x-envoy-upstream-service-time",
    # environment-specific rather than release-specific: staging's proxy versions differ
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-kong-proxy-latency",
    "x-kong-upstream-latency",
)

# Transport framing: never compared (bodies are compared after de-framing and decoding).
FRAMING_HEADERS: frozenset[str] = frozenset(
    ("content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection")
)


def _frac(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ConfigError(f"{name}: expected a percentage such as '1%' or 0.01, got {v!r}")
    return parse_percent(v, name=name)


def _nonneg(v: Any, name: str, kind: type = float) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ConfigError(f"{name}: expected a non-negative number, got {v!r}")
    if kind is int and int(v) != v:
        raise ConfigError(f"{name}: expected a whole number, got {v!r}")
    return kind(v)


def _confidence(v: Any, name: str) -> float:
    """A confidence level: ``"99%"``, ``0.99``; strictly between 50% and 100%."""
    c = _frac(v, name)
    if not 0.5 <= c < 1.0:
        raise ConfigError(f"{name}: expected a confidence between 50% and 99.99%, got {v!r}")
    return c


def _strs(v: Any, name: str) -> list[str]:
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{name}: expected a list of strings, got {v!r}")
    return list(v)


@dataclass
class CompareConfig:
    """How responses are compared and how noise is recognised (``[compare]``).

    ``ignore`` entries are field patterns (``"body:$.meta.*"``, ``"header:x-build"``,
    ``"$.items[*].price"`` means a body path) optionally scoped to endpoints with a table
    ``{endpoint = "GET /users/*", field = "..."}``; ``fnmatch`` wildcards work in both.
    """

    ignore: list[Any] = field(default_factory=list)
    volatile_headers: list[str] = field(default_factory=lambda: list(DEFAULT_VOLATILE_HEADERS))
    extra_volatile_headers: list[str] = field(default_factory=list)
    compare_headers: bool = True
    endpoints: list[Any] = field(default_factory=list)
    endpoint_header: str | None = None
    # a route list naming endpoints: OpenAPI 3 (JSON/YAML) or one "METHOD /path" a line
    routes: str | None = None
    # gRPC field names: a descriptor set as `protoc -o FILE --include_imports` writes it
    proto_descriptor_set: str | None = None
    # cardinality guard: a path position with more distinct values under one prefix is folded
    # to {slug}/{var} (0: never)
    max_segment_values: int = 50
    order_insensitive: list[str] = field(default_factory=list)
    samples: int = 3
    sample_bytes: int = 4096
    max_diffs_per_exchange: int = 100
    # endpoints kept apart; beyond this, new ones share "METHOD (other endpoints)" (memory bound)
    max_endpoints: int = 1000
    # Diffy-style noise: a field is a real difference only when the candidate differs from the
    # original significantly more often than the baseline copy does (one-sided Fisher exact
    # test at noise_confidence), and by at least these effect sizes.
    noise_relative: float = 0.2
    noise_absolute: float = 0.01
    noise_confidence: float = 0.99
    # Learned volatility (no second copy needed): identical original requests whose responses
    # differ in a field in at least learn_min_rate of at least learn_min_pairs pairs.
    learn_min_pairs: int = 2
    learn_min_rate: float = 0.5
    learn_window: int = 20_000
    learn_across_endpoints: bool = True

    def __post_init__(self) -> None:
        n = "[compare]"
        if not isinstance(self.ignore, list):
            raise ConfigError(f"{n} ignore: expected a list, got {self.ignore!r}")
        self.volatile_headers = [
            h.lower() for h in _strs(self.volatile_headers, f"{n} volatile_headers")
        ]
        self.extra_volatile_headers = [
            h.lower() for h in _strs(self.extra_volatile_headers, f"{n} extra_volatile_headers")
        ]
        self.order_insensitive = _strs(self.order_insensitive, f"{n} order_insensitive")
        if not isinstance(self.endpoints, list):
            raise ConfigError(f"{n} endpoints: expected a list of rules, got {self.endpoints!r}")
        if self.endpoint_header is not None and not isinstance(self.endpoint_header, str):
            raise ConfigError(f"{n} endpoint_header: expected a header name")
        if self.routes is not None and not isinstance(self.routes, str):
            raise ConfigError(f"{n} routes: expected a file name, got {self.routes!r}")
        if self.proto_descriptor_set is not None and not isinstance(self.proto_descriptor_set, str):
            raise ConfigError(f"{n} proto_descriptor_set: expected a file name")
        self.max_segment_values = _nonneg(self.max_segment_values, f"{n} max_segment_values", int)
        self.samples = _nonneg(self.samples, f"{n} samples", int)
        self.sample_bytes = _nonneg(self.sample_bytes, f"{n} sample_bytes", int)
        self.max_diffs_per_exchange = max(
            1, _nonneg(self.max_diffs_per_exchange, f"{n} max_diffs_per_exchange", int)
        )
        self.max_endpoints = max(1, _nonneg(self.max_endpoints, f"{n} max_endpoints", int))
        self.noise_relative = _nonneg(self.noise_relative, f"{n} noise_relative")
        self.noise_absolute = _frac(self.noise_absolute, f"{n} noise_absolute")
        self.noise_confidence = _confidence(self.noise_confidence, f"{n} noise_confidence")
        self.learn_min_pairs = max(1, _nonneg(self.learn_min_pairs, f"{n} learn_min_pairs", int))
        self.learn_min_rate = _frac(self.learn_min_rate, f"{n} learn_min_rate")
        self.learn_window = _nonneg(self.learn_window, f"{n} learn_window", int)
        if not isinstance(self.learn_across_endpoints, bool):
            raise ConfigError(f"{n} learn_across_endpoints: expected true or false")

    @property
    def all_volatile_headers(self) -> frozenset[str]:
        return frozenset(self.volatile_headers) | frozenset(self.extra_volatile_headers)


@dataclass
class GateConfig:
    """Release-gate thresholds (``[gate]``). Rates accept ``"1%"`` or ``0.01``."""

    max_diff_rate: float = 0.01
    max_endpoint_diff_rate: float = 0.05
    max_new_5xx_rate: float = 0.0
    max_error_rate: float = 0.01
    max_p99_ratio: float = 1.5
    min_p99_delta_ms: float = 20.0
    latency_min_samples: int = 20
    min_replayed: int = 1
    # a baseline copy that itself disagrees with the original (status class changes, errors)
    # more often than this makes its noise estimate worthless: fail instead of trusting it
    max_baseline_status_change_rate: float = 0.05
    # requests that cannot be judged (their endpoint's baseline copy disagrees with the
    # original the way the candidate does, or too few replays to tell noise from a change)
    max_unjudged_rate: float = 0.05
    # latency against a same-run baseline copy: the slowdown must be significant at this
    # confidence (one-sided Mann-Whitney U) as well as exceed the effect size
    latency_confidence: float = 0.99
    # an absolute ceiling on each endpoint's replayed p99 (p90 under 100 samples), in ms;
    # judges latency where nothing can be compared (request-only recordings)
    max_p99_ms: float | None = None
    exact_endpoints: list[str] = field(default_factory=list)
    ignore_endpoints: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = "[gate]"
        self.max_diff_rate = _frac(self.max_diff_rate, f"{n} max_diff_rate")
        self.max_endpoint_diff_rate = _frac(
            self.max_endpoint_diff_rate, f"{n} max_endpoint_diff_rate"
        )
        self.max_new_5xx_rate = _frac(self.max_new_5xx_rate, f"{n} max_new_5xx_rate")
        self.max_error_rate = _frac(self.max_error_rate, f"{n} max_error_rate")
        self.max_p99_ratio = _nonneg(self.max_p99_ratio, f"{n} max_p99_ratio")
        self.min_p99_delta_ms = _nonneg(self.min_p99_delta_ms, f"{n} min_p99_delta_ms")
        self.latency_min_samples = _nonneg(
            self.latency_min_samples, f"{n} latency_min_samples", int
        )
        self.min_replayed = _nonneg(self.min_replayed, f"{n} min_replayed", int)
        self.max_baseline_status_change_rate = _frac(
            self.max_baseline_status_change_rate, f"{n} max_baseline_status_change_rate"
        )
        self.max_unjudged_rate = _frac(self.max_unjudged_rate, f"{n} max_unjudged_rate")
        self.latency_confidence = _confidence(self.latency_confidence, f"{n} latency_confidence")
        if self.max_p99_ms is not None:
            self.max_p99_ms = _nonneg(self.max_p99_ms, f"{n} max_p99_ms")
        self.exact_endpoints = _strs(self.exact_endpoints, f"{n} exact_endpoints")
        self.ignore_endpoints = _strs(self.ignore_endpoints, f"{n} ignore_endpoints")
