"""The typed configuration of a run: where traffic comes from, what it goes through, where
it goes. The command line fills these from its flags; library users build them directly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..formats import ReadOptions, WriteOptions
from ..model import Counters
from ..stages.defaults import TrafficOptions

if TYPE_CHECKING:  # heavy (libpcap, event loops): only for typing
    from ..jetstream.worker import WorkerConfig
    from ..replay import ReplayConfig
    from ..sources.capture import CaptureConfig
    from ..sources.proxy import ProxyConfig

__all__ = [
    "CaptureInput",
    "FileInput",
    "Output",
    "ProxyInput",
    "Reports",
    "RunConfig",
    "StreamInput",
    "Watch",
]


@dataclass(frozen=True)
class FileInput:
    """Traffic files (any readable format, or ``nats://`` streams), read in order. A cut
    input is counted (``Counters.cuts``) and reported at the end, like every format."""

    paths: tuple[str, ...]
    log_format: str | None = None  # access logs: nginx | apache | alb | elb
    host: str | None = None  # Host for access-log lines that do not name one
    tls_keylog: str | None = None  # decrypt HTTPS in pcap/pcapng inputs
    max_record_size: int | None = None
    max_file_size: int | None = None

    def read_options(self, counters: Counters) -> ReadOptions:
        extra: dict[str, Any] = {"truncated": "count"}
        if self.host:
            extra["host"] = self.host
        if self.tls_keylog:
            extra["tls_keylog"] = self.tls_keylog
        limits = {
            k: v
            for k, v in (
                ("max_record_size", self.max_record_size),
                ("max_file_size", self.max_file_size),
            )
            if v is not None
        }
        return ReadOptions(log_format=self.log_format, counters=counters, extra=extra, **limits)


@dataclass(frozen=True)
class CaptureInput:
    """Live capture from network interfaces."""

    config: CaptureConfig


@dataclass(frozen=True)
class ProxyInput:
    """A recording reverse proxy; runs until stopped or ``duration_s`` passes."""

    config: ProxyConfig
    duration_s: float | None = None


@dataclass(frozen=True)
class StreamInput:
    """A NATS JetStream source replayed by a worker (results published to STREAM-RESULTS)."""

    config: WorkerConfig


@dataclass(frozen=True)
class Output:
    """Where exchanges are written (format by extension, or ``nats://``). ``force=None``:
    overwrite (convert's rule); ``False``: an output holding data is refused unless
    ``write.append`` (the recorders' rule)."""

    path: str
    write: WriteOptions = field(default_factory=WriteOptions)
    force: bool | None = None


@dataclass(frozen=True)
class Reports:
    """Compare on the fly and write these reports (``directory``: all four in it);
    ``accepted``: the reviewed accepted differences."""

    json: str | os.PathLike[str] | None = None
    junit: str | os.PathLike[str] | None = None
    markdown: str | os.PathLike[str] | None = None
    html: str | os.PathLike[str] | None = None
    directory: str | os.PathLike[str] | None = None
    accepted: str | os.PathLike[str] | None = None


@dataclass(frozen=True)
class Watch:
    """Sample the target while replaying: a Prometheus endpoint (loopback) and/or a pid."""

    metrics_url: str | None = None
    pid: int | None = None
    interval_s: float = 2.0


Source = FileInput | CaptureInput | ProxyInput | StreamInput


@dataclass(frozen=True)
class RunConfig:
    """One run: ``source`` -> traffic stages -> (``replay``) -> ``output`` and the
    comparator -> ``reports``. ``toml`` is the loaded replaygate.toml (its ``[filters]``,
    ``[mask]``, ``[rewrite]``, ``[middleware]``, ``[correlation]``, ``[compare]`` and
    ``[gate]`` sections; flags in the typed objects win)."""

    source: Source
    traffic: TrafficOptions = field(default_factory=TrafficOptions)
    toml: Mapping[str, Any] = field(default_factory=dict)
    replay: ReplayConfig | None = None
    correlate: bool = True  # session-token correlation while replaying
    output: Output | None = None
    reports: Reports | None = None
    watch: Watch | None = None
    max_queue: int = 10_000  # exchanges waiting for a live replay's target
    compare_sources: tuple[str, ...] = ()  # what the reports name as the traffic
