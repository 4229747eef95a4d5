"""Live capture: packets from network interfaces -> exchanges -> stages -> sink.

Threads, and why:

* one **reader** per interface does nothing but move whole ring blocks (libpcap
  ``next_batch``: one bytes object per block) from the kernel into a queue bounded in
  bytes, so the kernel ring is drained promptly even when decoding briefly falls behind;
* the **worker** (the calling thread) decodes frames (``decode_frame``), feeds segments to
  the shared :class:`~replaygate.protocol.assembler.TrafficAssembler` in batches, expires idle
  flows, and hands exchanges to a :class:`~replaygate.sources._recording.RecordingSink`;
* the **writer** thread of that sink runs the stages and the file writer. It never blocks
  capture: overflow drops whole exchanges, counted.

Nothing is lost without a counter: kernel drops (pcap stats), reader-queue overflow,
frames that were not usable TCP (by reason), flows expired incomplete, exchanges
incomplete and requests without responses, recordings dropped by backpressure or a failing
sink. :func:`run_capture` returns them all as one flat ``dict[str, int]``.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._clock import SYSTEM_CLOCK, Clock
from ..errors import CaptureError, ConfigError
from ..model import Exchange, Flag
from ..pipeline import Counters, Sink, Stage
from ._libpcap import PcapHandle
from ._recording import RecordingSink

__all__ = ["CaptureConfig", "run_capture"]

_META = struct.Struct("=IIII")
_STATS_EVERY_S = 1.0
_EXPIRE_EVERY_S = 1.0


@dataclass
class CaptureConfig:
    """What to capture and how. An empty ``interfaces`` means every interface (``any``,
    which includes ``lo``)."""

    interfaces: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    bpf: str | None = None
    duration: float | None = None
    max_exchanges: int | None = None
    track_responses: bool = True
    buffer_bytes: int = 64 << 20  # kernel ring per interface
    max_queue: int = 10_000  # exchanges waiting for the sink
    max_raw_bytes: int = 256 << 20  # packets waiting for the worker
    snaplen: int = 262_144
    idle_timeout_s: float = 120.0  # a flow silent this long is expired
    batch_packets: int = 4096
    stop_drain_s: float = 0.25  # on stop, keep reading this long for in-flight packets
    # when the writer is behind, pause decoding while the reader queue is under half full
    # (a burst becomes a delay); False: drop whole exchanges at once (counted)
    absorb_bursts: bool = True
    # NSS key log to decrypt HTTPS with, followed while clients append to it (it may not
    # exist yet); records wait up to tls_key_wait_s for their key
    tls_keylog: str | None = None
    tls_key_wait_s: float = 10.0

    def validate(self) -> None:
        for p in self.ports:
            if not 0 < p < 65536:
                raise ConfigError(f"--port: {p} is not a TCP port")
        if not self.ports and not self.bpf:
            raise ConfigError("give --port P (repeatable) or --bpf EXPR")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError("--duration: must be positive")
        if self.max_exchanges is not None and self.max_exchanges <= 0:
            raise ConfigError("--max-exchanges: must be positive")
        if self.buffer_bytes < 1 << 20:
            raise ConfigError("--buffer-size: at least 1mb")
        if self.tls_keylog is not None:
            d = os.path.dirname(os.path.abspath(self.tls_keylog))
            if os.path.isdir(self.tls_keylog) or not os.path.isdir(d):
                raise ConfigError(
                    f"--tls-keylog {self.tls_keylog}: not a file in an existing folder"
                )


class _RawQueue:
    """Ring blocks waiting for the worker, bounded in bytes; overflow is counted."""

    def __init__(self, max_bytes: int) -> None:
        self._q: deque[tuple[int, bytes, bytes]] = deque()
        self._bytes = 0
        self._max = max_bytes
        self._cv = threading.Condition()
        self.dropped_packets = 0

    def put(self, item: tuple[int, bytes, bytes]) -> None:
        size = len(item[1])
        with self._cv:
            if self._bytes + size > self._max and self._q:
                self.dropped_packets += len(item[2]) // _META.size
                return
            self._q.append(item)
            self._bytes += size
            self._cv.notify()

    def fill(self) -> float:
        """How full the queue is, 0..1."""
        return self._bytes / self._max

    def get_all(self, timeout: float) -> list[tuple[int, bytes, bytes]]:
        with self._cv:
            if not self._q:
                self._cv.wait(timeout)
            items = list(self._q)
            self._q.clear()
            self._bytes = 0
            return items


class _Reader(threading.Thread):
    def __init__(self, h: PcapHandle, q: _RawQueue, batch: int, stop: threading.Event) -> None:
        super().__init__(name=f"replaygate-capture-{h.device}", daemon=True)
        self.h = h
        self.q = q
        self.batch = batch
        self.stop_ev = stop
        self.packets = 0
        self.bytes = 0
        self.error: BaseException | None = None

    def _drain(self) -> int:
        n = 0
        lt = self.h.linktype
        while True:
            data, meta = self.h.read_batch(self.batch)
            if not meta:
                return n
            k = len(meta) // _META.size
            n += k
            self.packets += k
            self.bytes += len(data)
            self.q.put((lt, data, meta))

    def run(self) -> None:
        try:
            while not self.stop_ev.is_set():
                self.h.wait(0.05)
                self._drain()  # also after a timeout: a block may retire without a wakeup
        except BaseException as e:  # reported by run_capture
            self.error = e

    def final_drain(self, seconds: float) -> None:
        """After stop: read what the kernel still holds (ring blocks retire on timeout)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.h.wait(0.02)
            self._drain()


