"""One run, built once: source -> stages -> (replay) -> sinks and comparator -> reports.

Every command that moves traffic is this run with other inputs: ``convert`` (files to a
file), ``capture`` and ``proxy`` (live to a file), ``replay`` (files to targets), ``shadow``
(live to targets), ``worker`` (a stream to targets). :meth:`Run.run` pushes everything
through and returns a :class:`RunResult`; iterating a :class:`Run` pulls the exchanges as
they reach the sinks instead. :meth:`Run.report` judges and writes the reports.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._clock import SYSTEM_CLOCK, Clock
from ..errors import ReplaygateError
from ..model import Counters, Exchange
from ..pipeline import Pipeline, Sink, Stage, TeeSink, close_stages
from ..stages.defaults import default_stages
from ._config import CaptureInput, FileInput, ProxyInput, RunConfig, StreamInput
from ._files import FileSource, check_inputs
from ._output import compare_config, judge_and_write, open_output, remove_if_empty
from ._replay import make_hooks, run_workers
from ._summary import count_incomplete

if TYPE_CHECKING:
    from ..compare import Comparator, TargetWatcher, Verdict
    from ..replay import ReplayStats

__all__ = ["Run", "RunResult", "run"]

Stats = Mapping[str, Any]


@dataclass
class RunResult:
    """What a run did. ``counters``: read, written, dropped by reason, notes, cut inputs;
    ``replay``: the replay's stats (None without replay); ``live``: the live source's (or
    worker's) counters; ``incomplete``: incomplete exchanges written, by flag."""

    counters: Counters
    replay: ReplayStats | None = None
    live: dict[str, Any] = field(default_factory=dict)
    hook_summaries: list[str] = field(default_factory=list)
    incomplete: Counter[str] = field(default_factory=Counter)
    incomplete_total: int = 0
    verdict: Verdict | None = None  # with reports, once judged
    reports_written: list[str] = field(default_factory=list)


class _Tally:
    """Counts incomplete exchanges by flag on their way into the sink."""

    name = "tally"

    def __init__(self, result: RunResult) -> None:
        self.result = result

    def process(self, ex: Exchange) -> tuple[Exchange]:
        if count_incomplete(ex, self.result.incomplete):
            self.result.incomplete_total += 1
        return (ex,)

    def close(self) -> tuple[()]:
        return ()


class _ToReplayer:
    """A live source's sink: hands each exchange to the replayer without ever waiting."""

    def __init__(self, replayer: Any, close_timeout: float) -> None:
        self.replayer = replayer
        self.close_timeout = close_timeout
        self.final: Any = None

    def write(self, ex: Exchange) -> None:
        self.replayer.submit(ex)

    def close(self) -> None:
        self.final = self.replayer.close(self.close_timeout)


def live_replay_stats(st: Any) -> dict[str, int | float]:
    """A live replay's stats as ``replay_*`` counters next to the capture's."""
    out: dict[str, int | float] = {
        "replay_sent": st.sent,
        "replay_answered": st.answered,
        "replay_errors": st.error_count,
    }
    for k, v in st.errors.items():
        out[f"replay_error_{k}"] = v
    for k, v in st.dropped.items():
        out[f"replay_dropped_{k}"] = v
    if getattr(st, "order_waited", 0):
        out["replay_order_waited"] = st.order_waited
        out["replay_order_wait_p99_ms"] = st.order_wait_p99_ms
    for k in ("latency_p50_ms", "latency_p99_ms"):
        v = getattr(st, k, 0)
        if v:
            out[f"replay_{k}"] = v
    return out


def _ignore(*_: Any) -> None:
    pass


class Run:
    """A run built from one :class:`~replaygate.runner.RunConfig`: the stages (once, in the
    default order), the comparator (with reports), the output. Use it once: ``run()``, or
    iterate it (pull mode), then ``report()`` when reports were asked for."""

    def __init__(
        self, config: RunConfig, *, counters: Counters | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.config = config
        self.clock = clock  # live sources' --duration, a worker's pacing
        self.counters = counters or Counters()
        self.result = RunResult(self.counters)
        self.comparator: Comparator | None = None
        self.sink: Sink | None = None  # the output's writer, once opened
        self.port: int | None = None  # a proxy's listening port, once started
        self._stages: list[Stage] | None = None
        self._live: Callable[[], Stats] = dict
        self._pull: Sink | None = None
        if config.reports is not None:
            from ..compare import Comparator

            self.comparator = Comparator(compare_config(config.toml))
            self.comparator.sources.extend(config.compare_sources)

    @property
    def stages(self) -> list[Stage]:
        """The traffic stages, built on first use (worker processes build their own)."""
        if self._stages is None:
            self._stages = default_stages(
                self.config.traffic, self.config.toml, counters=self.counters
            )
        return self._stages

    def stats(self) -> Stats:
        """The live source's counters now (capture, proxy, shadow), for metrics."""
        return self._live()

    # -- push mode ---------------------------------------------------------------------------
    def run(
        self,
        *,
        stop: threading.Event | None = None,
        on_progress: Callable[[ReplayStats], None] | None = None,
        on_stats: Callable[[Stats], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run to the end (files exhausted, ``stop`` set, a live source's duration or limit
        reached). ``on_progress``: replay stats twice a second; ``on_stats``: a live source's
        counters about once a second; ``on_ready``: the live source is listening/capturing;
        ``on_note``: one line worth telling (a proxy's recording failure)."""
        stop = stop or threading.Event()
        src = self.config.source
        watcher = self._start_watcher()
        try:
            if isinstance(src, StreamInput):
                self._worker(src)
            elif isinstance(src, FileInput) and self.config.replay is None:
                self._convert(src)
            elif isinstance(src, FileInput):
                self._replay_files(src, stop, on_progress or _ignore)
            elif isinstance(src, CaptureInput):
                self._capture(src, stop, on_stats or _ignore, on_ready or _ignore)
            else:
                self._proxy(src, stop, on_stats or _ignore, on_ready or _ignore, on_note)
        finally:
            if watcher is not None and self.comparator is not None:
                self.comparator.set_target_metrics(watcher.stop())
            elif watcher is not None:
                watcher.stop()
        self._annotate_comparator()
        return self.result

    def report(self, **gate: Any) -> tuple[Verdict, list[str]]:
        """Judge (``[gate]``, ``gate`` overrides it) and write the reports asked for."""
        if self.comparator is None or self.config.reports is None:
            raise ValueError("report(): the run was configured without reports")
        verdict, written = judge_and_write(
            self.comparator, self.config.reports, self.config.toml, **gate
        )
        self.result.verdict, self.result.reports_written = verdict, written
        return verdict, written

    # -- pull mode ---------------------------------------------------------------------------
    def __iter__(self) -> Generator[Exchange, None, None]:
        """The exchanges as they reach the sinks (written, compared): staged ones without
        replay, replayed ones with. The output and the comparator still get them; the run's
        result is :attr:`result` once the iteration ends. Stopping early stops the run."""
        src = self.config.source
        if isinstance(src, FileInput) and self.config.replay is None:
            yield from self._convert_pull(src)
            return
        yield from self._threaded_pull()

    def _convert_pull(self, src: FileInput) -> Iterator[Exchange]:
        out: list[Exchange] = []
        collect = _Collect(out)
        p = self._convert_pipeline(collect)
        try:
            for ex in FileSource(src, [], self.counters).raw():
                p.feed(ex)
                yield from out
                out.clear()
        finally:
            p.close()
        yield from out

    def _threaded_pull(self) -> Iterator[Exchange]:
        q: queue.Queue[Exchange | BaseException | None] = queue.Queue(maxsize=256)
        stop = threading.Event()
        pull = _QueueSink(q, stop)
        self._pull = pull

        def body() -> None:
            try:
                self.run(stop=stop)
                q.put(None)
            except BaseException as e:
                q.put(e)

        t = threading.Thread(target=body, name="replaygate-run", daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            pull.discard = True
            while t.is_alive():
                try:  # unblock a producer waiting for room, until it ends
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass
            t.join()

    # -- the sinks -----------------------------------------------------------------------------
    def _sinks(self, *, recorder: bool = True) -> Sink | None:
        """Output, comparator and (pull mode) the consumer's queue, in that order."""
        sinks: list[Sink] = []
        out = self.config.output
        if out is not None:
            self.sink = open_output(out, recorder=recorder)
            sinks.append(self.sink)
        if self.comparator is not None:
            from ..compare import CompareSink

            sinks.append(CompareSink(self.comparator))
        if self._pull is not None:
            sinks.append(self._pull)
        if len(sinks) > 1:
            return TeeSink(sinks)
        return sinks[0] if sinks else None

    def _discard_output(self) -> None:
        out = self.config.output
        if out is not None:
            remove_if_empty(out.path)

    # -- the runs ------------------------------------------------------------------------------
    def _convert_pipeline(self, extra: Sink | None = None) -> Pipeline:
        stages = self.stages  # first: a bad flag must not leave an output file behind
        sink = self._sinks(recorder=False)
        sinks = [s for s in (sink, extra) if s is not None]
        tee: Sink = sinks[0] if len(sinks) == 1 else TeeSink(sinks)
        return Pipeline([*stages, _Tally(self.result)], tee, self.counters)

    def _convert(self, src: FileInput) -> None:
        p = self._convert_pipeline()
        try:
            try:
                for ex in FileSource(src, [], self.counters).raw():
                    p.feed(ex)
            finally:
                p.close()
        except ReplaygateError:
            self._after_failed_convert()
            raise

    def _after_failed_convert(self) -> None:
        out = self.config.output
        if out is None or self.counters.written or out.write.append:
            return
        files = getattr(self.sink, "files", None)
        for f in files if isinstance(files, list) else [out.path]:
            try:
                os.remove(f)
            except OSError:
                pass

    def _replay_files(
        self, src: FileInput, stop: threading.Event, on_progress: Callable[[ReplayStats], None]
    ) -> None:
        from ..replay import run_replay

        rc = self.config.replay
        assert rc is not None
        check_inputs(src.paths)
        if rc.workers > 1:
            self.result.replay = run_workers(
                src,
                rc,
                self.config.traffic,
                self.config.toml,
                correlate=self.config.correlate,
                output=self.config.output.path if self.config.output else None,
                comparator=self.comparator,
                counters=self.counters,
                on_progress=on_progress,
            )
            return
        stages = self.stages
        source = FileSource(src, stages, self.counters)
        sink = self._sinks(recorder=False)
        hooks = make_hooks(stages, self.config.correlate, self.config.toml)
        try:
            self.result.replay = run_replay(
                source, rc, sink=sink, hooks=hooks, on_progress=on_progress, stop=stop
            )
        finally:
            close_stages(stages, self.counters)
        for h in hooks:  # counts only, never values (correlation, masking)
            summary = getattr(h, "summary", None)
            if callable(summary):
                self.result.hook_summaries.append(str(summary()))

    def _capture(
        self,
        src: CaptureInput,
        stop: threading.Event,
        on_stats: Callable[[Stats], None],
        on_ready: Callable[[], None],
    ) -> None:
        from ..sources.capture import run_capture

        stages = self.stages
        target, on_stats = self._live_target(on_stats)
        self._live = lambda: self.result.live
        try:
            result = run_capture(
                src.config,
                target,
                stages=stages,
                stop=stop,
                on_stats=on_stats,
                on_ready=on_ready,
                clock=self.clock,
            )
        except Exception as e:
            if not isinstance(getattr(e, "stats", None), dict):
                self._discard_output()
            raise
        self.result.live = dict(result)
        if isinstance(target, _ToReplayer):
            final = target.final if target.final is not None else target.replayer.stats
            self.result.replay = final
            self.result.live.update(live_replay_stats(final))

    def _live_target(
        self, on_stats: Callable[[Stats], None]
    ) -> tuple[Sink, Callable[[Stats], None]]:
        """The capture's sink: the output, or (shadow) a live replayer in front of it."""
        rc = self.config.replay
        if rc is None:
            sink = self._sinks()
            assert sink is not None

            def record(st: Stats) -> None:
                self.result.live = dict(st)
                on_stats(st)

            return sink, record
        from ..replay import LiveReplayer
        from ._replay import replay_hooks

        stages = self.stages
        replayer = LiveReplayer(
            rc, sink=self._sinks(), hooks=replay_hooks(stages), max_queue=self.config.max_queue
        )
        try:
            replayer.start()
        except Exception:
            self._discard_output()
            raise

        def merged(st: Stats) -> None:
            self.result.live = {**st, **live_replay_stats(replayer.stats)}
            on_stats(self.result.live)

        return _ToReplayer(replayer, rc.response_timeout + 5), merged

    def _proxy(
        self,
        src: ProxyInput,
        stop: threading.Event,
        on_stats: Callable[[Stats], None],
        on_ready: Callable[[], None],
        on_note: Callable[[str], None] | None,
    ) -> None:
        from ..sources.proxy import GRPC_NEEDS_HTTP2, ProxyServer

        stages = self.stages
        sink = self._sinks()
        assert sink is not None
        try:
            server = ProxyServer(src.config, sink, stages=stages)
            server.start()
        except Exception:
            self._discard_output()
            raise
        self.port = server.port
        self._live = lambda: server.stats
        try:
            on_ready()
            deadline = self.clock.monotonic() + src.duration_s if src.duration_s else None
            reported = grpc_warned = False
            while not stop.wait(0.2):
                on_stats(server.stats)
                failure = server.recording_failure
                if failure is not None and not reported and on_note is not None:
                    reported = True
                    on_note(str(failure))
                if server.stats.get("grpc_needs_http2_upstream") and not grpc_warned:
                    grpc_warned = True
                    if on_note is not None:
                        on_note(GRPC_NEEDS_HTTP2)
                if deadline is not None and self.clock.monotonic() >= deadline:
                    break
            if server.stats.get("grpc_needs_http2_upstream") and not grpc_warned and on_note:
                on_note(GRPC_NEEDS_HTTP2)  # calls in the last instant before the stop
        finally:
            try:
                server.stop()  # raises if the output failed: the counters come first
            finally:
                self.result.live = dict(server.stats)

    def _worker(self, src: StreamInput) -> None:
        from ..jetstream.worker import run_worker

        self.result.live = run_worker(src.config, clock=self.clock).as_dict()

    # -- the comparator ------------------------------------------------------------------------
    def _start_watcher(self) -> TargetWatcher | None:
        w = self.config.watch
        if w is None or (not w.metrics_url and w.pid is None):
            return None
        from ..compare import TargetWatcher

        watcher = TargetWatcher(metrics_url=w.metrics_url, pid=w.pid, interval=w.interval_s)
        watcher.start()
        return watcher

    def _annotate_comparator(self) -> None:
        """The replay's order stats and HTTP/2 events (and, from files, what the stages
        filtered out) go into the report."""
        c, st = self.comparator, self.result.replay
        if c is None:
            return
        as_dict = getattr(st, "as_dict", None)
        if callable(as_dict):
            c.replay = {k: v for k, v in as_dict().items() if k.startswith("order") or k == "http2"}
        if isinstance(self.config.source, FileInput):
            for reason, n in self.counters.dropped.items():
                c.skipped[f"filtered: {reason}"] += n


class _Collect:
    """Pull mode without threads: what the pipeline writes, kept for the consumer."""

    def __init__(self, out: list[Exchange]) -> None:
        self.out = out

    def write(self, ex: Exchange) -> None:
        self.out.append(ex)

    def close(self) -> None:
        pass


class _QueueSink:
    """Pull mode: the consumer's bounded queue (the run waits for the consumer)."""

    def __init__(self, q: queue.Queue[Exchange | BaseException | None], stop: threading.Event):
        self.q = q
        self.stop = stop
        self.discard = False

    def write(self, ex: Exchange) -> None:
        if not self.discard:
            self.q.put(ex)

    def close(self) -> None:
        pass


def run(config: RunConfig, **callbacks: Any) -> RunResult:
    """Build a :class:`Run` and run it to the end (see :meth:`Run.run` for ``callbacks``);
    with reports in ``config``, they are judged and written too (``result.verdict``,
    ``result.reports_written``)."""
    r = Run(config)
    result = r.run(**callbacks)
    if config.reports is not None:
        r.report()
    return result
