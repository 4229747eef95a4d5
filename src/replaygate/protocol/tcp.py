"""Sans-I/O TCP reassembly of one direction of one connection, by sequence number.

Sequence numbers are unwrapped to 64-bit stream offsets relative to the next expected byte,
so wraparound at 2**32 is invisible to the rest of the code. The rules:

* **First copy wins.** Bytes already delivered are never replaced; a retransmission or an
  overlapping segment only contributes the bytes beyond what was delivered (counted in
  ``retransmitted_bytes``). Among held out-of-order segments starting at the same offset the
  longer one is kept.
* **Out-of-order segments are held** up to ``max_buffered`` bytes. Beyond that, or when the
  peer acknowledges bytes we never saw (the capture lost them, the peer did not), or at the end
  of input, the hole is declared a **gap** of a known size and delivery continues after it.
* **No SYN is needed**: a direction seen first mid-stream starts at its first segment; data in
  a SYN (TCP Fast Open) starts at ``seq + 1``. Checksums are never looked at.

Output is a list of events: ``(DATA, bytes)``, ``(GAP, nbytes)``, ``(EOF, 0)``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

__all__ = ["DATA", "EOF", "GAP", "Event", "ReassemblerStats", "StreamReassembler"]

DATA, GAP, EOF = 0, 1, 2
Event = tuple[int, bytes | int]

_MOD = 1 << 32
_HALF = 1 << 31
# An acknowledgement further ahead than this is not believed (bogus or from another flow).
_MAX_ACK_JUMP = 1 << 30


@dataclass(slots=True)
class ReassemblerStats:
    """Counters of one direction (summed by the traffic assembler)."""

    segments: int = 0
    payload_bytes: int = 0
    delivered_bytes: int = 0
    retransmitted_bytes: int = 0
    out_of_order_segments: int = 0
    gaps: int = 0
    gap_bytes: int = 0


class StreamReassembler:
    """Turn the segments of one direction into an ordered byte stream with explicit gaps."""

    __slots__ = (
        "_base",
        "_fin_at",
        "_heap",
        "_held",
        "_known",
        "finished",
        "held_bytes",
        "max_buffered",
        "next",
        "stats",
    )

    def __init__(self, max_buffered: int = 64 << 20) -> None:
        self.max_buffered = max_buffered
        self.stats = ReassemblerStats()
        self._known = False
        self._base = 0  # sequence number of stream offset 0
        self.next = 0  # stream offset of the next byte to deliver
        self._held: dict[int, bytes] = {}
        self._heap: list[int] = []
        self.held_bytes = 0  # out-of-order bytes waiting for a hole to fill
        self._fin_at: int | None = None
        self.finished = False  # the FIN was delivered (all bytes before it delivered or gaps)

    @property
    def started(self) -> bool:
        """Has the initial sequence number been learnt (from a SYN or a first segment)?"""
        return self._known

    def offset(self, seq: int) -> int:
        """The stream offset of ``seq``, the copy nearest to the next expected byte."""
        d = (seq - self._base - self.next) % _MOD
        if d >= _HALF:
            d -= _MOD
        return self.next + d

    def syn(self, seq: int) -> None:
        """A SYN (or SYN-ACK) from this side: its data starts at ``seq + 1``."""
        if not self._known:
            self._known = True
            self._base = (seq + 1) % _MOD

    def segment(
        self, seq: int, payload: bytes, *, syn: bool = False, fin: bool = False
    ) -> list[Event]:
        """One segment from this side; returns what became deliverable."""
        st = self.stats
        st.segments += 1
        if syn:
            self.syn(seq)
            seq = (seq + 1) % _MOD
        elif not self._known:
            self._known = True
            self._base = seq
        n = len(payload)
        st.payload_bytes += n
        start = self.offset(seq)
        end = start + n
        out: list[Event] = []
        if fin and self._fin_at is None:
            self._fin_at = end
        if n:
            nxt = self.next
            if end <= nxt:
                st.retransmitted_bytes += n
            elif start <= nxt:
                if start < nxt:
                    st.retransmitted_bytes += nxt - start
                    payload = payload[nxt - start :]
                out.append((DATA, payload))
                st.delivered_bytes += len(payload)
                self.next = end
                if self._heap:
                    self._drain(out)
            else:
                st.out_of_order_segments += 1
                old = self._held.get(start)
                if old is None:
                    heapq.heappush(self._heap, start)
                    self._held[start] = payload
                    self.held_bytes += n
                elif len(old) < n:
                    st.retransmitted_bytes += len(old)
                    self._held[start] = payload
                    self.held_bytes += n - len(old)
                else:
                    st.retransmitted_bytes += n
                while self.held_bytes > self.max_buffered and self._heap:
                    self._skip_to(self._heap[0], out)
        self._check_fin(out)
        return out

    def in_order(self, seq: int, payload: bytes) -> bool:
        """Fast path for the common case: a data segment (no SYN/FIN) that starts exactly at
        the next expected byte while nothing is held. Accounts it as :meth:`segment` would
        and returns True: ``payload`` is the next data, to be delivered by the caller as is.
        Otherwise changes nothing and returns False (use :meth:`segment`)."""
        if (
            self._heap
            or self._fin_at is not None
            or not self._known
            or (seq - self._base - self.next) % _MOD
            or not payload
        ):
            return False
        n = len(payload)
        st = self.stats
        st.segments += 1
        st.payload_bytes += n
        st.delivered_bytes += n
        self.next += n
        return True

    def ack(self, ack: int) -> list[Event]:
        """The peer acknowledged up to ``ack``: holes below it were lost by the capture only,
        so they are declared gaps now instead of waiting for the buffer bound."""
        if not self._known or not self._heap:
            return []
        target = self.offset(ack)
        if target - self.next > _MAX_ACK_JUMP:
            return []
        out: list[Event] = []
        while self._heap and target > self.next and self._heap[0] < target:
            self._skip_to(self._heap[0], out)
        self._check_fin(out)
        return out

    def flush(self) -> list[Event]:
        """End of input: deliver everything held, declaring the holes as gaps."""
        out: list[Event] = []
        while self._heap:
            self._skip_to(self._heap[0], out)
        if self._fin_at is not None and self.next < self._fin_at:
            self._gap(self._fin_at - self.next, out)
            self.next = self._fin_at
        self._check_fin(out)
        return out

    # -- internals --------------------------------------------------------------------------
    def _gap(self, n: int, out: list[Event]) -> None:
        self.stats.gaps += 1
        self.stats.gap_bytes += n
        out.append((GAP, n))

    def _skip_to(self, offset: int, out: list[Event]) -> None:
        if offset > self.next:
            self._gap(offset - self.next, out)
            self.next = offset
        self._drain(out)

    def _drain(self, out: list[Event]) -> None:
        heap, held, st = self._heap, self._held, self.stats
        while heap and heap[0] <= self.next:
            start = heapq.heappop(heap)
            data = held.pop(start)
            self.held_bytes -= len(data)
            end = start + len(data)
            nxt = self.next
            if end <= nxt:
                st.retransmitted_bytes += len(data)
                continue
            if start < nxt:
                st.retransmitted_bytes += nxt - start
                data = data[nxt - start :]
            out.append((DATA, data))
            st.delivered_bytes += len(data)
            self.next = end

    def _check_fin(self, out: list[Event]) -> None:
        if self._fin_at is not None and not self.finished and self.next >= self._fin_at:
            self.finished = True
            out.append((EOF, 0))
