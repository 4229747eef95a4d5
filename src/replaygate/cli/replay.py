"""``replaygate replay FILE... --target URL``: send recorded traffic to staging.

Flags win over the ``[replay]`` section of replaygate.toml. The traffic flags (filters,
sampling, masking, rewrites, middleware, plugins) apply to the files on the way in; session
token correlation is on by default (``--no-correlate``). ``--output`` records requests,
original and replayed responses (type 3, with latency) for a later ``compare``; the report
flags (``--report``/``--json``/...) compare on the fly and gate (exit 1 on fail).
A progress bar goes to stderr on a terminal (``--progress`` forces it); a summary always.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import click

from .._config_schema import float_range, int_range
from ..config import load_config, parse_duration, parse_size, section
from ..errors import ConfigError, InputError, ReplayError, ReplaygateError
from ..formats import ReadOptions, format_of, open_reader, open_writer, raise_cuts
from ..formats._limits import writing
from ..model import Exchange
from ..pipeline import Counters, Sink, Stage, TeeSink
from ..replay import (
    ReplayConfig,
    ReplayHook,
    ReplayStats,
    parse_ramp,
    run_replay,
    run_replay_parallel,
)
from ..stages.defaults import TrafficOptions, default_stages
from ._options import (
    close_stages,
    input_limit_options,
    iter_through,
    log_format_option,
    mask_key_of,
    read_limits,
    replay_hooks,
    traffic_group,
)
from ._replay_options import ReplayOptions, correlate_option, replay_options
from ._report_options import (
    compare_config,
    finish_reports,
    report_options,
    start_watcher,
    watch_options,
)

__all__ = ["FileSource", "command", "format_replay_stats", "staged"]

_DURATION_FIELDS = ("duration", "max_wait", "connect_timeout", "response_timeout")
_SIZE_FIELDS = ("max_response_size", "max_header_size")


def staged(
    source: Iterable[Exchange], stages: Sequence[Stage], counters: Counters
) -> Iterator[Exchange]:
    """Push each exchange through ``stages`` (pipeline-style), yielding what comes out.

    Middleware is drained at the end of the source but stays open so replayed responses still
    reach it; call :func:`~replaygate.cli._options.close_stages` after the replay.
    """
    for ex in iter_through(source, stages, counters):
        counters.written += 1
        yield ex


class FileSource:
    """Re-readable source over files (``--loop`` reads them again) with the stages applied."""

    def __init__(
        self,
        paths: Sequence[str],
        stages: Sequence[Stage],
        counters: Counters,
        log_format: str | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.stages = list(stages)
        self.counters = counters
        self.log_format = log_format
        self.limits = dict(limits or {})

    def _raw(self) -> Iterator[Exchange]:
        # a cut input is counted (every format alike) and reported once the replay is done
        opts = ReadOptions(
            log_format=self.log_format,
            counters=self.counters,
            extra={"truncated": "count"},
            **self.limits,
        )
        for p in self.paths:
            yield from open_reader(p, opts)

    def __iter__(self) -> Iterator[Exchange]:
        if not self.stages:
            return self._raw()
        return staged(self._raw(), self.stages, self.counters)


def count_requests(paths: Sequence[str]) -> int | None:
    """Requests in plain ``.gor`` files, counted fast (for the progress ETA); else None."""
    from ..formats.gor import SEPARATOR

    total = 0
    for p in paths:
        if not p.endswith(".gor"):
            return None
        try:
            with open(p, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    continue
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    total += (1 if m[:2] == b"1 " else 0) + _count(m, SEPARATOR + b"1 ")
        except OSError:
            return None
    return total


def _count(m: mmap.mmap | bytes, needle: bytes, step: int = 64 << 20) -> int:
    """Occurrences of ``needle`` (which cannot overlap itself), ``step`` bytes at a time: a
    match across a chunk boundary is counted in the chunk where it starts."""
    n, pos, size = 0, 0, len(m)
    while pos < size:
        end = min(size, pos + step)
        n += m[pos : min(size, end + len(needle) - 1)].count(needle)
        pos = end
    return n


def format_replay_stats(st: ReplayStats) -> list[str]:
    """The end-of-run summary lines."""
    errs = ", ".join(f"{k}={v}" for k, v in st.errors.most_common())
    drops = ", ".join(f"{k}={v}" for k, v in st.dropped.most_common())
    lines = [
        f"replay: sent {st.sent}, answered {st.answered}, errors {st.error_count}"
        + (f" ({errs})" if errs else "")
        + (f", dropped {sum(st.dropped.values())} ({drops})" if drops else "")
        + (" [stopped early]" if st.stopped else ""),
        f"  rate {st.achieved_rate:.1f} req/s achieved"
        + (f" of {st.asked_rate:.1f} asked" if st.asked_rate else "")
        + f", {st.elapsed_s:.2f} s, {st.connections} connections",
        f"  latency p50 {st.latency_p50_ms:.2f} ms, p90 {st.latency_p90_ms:.2f} ms, "
        f"p99 {st.latency_p99_ms:.2f} ms, max {st.latency_max_ms:.2f} ms",
    ]
    if st.status:
        lines.append("  status " + ", ".join(f"{k}={v}" for k, v in sorted(st.status.items())))
    if st.asked_rate:
        lines.append(
            f"  send lag p50 {st.lag_p50_ms:.2f} ms, p99 {st.lag_p99_ms:.2f} ms, "
            f"{st.late} requests > 10 ms late"
        )
    if st.truncated:
        lines.append(
            f"  {st.truncated} replayed responses cut at --max-response-size "
            "(flagged replay_truncated)"
        )
    if st.order != "none":
        lines.append(
            f"  order {st.order}: {st.order_waited} requests waited for their predecessors"
            + (
                f" (p50 {st.order_wait_p50_ms:.2f} ms, p99 {st.order_wait_p99_ms:.2f} ms, "
                f"max {st.order_wait_max_ms:.2f} ms)"
                if st.order_waited
                else ""
            )
            + (
                f"; {st.order_inversions} exchanges came after one they preceded "
                "(input not in recorded order)"
                if st.order_inversions
                else ""
            )
        )
    if st.shortfall:
        lines.append(f"  SHORTFALL: {st.shortfall}")
    return lines


class _Progress:
    """One line on stderr, rewritten in place: done/total, rate, errors, ETA."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.enabled = enabled
        self.total = total
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, st: ReplayStats) -> None:
        if not self.enabled:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._last < 0.25:
                return
            self._last = now
            rate = st.achieved_rate
            total = self.total
            if total:
                pct = min(100.0, 100 * st.sent / total)
                eta = (total - st.sent) / rate if rate > 0 else None
                head = f"{st.sent}/{total} ({pct:.0f}%)"
                tail = f"ETA {_hms(eta)}" if eta is not None else "ETA ?"
            else:
                head, tail = f"{st.sent} sent", "ETA ?"
            line = (
                f"\rreplay {head}  {rate:,.0f} req/s  errors {st.error_count}  "
                f"p99 {st.latency_p99_ms:.1f} ms  {tail}"
            )
            sys.stderr.write(line.ljust(78) + " ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _hms(s: float) -> str:
    s = max(0, int(s))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def build_config(options: Mapping[str, Any], config: Mapping[str, Any]) -> ReplayConfig:
    """ReplayConfig from the ``[replay]`` section with the flags on top."""
    data = dict(config.get("replay") or {})
    for k in list(data):
        kk = k.replace("-", "_")
        if kk in _DURATION_FIELDS and isinstance(data[k], str):
            data[k] = parse_duration(data[k], name=f"[replay] {k}")
        if kk in _SIZE_FIELDS and isinstance(data[k], str):
            data[k] = parse_size(data[k], name=f"[replay] {k}")
        if kk == "ramp" and isinstance(data[k], str):
            data[k] = parse_ramp(data[k])
    targets = list(options.get("target") or ()) or None
    if targets is None and "targets" not in data:
        raise ConfigError("--target: at least one target URL is required (or [replay] targets)")
    o = options
    dur = {
        k: parse_duration(o[f], name=f"--{f.replace('_', '-')}") if o.get(f) is not None else None
        for k, f in (
            ("duration", "duration"),
            ("max_wait", "max_wait"),
            ("connect_timeout", "connect_timeout"),
            ("response_timeout", "timeout"),
        )
    }
    sizes = {
        f: parse_size(o[f], name=f"--{f.replace('_', '-')}") if o.get(f) is not None else None
        for f in _SIZE_FIELDS
    }
    rc = section(
        ReplayConfig,
        data,
        name="replay",
        targets=targets,
        split=o.get("split"),
        baseline=o.get("baseline"),
        speed=o.get("speed"),
        rate=o.get("rate"),
        max_speed=o.get("max_speed"),
        concurrency=o.get("concurrency"),
        ramp=parse_ramp(o["ramp"]) if o.get("ramp") else None,
        loop=o.get("loop"),
        limit=o.get("limit"),
        sessions=o.get("sessions"),
        session_key=o.get("session_key"),
        order=o.get("order"),
        keep_host=o.get("keep_host"),
        redirects=o.get("redirects"),
        insecure=o.get("insecure"),
        ca_file=o.get("ca_file"),
        allow_unsafe_target=o.get("allow_unsafe_target"),
        workers=o.get("workers"),
        **dur,
        **sizes,
    )
    if not isinstance(rc.targets, list) or not all(isinstance(t, str) for t in rc.targets):
        raise ConfigError("[replay] targets: must be a list of URLs")
    if rc.ramp is not None:
        rc.ramp = [(float(r), float(d)) for r, d in rc.ramp]
    if o.get("speed") is not None and (rc.rate is not None or rc.max_speed or rc.ramp):
        raise ConfigError("--speed: cannot be combined with --rate, --max or --ramp")
    rc.validate()
    return rc


def _hooks_factory(
    stages: Sequence[Stage], correlate: bool, config: Mapping[str, Any]
) -> Callable[[], list[ReplayHook]]:
    def make() -> list[ReplayHook]:
        hooks: list[ReplayHook] = list(replay_hooks(list(stages)))
        if correlate:
            from ..replay.correlation import CorrelationConfig, CorrelationHook

            cc = section(
                CorrelationConfig, dict(config.get("correlation") or {}), name="correlation"
            )
            if cc.enabled:
                hooks.insert(0, CorrelationHook(cc))
        return hooks

    return make


_TIMING_HELP = "Timing (one of): --speed X (default 1), --rate N, --max, --ramp STAGES."


@click.command("replay", epilog=_TIMING_HELP)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--speed",
    type=float_range("replay", "speed"),
    default=None,
    help="Replay as recorded, X times faster (default 1; 0.5 = half speed).",
)
@click.option(
    "--rate",
    type=float_range("replay", "rate"),
    default=None,
    help="Fixed rate, requests per second.",
)
@click.option(
    "--max",
    "max_speed",
    is_flag=True,
    default=None,
    help="As fast as possible with --concurrency connections.",
)
@click.option(
    "--ramp", metavar="STAGES", help='Rate stages "RATE:DURATION,...", e.g. "100:10s,500:30s".'
)
@click.option(
    "--loop/--no-loop",
    default=None,
    help="Start over at the end of the input (until --duration or --limit).",
)
@click.option("--duration", metavar="D", help="Stop after this long (10s, 5m).")
@click.option(
    "--limit", type=int_range("replay", "limit"), default=None, help="Stop after N exchanges."
)
@click.option("--max-wait", metavar="D", help="With --speed: cap long recorded gaps at D.")
@click.option(
    "--workers",
    type=int_range("replay", "workers"),
    default=None,
    help="Worker processes, split by session hash (default 1).",
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    help="Record requests, original and replayed responses (.gor, .har, .jsonl).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
@log_format_option
@replay_options
@correlate_option
@input_limit_options
@traffic_group
@report_options
@watch_options
def command(
    files: tuple[str, ...], replay: ReplayOptions, traffic: TrafficOptions, **options: Any
) -> None:
    """Replay the recorded traffic in FILE... into --target URL(s).

    Request bytes are sent as recorded (header order, case, duplicates); only the Host header
    (unless --keep-host) and a wrong Content-Length are changed. Requests other than
    GET/HEAD/OPTIONS are refused towards the host the traffic was captured from unless
    --allow-unsafe-target.
    """
    cfg_data = load_config(options.get("config"))
    rc = replay.config(cfg_data, **options)
    for f in files:
        if format_of(f) != "nats" and not os.path.exists(f):
            raise InputError("no such file", path=f)
    output = options.get("output")
    if output and format_of(output) == "har":
        click.echo(
            "replaygate: note: .har keeps one response per entry (the original): "
            "write .gor or .jsonl to keep the replayed responses for compare",
            err=True,
        )
    limits = read_limits(options)
    if rc.workers > 1 and rc.order != "none":
        click.echo(
            f"replaygate: note: --order {rc.order} holds within each of the {rc.workers} worker "
            "processes (split by session), not across them",
            err=True,
        )
    reports = any(options.get(k) for k in ("json", "junit", "markdown", "html", "report"))
    comparator = None
    if reports:
        from ..compare import Comparator

        comparator = Comparator(compare_config(cfg_data))
        comparator.sources.extend(files)
    counters = Counters()
    show = options.get("progress")
    if show is None:
        show = sys.stderr.isatty()
    total = _total(rc, files) if show else None
    progress = _Progress(bool(show), total)
    correlate = bool(options.get("correlate"))
    log_format = options.get("log_format")
    watcher = start_watcher(options)
    hook_lines: list[str] = []

    if rc.workers == 1:
        stages = default_stages(traffic, cfg_data, counters=counters)
        source = FileSource(files, stages, counters, log_format, limits)
        sinks: list[Sink] = []
        if output:
            sinks.append(open_writer(output))
        if comparator is not None:
            from ..compare import CompareSink

            sinks.append(CompareSink(comparator))
        sink = TeeSink(sinks) if sinks else None
        hooks = _hooks_factory(stages, correlate, cfg_data)()
        try:
            stats = run_replay(source, rc, sink=sink, hooks=hooks, on_progress=progress)
        finally:
            progress.done()
            close_stages(stages, counters)
        for h in hooks:  # counts only, never values (correlation, masking)
            summary = getattr(h, "summary", None)
            if callable(summary):
                hook_lines.append(f"  {summary()}")
    else:
        stats = _run_workers(
            files,
            rc,
            traffic,
            limits,
            cfg_data,
            output,
            comparator,
            progress,
            correlate,
            log_format,
            counters,
        )

    if watcher is not None:
        seen = watcher.stop()
        if comparator is not None:
            comparator.set_target_metrics(seen)
    for line in [*format_replay_stats(stats), *hook_lines]:
        click.echo(line, err=True)
    for reason, n in counters.dropped.items():
        click.echo(f"  filtered out by {reason}: {n}", err=True)
    if output:
        click.echo(f"  output: {output}", err=True)
    if stats.exchanges == 0 and not stats.stopped:
        raise_cuts(counters)
        raise InputError(_nothing_replayed(counters), path=files[0] if len(files) == 1 else None)
    unreachable = _unreachable(stats)
    rc_exit = 0
    if comparator is not None:
        comparator.replay = {k: v for k, v in stats.as_dict().items() if k.startswith("order")}
        for reason, n in counters.dropped.items():
            comparator.skipped[f"filtered: {reason}"] += n
        rc_exit = finish_reports(
            comparator, options, cfg_data, err=True, quiet=unreachable is not None
        )
    raise_cuts(counters)  # after the outputs and reports: the cut is still an input error
    if unreachable is not None:
        raise ReplayError(unreachable)
    if rc_exit:
        click.get_current_context().exit(rc_exit)


_CONNECT_ERRORS = frozenset(("connect_refused", "connect_timeout", "connect_error", "dns"))


def _unreachable(stats: ReplayStats) -> str | None:
    """One line when no request ever reached a target (exit 2: the job is wrong, not the
    release): every request failed to connect."""
    if stats.answered or not stats.errors or not set(stats.errors) <= _CONNECT_ERRORS:
        return None
    kinds = ", ".join(f"{k}={n}" for k, n in stats.errors.most_common())
    return (
        f"the target was unreachable for every request ({kinds}): check --target and that "
        "it is running"
    )


def _nothing_replayed(counters: Counters) -> str:
    filtered = sum(counters.dropped.values())
    if filtered:
        why = ", ".join(f"{k}={v}" for k, v in counters.dropped.most_common())
        return f"nothing to replay: every exchange was dropped ({why})"
    return "nothing to replay: no exchanges in the input"


def _total(rc: ReplayConfig, files: Sequence[str]) -> int | None:
    n = count_requests(files) if not rc.loop else None
    if rc.limit is not None:
        n = rc.limit if n is None else min(n, rc.limit)
    if rc.rate is not None and rc.duration is not None:
        cap = int(rc.rate * rc.duration)
        n = cap if n is None else min(n, cap)
    if rc.ramp:
        cap = int(sum(r * d for r, d in rc.ramp))
        n = cap if n is None else min(n, cap)
    if n is None:
        return None
    copies = (1 if rc.split else len(rc.targets)) + (1 if rc.baseline else 0)
    return n * copies


def _run_workers(
    files: Sequence[str],
    rc: ReplayConfig,
    traffic: TrafficOptions,
    limits: dict[str, int],
    cfg_data: Mapping[str, Any],
    output: str | None,
    comparator: Any,
    progress: _Progress,
    correlate: bool,
    log_format: str | None,
    counters: Counters,
) -> ReplayStats:
    """``--workers N``: each process writes a part file; parts are merged afterwards.

    The stages are built once per process and shared by its source and its hooks; the mask
    key is made once, here, and handed to every process (a random key per process, or per
    build, would give the original and the replayed values different pseudonyms)."""
    # validate the flags before forking, and make the mask key (read, or random) once
    mask_key = mask_key_of(default_stages(traffic, cfg_data))
    built: dict[int, list[Stage]] = {}

    def worker_stages() -> list[Stage]:
        pid = os.getpid()  # a fork of this process: build its stages once, for both uses
        if pid not in built:
            built[pid] = default_stages(traffic, cfg_data, mask_key=mask_key)
        return built[pid]

    need_parts = bool(output) or comparator is not None
    tmpdir = tempfile.mkdtemp(prefix="rg-replay-") if need_parts else None
    # Parts are .jsonl (lossless, reads back exactly) unless a .gor output needs no reading
    # back: then .gor parts are concatenated byte for byte.
    ext = ".jsonl"
    if output and format_of(output) == "gor" and comparator is None:
        base = os.path.basename(output)
        ext = base[len(base.split(".")[0]) :]
    parts = [os.path.join(tmpdir, f"part{i}{ext}") for i in range(rc.workers)] if tmpdir else []

    def source_factory() -> Iterable[Exchange]:
        return FileSource(files, worker_stages(), Counters(), log_format, limits)

    def sink_factory(i: int) -> Sink | None:
        return open_writer(parts[i]) if parts else None

    def hooks_factory() -> list[ReplayHook]:
        return _hooks_factory(worker_stages(), correlate, cfg_data)()

    try:
        try:
            stats = run_replay_parallel(
                source_factory,
                rc,
                sink_factory=sink_factory,
                hooks_factory=hooks_factory,
                on_progress=progress,
            )
        finally:
            progress.done()
        _find_cuts(files, log_format, limits, counters)
        if output:
            _merge_parts(parts, output)
        if comparator is not None:
            for p in parts:
                for ex in open_reader(p, ReadOptions(counters=counters)):
                    comparator.add(ex)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return stats


def _find_cuts(
    files: Sequence[str], log_format: str | None, limits: Mapping[str, int], counters: Counters
) -> None:
    """The worker processes read the inputs with counters of their own: read the files once
    more here, after the run (no reading thread across the fork), so that a cut input is
    reported exactly as without ``--workers``. Errors were the workers' to report."""
    seen = Counters()
    paths = [f for f in files if format_of(f) != "nats"]
    with contextlib.suppress(ReplaygateError):
        for _ in FileSource(paths, [], seen, log_format, limits):
            pass
    counters.cuts.extend(seen.cuts)


def _merge_parts(parts: Sequence[str], output: str) -> None:
    """One output from the workers' parts: byte concatenation when the formats agree (.gor,
    .gor.gz multi-member, .gor.zst multi-frame, .jsonl lines), else read and write again."""
    fmt = format_of(output)
    same = all(format_of(p) == fmt and _compression(p) == _compression(output) for p in parts)
    if same and fmt in ("gor", "jsonl"):
        with writing(output), open(output, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        return
    w = open_writer(output)
    try:
        for p in parts:
            for ex in open_reader(p):
                w.write(ex)
    finally:
        w.close()


def _compression(path: str) -> str:
    return next((c for c in (".gz", ".zst") if path.endswith(c)), "")
