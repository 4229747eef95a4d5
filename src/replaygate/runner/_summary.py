"""What a traffic file holds (``replaygate inspect``): exchanges, connections, methods,
status codes, endpoints, time span, and the incomplete exchanges by why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..formats import format_of
from ..model import ConnectionId, Counters, Exchange

__all__ = ["FileSummary", "count_incomplete", "summarize"]


def count_incomplete(ex: Exchange, why: Counter[str]) -> bool:
    """Whether ``ex`` is incomplete; if so its flags (or ``no_response``) are counted."""
    if ex.complete:
        return False
    if ex.response is None and not ex.flags:
        why["no_response"] += 1
    for f in ex.flags:
        why[str(f)] += 1
    return True


@dataclass
class FileSummary:
    """Aggregates of one file, built in one pass with O(distinct values) memory."""

    path: str
    format: str
    exchanges: int = 0
    complete: int = 0
    incomplete: int = 0
    why: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    endpoints: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    connections: set[ConnectionId] = field(default_factory=set)
    without_conn: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    counters: Counters = field(default_factory=Counters)

    def merge(self, other: FileSummary) -> None:
        """Add another file's aggregates (for the total of several files; notes stay per
        file)."""
        self.exchanges += other.exchanges
        self.complete += other.complete
        self.incomplete += other.incomplete
        for mine, theirs in (
            (self.why, other.why),
            (self.methods, other.methods),
            (self.statuses, other.statuses),
            (self.endpoints, other.endpoints),
            (self.versions, other.versions),
            (self.counters.dropped, other.counters.dropped),
        ):
            mine.update(theirs)
        self.connections |= other.connections
        self.without_conn += other.without_conn
        if other.first_ns is not None:
            self.first_ns = (
                other.first_ns if self.first_ns is None else min(self.first_ns, other.first_ns)
            )
        if other.last_ns is not None:
            self.last_ns = (
                other.last_ns if self.last_ns is None else max(self.last_ns, other.last_ns)
            )

    def add(self, ex: Exchange) -> None:
        self.exchanges += 1
        req = ex.request
        self.methods[req.method or "(none)"] += 1
        self.versions[req.version] += 1
        self.endpoints[f"{req.method} {req.path}"] += 1
        if ex.response is not None:
            self.statuses[str(ex.response.status)] += 1
        elif "status" in ex.meta:
            self.statuses[f"{ex.meta['status']}(logged)"] += 1
        else:
            self.statuses["none"] += 1
        if count_incomplete(ex, self.why):
            self.incomplete += 1
        else:
            self.complete += 1
        if ex.conn is not None:
            self.connections.add(ex.conn)
        else:
            self.without_conn += 1
        ts = ex.ts_ns
        if ts:
            self.first_ns = ts if self.first_ns is None else min(self.first_ns, ts)
            end = max(ts, ex.response.ts_last_ns if ex.response is not None else 0)
            self.last_ns = end if self.last_ns is None else max(self.last_ns, end)


def summarize(path: str, exchanges: Iterable[Exchange], counters: Counters) -> FileSummary:
    """One pass over ``exchanges`` of the file ``path``."""
    s = FileSummary(path, format_of(path), counters=counters)
    for ex in exchanges:
        s.add(ex)
    return s
