"""``replaygate convert IN... OUT``: move traffic between formats, chosen by extension.

Readers: .pcap .pcapng .pcap.gz .gor .gor.gz .gor.zst .har .mitm .jsonl .log (access logs).
Writers: .gor .gor.gz .gor.zst (with --max-bytes / --max-seconds rotation), .har, .jsonl.
The traffic flags (filters, sampling, masking, rewrites, middleware, plugins) apply on the
way through. One summary line goes to stderr at the end: what was read, written, dropped by
reason and how many exchanges were incomplete, so nothing is lost without a word.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import click

from ..config import load_config
from ..errors import ConfigError, InputError, ReplaygateError
from ..formats import (
    ReadOptions,
    format_of,
    open_reader,
    raise_cuts,
)
from ..model import Exchange
from ..pipeline import Counters
from ..runner import FileInput, Output, Run, RunConfig, RunResult
from ..runner._files import check_inputs
from ..stages.defaults import TrafficOptions
from ._flags import flags
from ._options import (
    read_limits,
    traffic_group,
)
from ._output import write_options

__all__ = [
    "check_tls_keylog",
    "command",
    "format_note",
    "format_summary",
]


def check_tls_keylog(tls_keylog: str | None, inputs: Iterable[str]) -> None:
    """``--tls-keylog``: the file must be readable, and only captures carry TLS."""
    if tls_keylog is None:
        return
    if not any(format_of(p) == "pcap" for p in inputs):
        raise ConfigError("--tls-keylog: only pcap/pcapng inputs carry TLS to decrypt")
    if not os.path.isfile(tls_keylog) or not os.access(tls_keylog, os.R_OK):
        raise InputError("--tls-keylog: no such readable file", path=tls_keylog)


def iter_inputs(paths: Iterable[str], opts: ReadOptions) -> Iterator[Exchange]:
    """Chain the inputs, opening each only when the previous one is done."""
    for p in paths:
        yield from open_reader(p, opts)


def format_note(note: str, n: int) -> str:
    """Notes are messages ("file.log:7: empty request line") or statistics ("pcap.frames")
    whose count is the value."""
    if not any(ch.isspace() for ch in note):
        return f"{note}: {n}"
    return note + (f" (x{n})" if n > 1 else "")


def format_summary(c: Counters, incomplete: int, why: Counter[str]) -> str:
    """``read N, written M, dropped K (reason=n, ...), incomplete I (flag=n, ...)``."""
    dropped = sum(c.dropped.values())
    parts = [f"read {c.read}", f"written {c.written}"]
    d = f"dropped {dropped}"
    if dropped:
        d += " (" + ", ".join(f"{k}={v}" for k, v in sorted(c.dropped.items())) + ")"
    parts.append(d)
    inc = f"incomplete {incomplete}"
    if why:
        inc += " (" + ", ".join(f"{k}={v}" for k, v in sorted(why.items())) + ")"
    parts.append(inc)
    return ", ".join(parts)


@click.command("convert", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, metavar="IN... OUT")
@flags(
    "log_format",
    "host",
    "tls_keylog",
    "max_bytes",
    "max_seconds",
    "append",
    "config_path",
    "quiet",
    "verbose",
    "max_record_size",
    "max_file_size",
)
@traffic_group
def command(
    paths: tuple[str, ...],
    quiet: bool,
    verbose: bool,
    traffic: TrafficOptions,
    **options: Any,
) -> None:
    """Convert traffic files: IN... (any readable format) into OUT (.gor, .har, .jsonl).

    OUT is overwritten if it exists (like cp; the inputs are still there), or appended to
    with --append. Recorders (capture, proxy) refuse an existing output instead.

    \b
    Examples:
      replaygate convert capture.pcap traffic.gor
      replaygate convert a.har b.har --deny-url '\\.png$' out.gor.zst
      replaygate convert access.log --log-format nginx --host shop.test out.gor
      replaygate convert https.pcapng --tls-keylog keys.log traffic.gor
    """
    if len(paths) < 2:
        raise click.UsageError("need at least one input and one output: convert IN... OUT")
    run = Run(_run_config(paths, traffic, options))
    try:
        result = run.run()
    except ReplaygateError:
        written = run.counters.written
        if run.sink is not None and (written or options["append"]):
            click.echo(f"replaygate: note: {_partial(run.sink, paths[-1], written)}", err=True)
        raise
    _print_summary(run, result, quiet=quiet, verbose=verbose)
    raise_cuts(result.counters)  # everything readable was written; the cut is still an input error


def _run_config(
    paths: Sequence[str], traffic: TrafficOptions, options: Mapping[str, Any]
) -> RunConfig:
    """The run the arguments describe: inputs checked, output checked, before any writing."""
    *inputs, output = paths
    check_inputs(inputs)
    if format_of(output) not in ("gor", "har", "jsonl", "nats"):
        raise InputError(
            "cannot write this format (write .gor, .gor.gz, .gor.zst, .har, .jsonl or"
            " nats://HOST:PORT/STREAM)",
            path=output,
        )
    if os.path.realpath(output) in {os.path.realpath(p) for p in inputs}:
        raise InputError("output is also an input", path=output)
    tls_keylog = options.get("tls_keylog")
    check_tls_keylog(tls_keylog, inputs)
    append = bool(options.get("append"))
    wopts = write_options(
        output,
        append=append,
        max_bytes=options.get("max_bytes"),
        max_seconds=options.get("max_seconds"),
    )
    if append and format_of(output) == "har":
        raise ConfigError("--append: a HAR file is one JSON document; append to .gor or .jsonl")
    toml = load_config(options.get("config_path"))
    log_format = options.get("log_format")
    limits = read_limits(options)
    source = FileInput(
        tuple(inputs),
        log_format=log_format.lower() if log_format else None,
        host=options.get("host"),
        tls_keylog=tls_keylog,
        max_record_size=limits.get("max_record_size"),
        max_file_size=limits.get("max_file_size"),
    )
    return RunConfig(source, traffic, toml, output=Output(output, wopts))


def _print_summary(run: Run, result: RunResult, *, quiet: bool, verbose: bool) -> None:
    counters = result.counters
    if verbose:
        for note, n in sorted(counters.notes.items()):
            click.echo(f"replaygate: note: {format_note(note, n)}", err=True)
    if not quiet:
        line = format_summary(counters, result.incomplete_total, result.incomplete)
        click.echo(f"replaygate: {line}", err=True)
        files = getattr(run.sink, "files", None)
        if isinstance(files, list) and len(files) > 1:
            click.echo(
                f"replaygate: wrote {len(files)} files: {files[0]} ... {files[-1]}", err=True
            )
    sys.stderr.flush()


def _partial(sink: object, output: str, written: int) -> str:
    """What a failed conversion left behind (kept: it may be all there is of the input)."""
    files = getattr(sink, "files", None)
    name = output if not isinstance(files, list) or len(files) < 2 else f"{files[0]} ..."
    return (
        f"{name} is incomplete: it holds the {written} exchange(s) converted before the error"
        + (" (a .har written this far is repaired when read)" if output.endswith(".har") else "")
    )
