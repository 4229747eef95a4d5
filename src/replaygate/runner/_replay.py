"""The replay part of a run: hooks (correlation, the stages that see replayed responses)
and the ``--workers N`` processes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config import section
from ..formats import ReadOptions, format_of, open_reader, open_writer
from ..formats._limits import writing
from ..model import Counters, Exchange
from ..pipeline import Sink, Stage
from ..stages.defaults import TrafficOptions, default_stages, mask_key_of
from ._files import FileSource, find_cuts

if TYPE_CHECKING:
    from ..compare import Comparator
    from ..replay import ReplayConfig, ReplayHook, ReplayStats
    from ._config import FileInput

__all__ = ["make_hooks", "replay_hooks", "run_workers"]


def replay_hooks(stages: Sequence[Stage]) -> list[ReplayHook]:
    """The stages that want to see replayed responses, as replay-engine hooks.

    Middleware stages send them to the child as type-3 messages; plugin stages run their
    ``replayed`` (then ``exchange``) hook; the mask stage masks staging's responses.
    """
    from ..stages.middleware import MiddlewareStage
    from ..stages.plugins import PluginStage

    hooks: list[ReplayHook] = []
    for st in stages:
        if isinstance(st, PluginStage):
            hooks.append(st.as_replay_hook())
        elif isinstance(st, MiddlewareStage):
            hooks.append(st)
        elif st.name == "mask" and hasattr(st, "replay_hook"):
            hooks.append(st.replay_hook())
    return hooks


def make_hooks(
    stages: Sequence[Stage], correlate: bool, toml: Mapping[str, Any]
) -> list[ReplayHook]:
    """Correlation first (when on and enabled in ``[correlation]``), then the stages' hooks."""
    hooks = replay_hooks(stages)
    if correlate:
        from ..replay.correlation import CorrelationConfig, CorrelationHook

        cc = section(CorrelationConfig, dict(toml.get("correlation") or {}), name="correlation")
        if cc.enabled:
            hooks.insert(0, CorrelationHook(cc))
    return hooks


def run_workers(
    files: FileInput,
    rc: ReplayConfig,
    traffic: TrafficOptions,
    toml: Mapping[str, Any],
    *,
    correlate: bool,
    output: str | None,
    comparator: Comparator | None,
    counters: Counters,
    on_progress: Callable[[ReplayStats], None] | None,
) -> ReplayStats:
    """``--workers N``: each process writes a part file; parts are merged afterwards.

    The stages are built once per process and shared by its source and its hooks; the mask
    key is made once, here, and handed to every process (a random key per process, or per
    build, would give the original and the replayed values different pseudonyms)."""
    from ..replay import run_replay_parallel

    # validate the flags before forking, and make the mask key (read, or random) once
    mask_key = mask_key_of(default_stages(traffic, toml))
    built: dict[int, list[Stage]] = {}

    def worker_stages() -> list[Stage]:
        pid = os.getpid()  # a fork of this process: build its stages once, for both uses
        if pid not in built:
            built[pid] = default_stages(traffic, toml, mask_key=mask_key)
        return built[pid]

    tmpdir = tempfile.mkdtemp(prefix="rg-replay-") if output or comparator else None
    parts = _part_paths(tmpdir, rc.workers, output, comparator is not None)

    def source_factory() -> Iterable[Exchange]:
        return FileSource(files, worker_stages(), Counters())

    def sink_factory(i: int) -> Sink | None:
        return open_writer(parts[i]) if parts else None

    def hooks_factory() -> list[ReplayHook]:
        return make_hooks(worker_stages(), correlate, toml)

    try:
        stats = run_replay_parallel(
            source_factory,
            rc,
            sink_factory=sink_factory,
            hooks_factory=hooks_factory,
            on_progress=on_progress,
        )
        find_cuts(files, counters)
        if output:
            merge_parts(parts, output)
        if comparator is not None:
            for p in parts:
                for ex in open_reader(p, ReadOptions(counters=counters)):
                    comparator.add(ex)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return stats


def _part_paths(tmpdir: str | None, n: int, output: str | None, compare: bool) -> list[str]:
    """Parts are .jsonl (lossless, reads back exactly) unless a .gor output needs no reading
    back: then .gor parts are concatenated byte for byte."""
    if tmpdir is None:
        return []
    ext = ".jsonl"
    if output and format_of(output) == "gor" and not compare:
        base = os.path.basename(output)
        ext = base[len(base.split(".")[0]) :]
    return [os.path.join(tmpdir, f"part{i}{ext}") for i in range(n)]


def merge_parts(parts: Sequence[str], output: str) -> None:
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
