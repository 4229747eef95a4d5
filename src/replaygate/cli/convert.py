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
from collections.abc import Iterable, Iterator
from typing import Any

import click

from ..config import load_config
from ..errors import ConfigError, InputError, ReplaygateError
from ..formats import (
    ReadOptions,
    format_of,
    open_reader,
    open_writer,
    raise_cuts,
)
from ..model import Exchange
from ..pipeline import Counters, run_pipeline
from ..stages.defaults import TrafficOptions, default_stages
from ._options import (
    config_option,
    input_limit_options,
    log_format_option,
    log_host_option,
    read_limits,
    traffic_group,
)
from ._output import write_options

__all__ = [
    "check_tls_keylog",
    "command",
    "format_note",
    "format_summary",
    "reader_options",
    "tls_keylog_option",
]


def reader_options(
    counters: Counters,
    log_format: str | None = None,
    host: str | None = None,
    tls_keylog: str | None = None,
    limits: dict[str, int] | None = None,
) -> ReadOptions:
    """ReadOptions shared by convert and inspect. A cut capture is counted like any other cut
    input and reported by the command at the end (:func:`~replaygate.formats.raise_cuts`)."""
    extra: dict[str, Any] = {"truncated": "count"}
    if host:
        extra["host"] = host
    if tls_keylog:
        extra["tls_keylog"] = tls_keylog
    return ReadOptions(log_format=log_format, counters=counters, extra=extra, **(limits or {}))


def check_tls_keylog(tls_keylog: str | None, inputs: Iterable[str]) -> None:
    """``--tls-keylog``: the file must be readable, and only captures carry TLS."""
    if tls_keylog is None:
        return
    if not any(format_of(p) == "pcap" for p in inputs):
        raise ConfigError("--tls-keylog: only pcap/pcapng inputs carry TLS to decrypt")
    if not os.path.isfile(tls_keylog) or not os.access(tls_keylog, os.R_OK):
        raise InputError("--tls-keylog: no such readable file", path=tls_keylog)


def tls_keylog_option(f: Any) -> Any:
    return click.option(
        "--tls-keylog",
        default=None,
        metavar="FILE",
        help="NSS key log (SSLKEYLOGFILE) to decrypt HTTPS in pcap/pcapng inputs; key logs "
        "embedded in pcapng (editcap --inject-secrets) are always used.",
    )(f)


def iter_inputs(paths: Iterable[str], opts: ReadOptions) -> Iterator[Exchange]:
    """Chain the inputs, opening each only when the previous one is done."""
    for p in paths:
        yield from open_reader(p, opts)


class _Tally:
    """Counts incomplete exchanges by flag on their way into the sink."""

    name = "tally"

    def __init__(self) -> None:
        self.incomplete = 0
        self.why: Counter[str] = Counter()

    def process(self, ex: Exchange) -> tuple[Exchange]:
        if not ex.complete:
            self.incomplete += 1
            if ex.response is None and not ex.flags:
                self.why["no_response"] += 1
            for f in ex.flags:
                self.why[str(f)] += 1
        return (ex,)

    def close(self) -> tuple[()]:
        return ()


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


def _remove_outputs(sink: object, output: str) -> None:
    """Do not leave an empty output behind when the input turned out to be bad."""
    files = getattr(sink, "files", None)
    for f in files if isinstance(files, list) else [output]:
        try:
            os.remove(f)
        except OSError:
            pass


@click.command("convert", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, metavar="IN... OUT")
@log_format_option
@log_host_option
@tls_keylog_option
@click.option(
    "--max-bytes",
    default=None,
    metavar="SIZE",
    help="Rotate .gor output after SIZE (e.g. 64mb): name_0.gor, name_1.gor, ...",
)
@click.option(
    "--max-seconds",
    default=None,
    metavar="DURATION",
    help="Rotate .gor output every DURATION (e.g. 10m).",
)
@click.option(
    "--append", is_flag=True, default=False, help="Append to an existing .gor/.jsonl output."
)
@config_option
@click.option("--quiet", "-q", is_flag=True, default=False, help="Do not print the summary line.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    default=False,
    help="Also print the readers' notes (line numbers of dropped lines, cut offsets, ...).",
)
@input_limit_options
@traffic_group
def command(
    paths: tuple[str, ...],
    log_format: str | None,
    host: str | None,
    tls_keylog: str | None,
    max_bytes: str | None,
    max_seconds: str | None,
    append: bool,
    config_path: str | None,
    quiet: bool,
    verbose: bool,
    traffic: TrafficOptions,
    **limits: Any,
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
    *inputs, output = paths
    for p in inputs:
        # unknown extension: fail before writing anything; nats:// inputs are streams
        if format_of(p) != "nats" and not os.path.exists(p):
            raise InputError("no such file", path=p)
    if format_of(output) not in ("gor", "har", "jsonl", "nats"):
        raise InputError(
            "cannot write this format (write .gor, .gor.gz, .gor.zst, .har, .jsonl or"
            " nats://HOST:PORT/STREAM)",
            path=output,
        )
    if os.path.realpath(output) in {os.path.realpath(p) for p in inputs}:
        raise InputError("output is also an input", path=output)
    check_tls_keylog(tls_keylog, inputs)
    wopts = write_options(output, append=append, max_bytes=max_bytes, max_seconds=max_seconds)
    if append and format_of(output) == "har":
        raise ConfigError("--append: a HAR file is one JSON document; append to .gor or .jsonl")
    counters = Counters()
    config = load_config(config_path)
    stages = default_stages(traffic, config, counters=counters)
    tally = _Tally()
    read_sizes = read_limits(limits)
    ropts = reader_options(
        counters, log_format.lower() if log_format else None, host, tls_keylog, read_sizes
    )
    sink = open_writer(output, wopts)
    try:
        run_pipeline(iter_inputs(inputs, ropts), [*stages, tally], sink, counters)
    except ReplaygateError:
        if counters.written == 0 and not append:
            _remove_outputs(sink, output)
        else:
            click.echo(f"replaygate: note: {_partial(sink, output, counters.written)}", err=True)
        raise
    if verbose:
        for note, n in sorted(counters.notes.items()):
            click.echo(f"replaygate: note: {format_note(note, n)}", err=True)
    if not quiet:
        click.echo(f"replaygate: {format_summary(counters, tally.incomplete, tally.why)}", err=True)
        files = getattr(sink, "files", None)
        if isinstance(files, list) and len(files) > 1:
            click.echo(
                f"replaygate: wrote {len(files)} files: {files[0]} ... {files[-1]}", err=True
            )
    sys.stderr.flush()
    raise_cuts(counters)  # everything readable was written; the cut is still an input error


def _partial(sink: object, output: str, written: int) -> str:
    """What a failed conversion left behind (kept: it may be all there is of the input)."""
    files = getattr(sink, "files", None)
    name = output if not isinstance(files, list) or len(files) < 2 else f"{files[0]} ..."
    return (
        f"{name} is incomplete: it holds the {written} exchange(s) converted before the error"
        + (" (a .har written this far is repaired when read)" if output.endswith(".har") else "")
    )