def _open_handles(cfg: CaptureConfig) -> list[PcapHandle]:
    devices = cfg.interfaces or ["any"]
    handles: list[PcapHandle] = []
    try:
        for d in dict.fromkeys(devices):
            handles.append(
                PcapHandle(
                    d,
                    ports=cfg.ports,
                    bpf=cfg.bpf,
                    snaplen=cfg.snaplen,
                    buffer_bytes=cfg.buffer_bytes,
                )
            )
    except BaseException:
        for h in handles:
            h.close()
        raise
    return handles


class _Capture:
    """The worker side: decode, assemble, count, record."""

    def __init__(
        self,
        cfg: CaptureConfig,
        rec: RecordingSink,
        handles: list[PcapHandle],
        readers: list[_Reader],
        q: _RawQueue,
    ) -> None:
        from ..protocol.assembler import AssemblerConfig, TrafficAssembler
        from ..protocol.keylog import KeyLogFollower
        from ..protocol.linklayer import decode_frame
        from ..protocol.tls import TLSConfig

        self.cfg = cfg
        self.rec = rec
        self.handles = handles
        self.readers = readers
        self.q = q
        self.decode = decode_frame
        self.link = Counters()
        self.keylog = KeyLogFollower(cfg.tls_keylog) if cfg.tls_keylog else None
        tls = None
        if self.keylog is not None:
            self.keylog.poll()
            tls = TLSConfig(self.keylog.keys, key_wait_s=cfg.tls_key_wait_s)
        self.asm = TrafficAssembler(
            AssemblerConfig(
                server_ports=frozenset(cfg.ports), idle_timeout_s=cfg.idle_timeout_s, tls=tls
            )
        )
        self.c: dict[str, int] = {
            "segments": 0,
            "exchanges": 0,
            "exchanges_complete": 0,
            "exchanges_incomplete": 0,
            "requests_without_response": 0,
            "request_bytes": 0,
            "response_bytes": 0,
        }
        self.done = False
        self.final = False  # stopping: wait for the writer instead of dropping
        self.tick: Callable[[], None] | None = None

    def process(self, items: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Decode and assemble ring block by ring block (a backlog of many blocks is not
        turned into one huge list of segments)."""
        decode = self.decode
        link = self.link
        for lt, data, meta in items:
            segs = []
            for sec, usec, off, caplen in _META.iter_unpack(meta):
                seg = decode(lt, data[off : off + caplen], sec * 1_000_000_000 + usec * 1000, link)
                if seg is not None:
                    segs.append(seg)
            if segs:
                self.c["segments"] += len(segs)
                self.emit(self.asm.feed_batch(segs))
            if self.tick is not None:
                self.tick()

    def poll_keys(self) -> None:
        """New lines in the key log: decrypt the records that waited for them."""
        if self.keylog is not None and self.keylog.poll():
            self.emit(self.asm.retry_tls(time.time_ns()))

    def emit(self, exchanges: Iterable[Exchange] | None) -> None:
        if not exchanges:
            return
        c = self.c
        limit = self.cfg.max_exchanges
        track = self.cfg.track_responses
        rec = self.rec
        high = self.cfg.max_queue - 1
        for ex in exchanges:
            if rec.pending >= high:
                self._wait_for_writer(high)
            if limit is not None and c["exchanges"] >= limit:
                self.done = True
                c["exchanges_over_limit"] = c.get("exchanges_over_limit", 0) + 1
                continue
            c["exchanges"] += 1
            if ex.response is None:
                c["requests_without_response"] += 1
            if ex.complete:
                c["exchanges_complete"] += 1
            else:
                c["exchanges_incomplete"] += 1
            c["request_bytes"] += len(ex.request.raw)
            if ex.response is not None:
                c["response_bytes"] += len(ex.response.raw)
            if not track:
                ex.response = None
                ex.interim = []
                ex.flags.discard(Flag.NO_RESPONSE)
            self.rec.write(ex)
            if limit is not None and c["exchanges"] >= limit:
                self.done = True

    def _wait_for_writer(self, high: int) -> None:
        """The writer is behind. While the reader queue still has room (it keeps draining
        the kernel ring meanwhile), pausing here turns a burst into a delay; past half of
        it, or once stopping, whole exchanges are dropped instead (counted)."""
        rec, q = self.rec, self.q
        self.c["writer_waits"] = self.c.get("writer_waits", 0) + 1
        while rec.pending >= high and rec.failed is None:
            if self.tick is not None:
                self.tick()  # keep --stats and /metrics live during a long catch-up
            if self.final:
                rec.wait_below(high // 2, 0.05)
                continue
            if q.fill() >= 0.5 or not self.cfg.absorb_bursts:
                return
            rec.wait_below(high // 2, 0.01)

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {
            "packets_seen": sum(r.packets for r in self.readers),
            "bytes_captured": sum(r.bytes for r in self.readers),
            "packets_dropped_kernel": 0,
            "packets_dropped_interface": 0,
            "packets_dropped_queue": self.q.dropped_packets,
        }
        for h in self.handles:
            _, d, i = h.stats()
            out["packets_dropped_kernel"] += d
            out["packets_dropped_interface"] += i
        out.update(self.c)
        if self.keylog is not None:
            for k, v in self.keylog.keys.stats.as_dict().items():
                out[f"tls_keylog_{k}"] = v
        for k, v in _flat(self.asm.stats.as_dict()).items():
            out[f"assembler_{k}"] = v
        out["flows_expired_incomplete"] = out.get(
            "assembler_flows_expired_incomplete", out.get("assembler_flows_expired", 0)
        )
        for reason, n in self.link.dropped.items():
            out[f"frames_dropped_{reason}"] = n
        for reason, n in self.link.notes.items():
            out[f"frames_ignored_{reason}".replace(".", "_")] = n
        rs = self.rec.stats()
        out["exchanges_written"] = rs.pop("recorded")
        out.update(rs)
        return out


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in d.items():
        key = f"{prefix}{k}".replace(".", "_").replace(" ", "_")
        if isinstance(v, int | float):
            out[key] = int(v)
        elif isinstance(v, dict):
            out.update(_flat(v, key + "_"))
    return out


def _final(stats: dict[str, int], rec: RecordingSink) -> dict[str, int]:
    rs = rec.stats()
    stats["exchanges_written"] = rs.pop("recorded")
    stats.update(rs)
    return stats


def run_capture(
    config: CaptureConfig,
    sink: Sink,
    *,
    stages: Sequence[Stage] = (),
    stop: threading.Event | None = None,
    on_stats: Callable[[dict[str, int]], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, int]:
    """Capture until ``stop`` is set, ``duration`` passes (on ``clock``) or ``max_exchanges``
    are seen.

    Then: stop reading (after a short drain of what the kernel still holds), flush the
    assembler (what is unfinished comes out flagged), let the writer finish, close the sink,
    and return the counters. ``on_stats`` gets them about once a second while running;
    ``on_ready`` is called once the interfaces are open and being read.
    Raises :class:`~replaygate.errors.CaptureError` (permission, interface, filter, a failing
    sink: with how many exchanges were lost).
    """
    config.validate()
    stop = stop or threading.Event()
    try:
        handles = _open_handles(config)
    except BaseException:
        with contextlib.suppress(Exception):
            sink.close()
        raise
    q = _RawQueue(config.max_raw_bytes)
    reader_stop = threading.Event()
    readers = [_Reader(h, q, config.batch_packets, reader_stop) for h in handles]
    rec = RecordingSink(sink, stages, max_queue=config.max_queue)
    try:
        cap = _Capture(config, rec, handles, readers, q)
    except BaseException:
        for h in handles:
            h.close()
        rec.close()
        raise
    start = clock.monotonic()
    deadline = start + config.duration if config.duration else None
    for r in readers:
        r.start()
    if on_ready is not None:
        on_ready()
    next_stats = [start + _STATS_EVERY_S]
    next_expire = start + _EXPIRE_EVERY_S

    def tick() -> None:
        now = clock.monotonic()
        if on_stats is not None and now >= next_stats[0]:
            next_stats[0] = now + _STATS_EVERY_S
            on_stats(cap.stats())

    cap.tick = tick
    failure: BaseException | None = None
    try:
        while not stop.is_set() and not cap.done:
            cap.poll_keys()
            cap.process(q.get_all(0.05))
            now = clock.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_expire:
                next_expire = now + _EXPIRE_EVERY_S
                cap.emit(cap.asm.expire(time.time_ns()))
            if rec.failed is not None:
                break
            dead = [r for r in readers if r.error is not None]
            if dead:
                failure = dead[0].error
                break
            tick()
        # graceful stop: stop the readers, drain in-flight packets, flush the assembler
        reader_stop.set()
        for r in readers:
            r.join()
        if failure is None and not cap.done:
            for r in readers:
                r.final_drain(config.stop_drain_s)
        cap.final = True
        cap.process(q.get_all(0))
        cap.poll_keys()
        cap.emit(cap.asm.flush())
    except KeyboardInterrupt:
        reader_stop.set()
        cap.emit(cap.asm.flush())
    finally:
        reader_stop.set()
        for r in readers:
            r.join()
        stats = cap.stats()
        for h in handles:
            h.close()
        try:
            rec.close()
        except CaptureError as e:
            e.stats = _final(stats, rec)  # type: ignore[attr-defined]
            raise
        _final(stats, rec)
        if on_stats is not None:
            on_stats(stats)
    if failure is not None:
        raise CaptureError(f"capture failed: {failure}")
    return stats
