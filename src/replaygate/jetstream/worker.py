"""``replaygate worker``: replay from a JetStream stream, publish results, ack after publish.

Work is split by partition (``hash(session) % partitions``), one durable pull consumer per
partition, so one session always goes to one worker and keeps its order. Partitions are leased
to live workers through a KV bucket whose entries expire after ``LEASE_TTL_S``: each worker
renews its leases every second and takes free ones up to its fair share
(``ceil(partitions / live workers)``). When a worker dies its leases expire, others take the
partitions over, and JetStream redelivers what it had not acknowledged after ``ack_wait``.
A message is acknowledged only after every result for it was published (at-least-once); the
aggregator keeps the first result per exchange id, so a redelivered exchange is reported once.

Rate and timing across workers: ``--rate N`` is split evenly over live workers (approximate:
it follows the live-worker count each second). As-recorded timing (``--speed X``) uses one
epoch shared through the KV bucket: every worker sends an exchange at
``epoch + (ts - first_ts) / X``; the tolerance is the clock difference between machines plus
fetch latency (tens of ms on one network), documented in docs/deployment.md.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import socket
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from .._clock import SYSTEM_CLOCK, Clock
from ..errors import FormatError, StreamError
from ..model import Exchange
from ..replay import ReplayConfig
from ..replay.engine import Engine, check_no_workers, new_event_loop
from ._conn import _one_line, connect
from ._publish import AckPublisher, PubItem
from ._pull import PullConsumer
from .admin import ensure_streams
from .codec import HDR_WORKER, decode_exchange, encode_exchange
from .url import StreamURL

__all__ = ["WorkerConfig", "WorkerStats", "run_worker"]


@dataclass
class WorkerConfig:
    source: StreamURL
    replay: ReplayConfig
    worker_id: str | None = None
    rate: float | None = None  # global requests/s across all live workers
    speed: float | None = None  # as recorded, X times faster (None: as fast as allowed)
    max_in_flight: int = 256
    ack_wait_s: float = 10.0
    exit_when_idle_s: float | None = None  # exit once the stream is drained and idle this long
    duration_s: float | None = None
    batch: int = 64
    correlate: bool = True  # substitute staging's session tokens and created ids


@dataclass
class WorkerStats:
    worker_id: str = ""
    fetched: int = 0
    replayed: int = 0
    published: int = 0
    acked: int = 0
    redelivered: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    partitions_taken: int = 0
    resubscribed: int = 0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["errors"] = dict(self.errors)
        d["dropped"] = dict(self.dropped)
        d["rate"] = round(self.replayed / self.elapsed_s, 1) if self.elapsed_s else 0.0
        return d


class _Worker:
    def __init__(self, cfg: WorkerConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self.cfg = cfg
        self.clock = clock  # pacing (--rate, --speed), idleness, --duration, heartbeats
        self.url = cfg.source
        self.id = (
            cfg.worker_id or f"{socket.gethostname()}-{os.getpid()}-{random.randrange(1 << 16):04x}"
        )
        self.stats = WorkerStats(worker_id=self.id)
        self.owned: dict[int, int] = {}  # partition -> lease revision
        self.subs: dict[int, Any] = {}
        self.fetchers: dict[int, asyncio.Task[None]] = {}
        self.live_workers = 1
        self.waiting: dict[str, tuple[Any, int]] = {}  # exchange id -> (msg, results still due)
        self.results: deque[Exchange] = deque()  # replayed, to publish
        self.results_ready = asyncio.Event()
        self.to_ack: list[str] = []  # ack subjects of messages whose results are all stored
        self.ack_ready = asyncio.Event()
        self.stop = asyncio.Event()
        self.stop_requested = False  # SIGTERM/SIGINT: finish what is in flight, then return
        self.room = asyncio.Event()  # set when max_in_flight has room for a fetch again
        self._room_mark = cfg.max_in_flight - min(cfg.batch, max(1, cfg.max_in_flight // 4))
        self.last_activity = clock.monotonic()
        self.epoch: tuple[int, float] | None = None
        self._next_send = 0.0

    # -- leases ---------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        info = {
            "id": self.id,
            "ts": self.clock.time(),
            "partitions": sorted(self.owned),
            "replayed": self.stats.replayed,
            "rate": self.stats.as_dict()["rate"],
            "in_flight": len(self.waiting),
        }
        await self.kv.put(f"w.{self.id}", orjson.dumps(info))

    async def _leases(self) -> None:
        await self._heartbeat()
        for p, rev in list(self.owned.items()):
            try:
                self.owned[p] = await self.kv.update(f"p{p}", self.id.encode(), last=rev)
            except Exception:
                await self._drop_partition(p)
        try:
            keys = await self.kv.keys()
        except Exception:
            keys = []
        self.live_workers = max(1, sum(1 for k in keys if k.startswith("w.")))
        share = math.ceil(self.url.partitions / self.live_workers)
        order = sorted(
            range(self.url.partitions), key=lambda p: zlib.crc32(f"{self.id}/{p}".encode())
        )
        for p in order:
            if len(self.owned) >= share:
                break
            if p in self.owned or f"p{p}" in keys:
                continue
            try:
                rev = await self.kv.create(f"p{p}", self.id.encode())
            except Exception:
                continue
            self.owned[p] = rev
            await self._subscribe(p)
        while len(self.owned) > share:
            p = max(self.owned)
            await self._drop_partition(p)
            try:
                await self.kv.delete(f"p{p}")
            except Exception:
                pass

    async def _subscribe(self, p: int) -> None:
        running = self.fetchers.get(p)
        if running is not None and not running.done():
            return  # taken back while its fetcher was winding down: it simply goes on
        self.stats.partitions_taken += 1
        sub = await self._pull(p)
        self.subs[p] = sub
        self.fetchers[p] = asyncio.ensure_future(self._partition_loop(p, sub))

    async def _pull(self, p: int) -> PullConsumer:
        """The partition's durable pull consumer (created like nats-py's pull_subscribe
        creates it when missing), and a fetcher on it."""
        durable = self.url.consumer(p)
        try:
            await self.js.consumer_info(self.url.stream, durable)
        except NotFoundError:
            await self.js.add_consumer(
                self.url.stream,
                ConsumerConfig(
                    name=durable,
                    durable_name=durable,
                    filter_subject=self.url.subject(p),
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=self.cfg.ack_wait_s,
                    max_ack_pending=self.cfg.max_in_flight * 4,
                ),
            )
        api = getattr(self.js, "_prefix", "$JS.API")
        return await PullConsumer(self.nc, api, self.url.stream, durable, headers=False).start()

    async def _drop_partition(self, p: int) -> None:
        """Give a partition up. Its fetcher finishes the fetch in progress (so no message is
        stranded in a cancelled pull request until ack_wait) and then unsubscribes."""
        self.owned.pop(p, None)

    async def _lease_loop(self) -> None:
        # Announce ourselves and wait one renewal round before taking partitions, so workers
        # started together see each other and split the partitions without moving them.
        try:
            await self._heartbeat()
            await asyncio.wait_for(self.stop.wait(), 1.2)
        except Exception:
            pass
        while not self.stop.is_set():
            try:
                await self._leases()
            except Exception:
                pass
            try:
                await asyncio.wait_for(self.stop.wait(), 1.0)
            except TimeoutError:
                pass

    # -- pacing ---------------------------------------------------------------------------
    async def _pace(self, ex: Exchange) -> None:
        cfg = self.cfg
        if cfg.speed:
            if self.epoch is None:
                self.epoch = await self._shared_epoch(ex.ts_ns)
            t0, wall = self.epoch
            due = wall + (ex.ts_ns - t0) / 1e9 / cfg.speed
            delay = due - self.clock.time()
            if delay > 0:
                await self.clock.sleep(delay)
        if cfg.rate:
            per_worker = cfg.rate / self.live_workers
            now = self.clock.monotonic()
            self._next_send = max(self._next_send + 1.0 / per_worker, now - 0.1)
            if self._next_send > now:
                await self.clock.sleep(self._next_send - now)

    async def _shared_epoch(self, first_ts: int) -> tuple[int, float]:
        value = orjson.dumps({"t0": first_ts, "wall": self.clock.time() + 0.5})
        try:
            await self.kv_epoch.create("epoch", value)
        except Exception:
            pass
        e = await self.kv_epoch.get("epoch")
        d = orjson.loads(e.value or value)
        return int(d["t0"]), float(d["wall"])

    # -- work -----------------------------------------------------------------------------
    def result_ready(self, ex: Exchange) -> None:
        """Called by the engine (on our loop) for each replayed exchange."""
        self.results.append(ex)
        self.results_ready.set()

    async def _partition_loop(self, p: int, sub: Any) -> None:
        """Fetch from one partition's consumer. One task per partition, so a drained
        partition waits in its own fetch and never delays the others."""
        per_msg = len(self.cfg.replay.targets) + (1 if self.cfg.replay.baseline else 0)
        box = [sub]
        try:
            await self._fetch_partition(p, box, per_msg)
        finally:
            if self.fetchers.get(p) is asyncio.current_task():
                del self.fetchers[p]
            self.subs.pop(p, None)
            try:
                await box[0].unsubscribe()
            except Exception:
                pass

    async def _stalled(self, p: int) -> bool:
        """No message for a while: is the consumer really empty, or is our pull request
        lost (its leader moved to another node)?"""
        try:
            info = await self.js.consumer_info(self.url.stream, self.url.consumer(p))
        except Exception:
            return True
        return bool(info.num_pending)

    async def _fetch_partition(self, p: int, box: list[Any], per_msg: int) -> None:
        empty = 0
        paced = bool(self.cfg.speed or self.cfg.rate)
        while not self.stop.is_set() and p in self.owned:
            room = self.cfg.max_in_flight - len(self.waiting)
            if room <= 0:  # woken when results free enough room (or at stop)
                self.room.clear()
                await self.room.wait()
                continue
            if empty >= 5:  # re-subscribe (same durable consumer) after a failover
                empty = 0
                if await self._stalled(p):
                    try:
                        new = await self._pull(p)
                    except Exception:
                        await asyncio.sleep(0.5)
                        continue
                    old, box[0] = box[0], new
                    self.subs[p] = new
                    self.stats.resubscribed += 1
                    try:
                        await old.unsubscribe()
                    except Exception:
                        pass
            try:
                msgs = await box[0].fetch(min(self.cfg.batch, room), timeout=1.0)
            except TimeoutError:
                empty += 1
                continue
            except Exception:
                empty += 1
                await asyncio.sleep(0.2)
                continue
            empty = 0
            if msgs:
                self.last_activity = self.clock.monotonic()
            for m in msgs:
                self.stats.fetched += 1
                if _deliveries(m) > 1:
                    self.stats.redelivered += 1
                try:
                    ex = decode_exchange(m.data)
                except FormatError:
                    self.stats.dropped["undecodable_message"] += 1
                    await m.term()
                    continue
                if ex.id in self.waiting:  # redelivered while still in flight here
                    continue
                if paced:
                    await self._pace(ex)
                if self.engine_closed:  # stopping: let another worker (or the next run) have it
                    self.stats.dropped["replay_queue_full"] += 1
                    await m.nak(delay=1)
                    continue
                self.waiting[ex.id] = (m, per_msg)
                self.engine.submit_live(ex)

    def _stored(self, ex_id: str, duplicate: bool = False) -> None:
        """One result of ``ex_id`` is in the results stream; ack the source message once
        all of them are."""
        self.stats.published += 1
        self.last_activity = self.clock.monotonic()
        item = self.waiting.get(ex_id)
        if item is None:
            return
        msg, due = item
        if due > 1:
            self.waiting[ex_id] = (msg, due - 1)
            return
        del self.waiting[ex_id]
        if len(self.waiting) <= self._room_mark:
            self.room.set()
        if msg.reply:
            self.to_ack.append(msg.reply)
            self.ack_ready.set()

    async def _publish_loop(self) -> None:
        """Publish results as the engine finishes them, all that are ready in one write (acks
        come back asynchronously)."""
        subject = f"rg.{self.url.results_stream}.r"
        pub = self.pub
        while True:
            if not self.results:
                self.results_ready.clear()
                await self.results_ready.wait()
                continue
            batch: list[PubItem] = []
            results, stats, stored = self.results, self.stats, self._stored
            while results and len(batch) < 512:  # everything finished since the last round
                ex = results.popleft()
                stats.replayed += 1
                if ex.replay_error:
                    stats.errors[ex.replay_error] += 1
                payload, headers = encode_exchange(ex)
                headers[HDR_WORKER] = self.id
                batch.append((subject, payload, headers, partial(stored, ex.id)))
            await pub.publish_many(batch)

    async def _ack_loop(self) -> None:
        """Acknowledge source messages, everything ready at once (one write for many)."""
        while True:
            if not self.to_ack:
                self.ack_ready.clear()
                await self.ack_ready.wait()
                continue
            todo, self.to_ack = self.to_ack, []
            try:
                await self.pub.send_plain(todo, b"+ACK")
                self.stats.acked += len(todo)
            except Exception:
                pass  # not acked: redelivered after ack_wait, the aggregator keeps one

    async def _drained_once(self) -> bool:
        """Every partition that holds messages has its consumer, with nothing pending and
        nothing waiting for an ack."""
        try:
            info = await self.js.stream_info(self.url.stream, subjects_filter=self.url.subjects)
            infos = await self.js.consumers_info(self.url.stream)
        except Exception:
            return False
        by_name = {c.name: c for c in infos}
        for subject, count in (info.state.subjects or {}).items():
            if not count:
                continue
            try:
                p = int(subject.rsplit(".", 1)[1])
            except ValueError:
                continue
            c = by_name.get(self.url.consumer(p))
            if c is None or c.num_pending or c.num_ack_pending:
                return False
        return True

    async def _drained(self) -> bool:
        """Drained twice, a second apart: consumer state read during a failover can be stale."""
        if not await self._drained_once():
            return False
        await asyncio.sleep(1.0)
        return not self.waiting and await self._drained_once()

    async def run(self) -> WorkerStats:
        self.loop = asyncio.get_running_loop()
        check_no_workers(self.cfg.replay)
        self.cfg.replay.validate()
        self.nc = await connect(self.url, name=f"replaygate-worker-{self.id}")
        t_start = self.clock.monotonic()
        try:
            self.js = self.nc.jetstream()
            await ensure_streams(self.js, self.url)
            self.kv = await self.js.key_value(self.url.leases_bucket)
            self.kv_epoch = self.kv
            # the engine runs on this loop: no thread hop per exchange, nor per result
            self.engine_closed = False
            engine_stop = threading.Event()
            hooks: list[Any] = []
            if self.cfg.correlate:
                from ..replay.correlation import CorrelationHook

                hooks.append(CorrelationHook())
            self.engine = Engine(
                self.cfg.replay,
                sink=_ResultSink(self),
                hooks=hooks,
                loop=self.loop,
                stop=engine_stop,
                raise_on_unsafe=False,
            )
            self.pub = AckPublisher(self.nc, in_flight=self.cfg.max_in_flight, clock=self.clock)
            await self.pub.start()
            replaying = asyncio.ensure_future(self.engine.run_live())
            tasks = [
                asyncio.ensure_future(self._lease_loop()),
                asyncio.ensure_future(self._publish_loop()),
                asyncio.ensure_future(self._ack_loop()),
            ]
            try:
                while True:
                    await asyncio.sleep(0.5)
                    now = self.clock.monotonic()
                    if self.stop_requested:
                        break
                    if self.cfg.duration_s and now - t_start >= self.cfg.duration_s:
                        break
                    idle = self.cfg.exit_when_idle_s
                    if (
                        idle is not None
                        and not self.waiting
                        and now - self.last_activity >= idle
                        and await self._drained()
                    ):
                        break
                    for t in [*tasks, replaying]:
                        if t.done() and t.exception() is not None:
                            raise StreamError(f"worker failed: {_one_line(t.exception())}")
            finally:
                self.stop.set()
                await self._finish(replaying, tasks)
        finally:
            self.stats.elapsed_s = self.clock.monotonic() - t_start
            await self.nc.close()
        return self.stats

    async def _finish(self, replaying: asyncio.Future[Any], tasks: list[Any]) -> None:
        """Answer what is in flight, publish its results and acks, give the partitions up."""
        self.engine_closed = True
        self.room.set()
        self.engine.close_live()
        done, _ = await asyncio.wait({replaying}, timeout=30)
        if not done:
            self.engine.stop.set()
            self.engine.close_live()
            await asyncio.wait({replaying}, timeout=self.cfg.replay.response_timeout + 5)
        deadline = time.monotonic() + 10
        while (self.results or self.pub.pending or self.to_ack) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # publish what the engine finished, and ack it
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.pub.give_up()
        await self.pub.close()
        fetchers = list(self.fetchers.values())
        if fetchers:  # they stop after their fetch in progress (<= 1 s)
            await asyncio.wait(fetchers, timeout=5)
        for p in list(self.owned):
            await self._drop_partition(p)
            try:
                await self.kv.delete(f"p{p}")
            except Exception:
                pass
        try:
            await self.kv.delete(f"w.{self.id}")
        except Exception:
            pass


def _deliveries(m: Any) -> int:
    """``m.metadata.num_delivered``, read from the ack subject without building the whole
    metadata (a datetime per message): ``$JS.ACK.<stream>.<consumer>.<delivered>...``."""
    t = (m.reply or "").split(".")
    if len(t) == 9 and t[0] == "$JS" and t[1] == "ACK" and t[4].isdigit():
        return int(t[4])
    return int(m.metadata.num_delivered)  # the domain/account form, or anything else


class _ResultSink:
    def __init__(self, worker: _Worker) -> None:
        self._w = worker

    def write(self, ex: Exchange) -> None:
        self._w.result_ready(ex)

    def close(self) -> None:
        return None


def run_worker(cfg: WorkerConfig, *, clock: Clock = SYSTEM_CLOCK) -> WorkerStats:
    """Run a worker until the stream is drained (``exit_when_idle_s``), ``duration_s``, or
    until interrupted."""
    worker = _Worker(cfg, clock)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (systemd, Kubernetes) and Ctrl-C stop gracefully, so the stats return
            loop = runner.get_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, setattr, worker, "stop_requested", True)
        return runner.run(worker.run())
