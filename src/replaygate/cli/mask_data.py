"""``replaygate mask-data INPUT -o OUTPUT``: mask a database dump or data file with the
traffic masking rules, so staging's data holds the pseudonyms masked traffic asks for."""

from __future__ import annotations

import json
import sys

import click

from ..config import load_config
from ..stages._mask_data import mask_data_file
from ._flags import flags

__all__ = ["command"]


@click.command("mask-data", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT")
@flags("masked_output", "fmt", "mask_config", "mask_key_file", "config_path", "print_json", "quiet")
def command(
    input_path: str,
    output: str,
    fmt: str | None,
    mask_config: str | None,
    mask_key_file: str | None,
    config_path: str | None,
    as_json: bool,
    quiet: bool,
) -> int:
    """Mask a data file: CSV/TSV, JSON/JSON Lines, or an SQL dump (INSERT statements from
    pg_dump --inserts, mysqldump, sqlite3 .dump; PostgreSQL COPY blocks).

    Same key, rules, detectors and pseudonyms as --mask on traffic; column names act as
    field names. Streams: memory is bounded by the largest row or statement. Prints counts
    per rule, never values.
    """
    stats = mask_data_file(
        input_path,
        output,
        fmt=fmt,
        mask_config=mask_config,
        key_file=mask_key_file,
        config=load_config(config_path),
    )
    if as_json:
        sys.stdout.write(json.dumps(stats.as_dict(), indent=2) + "\n")
    elif not quiet:
        click.echo(stats.summary(), err=True)
        for note, n in sorted(stats.notes.items()):
            click.echo(f"replaygate: note: {note}" + (f" ({n}x)" if n > 1 else ""), err=True)
    return 0
