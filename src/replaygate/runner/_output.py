"""A run's outputs: the traffic file (checked before anything starts) and the reports."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import section
from ..errors import ConfigError, InputError
from ..formats import WriteOptions, format_of, open_writer
from ..pipeline import Sink
from ._config import Output, Reports

if TYPE_CHECKING:
    from ..compare import Comparator, CompareConfig, GateConfig, Verdict

__all__ = [
    "REPORT_NAMES",
    "check_output",
    "compare_config",
    "gate_config",
    "judge_and_write",
    "open_output",
    "remove_if_empty",
]

REPORT_NAMES = {
    "json": "report.json",
    "junit": "report.xml",
    "markdown": "report.md",
    "html": "report.html",
}


def check_output(output: Output) -> None:
    """A recorder (``force`` not None) refuses an output holding data unless told how."""
    if output.force is None:
        return
    from ..sources._output_guard import check_output as guard

    w = output.write
    rotating = w.max_bytes is not None or w.max_seconds is not None
    guard(output.path, force=output.force, append=w.append, rotating=rotating)


def open_output(output: Output, *, recorder: bool = True) -> Sink:
    """The writer for ``output`` (format by extension), checked before the run starts.
    ``recorder``: the formats a live recorder writes, in a directory that must exist."""
    check_output(output)
    fmt = format_of(output.path)
    w = output.write
    if fmt == "nats":  # a JetStream stream (docs/deployment.md): connect now, fail early
        _check_rotation(w, fmt)
        return open_writer(output.path, WriteOptions())
    if recorder:
        if fmt not in ("gor", "har", "jsonl"):
            raise InputError(
                "cannot write this format (write .gor[.gz|.zst], .har, .jsonl or nats://...)",
                path=output.path,
            )
        d = os.path.dirname(os.path.abspath(output.path))
        if not os.path.isdir(d):
            raise InputError("directory does not exist", path=d)
        if not os.access(d, os.W_OK):
            raise InputError("directory is not writable", path=d)
    _check_rotation(w, fmt)
    return open_writer(output.path, w)


def _check_rotation(w: WriteOptions, fmt: str) -> None:
    if (w.max_bytes is not None or w.max_seconds is not None) and fmt != "gor":
        raise ConfigError("--max-bytes/--max-seconds: rotation is for .gor outputs only")


def remove_if_empty(path: str) -> None:
    """Do not leave an empty output behind when the run could not start."""
    with contextlib.suppress(OSError):
        if os.path.getsize(path) == 0:
            os.remove(path)


def compare_config(toml: Mapping[str, Any]) -> CompareConfig:
    from ..compare import CompareConfig

    return section(CompareConfig, dict(toml.get("compare") or {}), name="compare")


def gate_config(toml: Mapping[str, Any], **overrides: Any) -> GateConfig:
    from ..compare import GateConfig

    return section(GateConfig, dict(toml.get("gate") or {}), name="gate", **overrides)


def _paths(reports: Reports) -> dict[str, str | os.PathLike[str] | None]:
    paths: dict[str, str | os.PathLike[str] | None] = {
        "json": reports.json,
        "junit": reports.junit,
        "markdown": reports.markdown,
        "html": reports.html,
    }
    d = reports.directory
    if d:
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            msg = f"cannot create report directory: {e.strerror}"
            raise InputError(msg, path=os.fspath(d)) from None
        for k, name in REPORT_NAMES.items():
            paths[k] = paths[k] or str(Path(d) / name)
    return paths


def judge_and_write(
    comparator: Comparator, reports: Reports, toml: Mapping[str, Any], **gate: Any
) -> tuple[Verdict, list[str]]:
    """Judge the comparison with ``[gate]`` (``gate``: overrides) and the accepted
    differences, write the reports asked for; the verdict and the files written."""
    from ..compare import AcceptedDiffs, judge
    from ..report import write_reports

    accepted = AcceptedDiffs.load(reports.accepted) if reports.accepted else None
    verdict = judge(comparator.result(), gate_config(toml, **gate), accepted)
    p = _paths(reports)
    written = write_reports(
        verdict.summary(),
        json_path=p["json"],
        junit_path=p["junit"],
        markdown_path=p["markdown"],
        html_path=p["html"],
    )
    return verdict, written
