"""The ``replaygate`` command line. One module per subcommand, loaded on demand.

Each subcommand module defines a click command named ``command``. User mistakes raise
:class:`~replaygate.errors.ReplaygateError` and become one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from .._version import __version__
from ..errors import ReplaygateError

__all__ = ["cli", "main"]

# subcommand -> (module, one-line help). Keep sorted by name.
COMMANDS: dict[str, tuple[str, str]] = {
    "accept": (
        "replaygate.cli.accept",
        "Accept differences from a summary into the accepted-differences file.",
    ),
    "aggregate": (
        "replaygate.cli.aggregate",
        "Build the report and gate from a NATS results stream.",
    ),
    "capture": (
        "replaygate.cli.capture",
        "Capture HTTP traffic passively from a network interface.",
    ),
    "compare": (
        "replaygate.cli.compare",
        "Compare original and replayed responses; judge the release.",
    ),
    "convert": (
        "replaygate.cli.convert",
        "Convert traffic between file formats (chosen by extension).",
    ),
    "demo": ("replaygate.cli.demo", "Run the end-to-end demo: capture, replay, compare, report."),
    "inspect": (
        "replaygate.cli.inspect",
        "Summarise a traffic file, or print one JSON object per exchange.",
    ),
    "mask-data": (
        "replaygate.cli.mask_data",
        "Mask a CSV/JSON/SQL data file with the traffic rules.",
    ),
    "proxy": ("replaygate.cli.proxy", "Run a recording reverse proxy in front of an upstream."),
    "replay": ("replaygate.cli.replay", "Replay recorded traffic into a target."),
    "scan": ("replaygate.cli.scan", "Report secrets and personal data found in a traffic file."),
    "shadow": ("replaygate.cli.shadow", "Capture live traffic and replay it to a target online."),
    "stream": ("replaygate.cli.stream", "Create, inspect and purge NATS JetStream streams."),
    "worker": ("replaygate.cli.worker", "Run a replay worker on a NATS JetStream source."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (mod, _) in COMMANDS.items() if _available(mod))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _available(entry[0]):
            return None
        mod = importlib.import_module(entry[0])
        cmd: click.Command = mod.command
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="replaygate")
def cli() -> None:
    """replaygate: turn real production HTTP traffic into a release gate.

    Capture or import traffic, mask secrets, replay it into staging, compare the responses
    and get a verdict (exit 0 pass, 1 fail, 2 usage or input error).
    """


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: user errors become one line and exit code 2."""
    try:
        rv = cli.main(args=argv, prog_name="replaygate", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):
            sys.exit(rv)
        return rv
    except click.exceptions.Abort:
        click.echo("replaygate: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if e.exit_code == 2 else e.exit_code)
    except ReplaygateError as e:
        click.echo(f"replaygate: error: {e}", err=True)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
