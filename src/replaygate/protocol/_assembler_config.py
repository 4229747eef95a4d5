"""What the traffic assembler is configured with and what it counts (see
:mod:`replaygate.protocol.assembler`, which re-exports both)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

from .http1 import ParserConfig
from .tls import TLSConfig, TLSStats

__all__ = ["AssemblerConfig", "AssemblerStats"]


@dataclass(frozen=True, slots=True)
class AssemblerConfig:
    """How connections are recognised and how much memory they may hold.

    ``server_ports``: ports that are the server side (empty: decide by SYN, by content, by
    port heuristics). ``idle_timeout_s``: a connection silent this long (capture time) is
    flushed. ``max_flows``: live connections kept; beyond it the oldest idle one is flushed
    and counted as evicted. ``max_buffered_bytes``: out-of-order bytes held per direction
    before the hole is declared a gap.
    """

    server_ports: frozenset[int] = frozenset()
    idle_timeout_s: float = 120.0
    max_flows: int = 100_000
    max_buffered_bytes: int = 64 << 20
    parser: ParserConfig = field(default_factory=ParserConfig)
    tls: TLSConfig | None = None


@dataclass(slots=True)
class AssemblerStats:
    """What the assembler saw and everything it could not turn into complete exchanges.

    TCP: ``gaps``/``gap_bytes`` (holes declared, by buffer bound, peer ACK or end of input),
    ``retransmitted_bytes`` (duplicates and overlaps dropped, first copy wins),
    ``late_segments`` (data for a connection already closed). HTTP: ``skipped_bytes`` (not a
    message: mid-stream joins, garbage, resynchronisation), ``tunnel_bytes`` (after an
    Upgrade/CONNECT), ``resyncs``, ``parse_errors``; the exchange counters are by outcome.
    TLS: ``tls_flows`` (connections that start with a TLS record) and, with a key log,
    ``tls`` (sessions decrypted and not decrypted by reason; ``tls_<name>`` in as_dict).
    """

    segments: int = 0
    payload_bytes: int = 0
    flows_total: int = 0
    flows_active: int = 0
    flows_closed: int = 0
    flows_reset: int = 0
    flows_midstream: int = 0
    flows_expired: int = 0
    flows_expired_incomplete: int = 0
    flows_evicted: int = 0
    gaps: int = 0
    gap_bytes: int = 0
    retransmitted_bytes: int = 0
    out_of_order_segments: int = 0
    late_segments: int = 0
    exchanges_complete: int = 0
    exchanges_incomplete: int = 0
    requests_without_response: int = 0
    orphan_responses: int = 0
    non_http_flows: int = 0
    non_http_bytes: int = 0
    skipped_bytes: int = 0
    tunnel_bytes: int = 0
    resyncs: int = 0
    parse_errors: int = 0
    malformed_request_lines: int = 0
    tls_flows: int = 0
    http2_flows: int = 0
    tls: TLSStats = field(default_factory=TLSStats)
    http2: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        out = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("tls", "http2")
        }
        for k, v in self.tls.as_dict().items():
            out["tls_" + k] = v
        out.update(self.http2)  # http2_<reason>: connections not parsed (further), by reason
        return out
