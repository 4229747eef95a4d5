"""Every flag of every command is in the docs users read, and the GoReplay migration table
names only flags that exist.

* each long option name (``--x`` and its ``--no-x``) of every command and subcommand of the
  click tree is shown in that command's page, in docs/configuration.md or on the page of the
  option group it belongs to (stages.md, masking.md); hidden aliases are exempt (they exist for
  GoReplay command lines and are listed in docs/goreplay-migration.md);
* every ``--flag`` in the replaygate column of docs/goreplay-migration.md's tables is an option
  of some command (hidden aliases count), and of the command the cell names when it names one;
* every flag whose type bounds it (flags.toml: ``bounded``, ``int_range``, ``float_range``) has
  a row with those bounds in docs/configuration.md's table of bounded numbers, and so has every
  bounded key of the ``replaygate.toml`` schema (``_config_schema.BOUNDS``).
* the other way round, every ``--flag`` in a code span of the docs is a real option.

The ``[section]`` keys of ``replaygate.toml`` are held to docs/configuration.md by
tests/test_docs.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from replaygate.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# the pages that document each command (the first word of a subcommand's path)
PAGES: dict[str, tuple[str, ...]] = {
    "accept": ("compare.md",),
    "aggregate": ("compare.md",),
    "capture": ("capture.md",),
    "compare": ("compare.md",),
    "convert": ("formats.md", "user-guide.md"),
    "demo": ("user-guide.md", "compare.md"),
    "inspect": ("formats.md", "user-guide.md"),
    "mask-data": ("masking.md",),
    "proxy": ("capture.md",),
    "replay": ("replay.md",),
    "scan": ("formats.md", "user-guide.md"),
    # shadow records like capture and sends like replay
    "shadow": ("capture.md", "replay.md"),
    "stream": ("deployment.md",),
    # a worker replays what the stream hands it
    "worker": ("deployment.md", "replay.md"),
}
# option groups several commands share, documented once
SHARED = ("configuration.md", "stages.md", "masking.md")


def _commands() -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}

    def walk(cmd: click.Command | None, path: str) -> None:
        assert cmd is not None, path
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), f"{path} {name}".strip())
        else:
            out[path] = cmd

    walk(cli, "")
    return out


COMMANDS = _commands()


def _long_names(cmd: click.Command, *, hidden: bool) -> set[str]:
    return {
        o
        for p in cmd.params
        if isinstance(p, click.Option) and (hidden or not p.hidden)
        for o in (*p.opts, *p.secondary_opts)
        if o.startswith("--")
    }


def _mentions(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def test_every_command_has_a_page() -> None:
    assert len(COMMANDS) > 12, "the walk of the click tree found too little"
    missing = sorted({p.split()[0] for p in COMMANDS} - set(PAGES))
    assert not missing, f"add the page that documents {missing} to PAGES"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_flag_is_documented(path: str) -> None:
    pages = (*PAGES[path.split()[0]], *SHARED)
    text = "\n".join((DOCS / p).read_text(encoding="utf-8") for p in pages)
    missing = sorted(f for f in _long_names(COMMANDS[path], hidden=False) if not _mentions(text, f))
    assert not missing, f"replaygate {path}: {missing} not in docs/{', docs/'.join(pages)}"


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9](?![\w-])")


def _migration_cells() -> list[tuple[int, str]]:
    """(line number, replaygate cell) of every row of the migration tables."""
    cells: list[tuple[int, str]] = []
    column = None
    lines = (DOCS / "goreplay-migration.md").read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.startswith("|"):
            column = None
            continue
        cols = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if column is None:  # the header row: which column is replaygate's
            column = cols.index("replaygate") if "replaygate" in cols else -1
        elif column >= 0 and not set(cols[0]) <= set("-: "):
            cells.append((n, cols[column]))
    return cells


def test_migration_table_names_real_flags() -> None:
    every = {f for c in COMMANDS.values() for f in _long_names(c, hidden=True)}
    cells = _migration_cells()
    assert len(cells) > 50, "the migration table parse found too little"
    bad: list[str] = []
    checked = 0
    for n, cell in cells:
        for span in re.findall(r"`([^`]+)`", cell):
            words = span.split()
            if words and words[0] == "replaygate":
                words = words[1:]
            # `capture --stats`, `capture/proxy/replay --output FILE`: that command's flag
            named = [w for w in words[0].split("/") if w in COMMANDS] if words else []
            for flag in _FLAG.findall(span):
                checked += 1
                if flag not in every:
                    bad.append(f"line {n}: {flag} is no option of any command")
                for c in named:
                    if flag not in _long_names(COMMANDS[c], hidden=True):
                        bad.append(f"line {n}: {flag} is no option of `{c}`")
    assert checked > 50
    assert not bad, "docs/goreplay-migration.md: " + "; ".join(bad)


def _forms(x: float) -> set[str]:
    """The ways the bounds table may write the number ``x``."""
    g = f"{x:g}"
    out = {g, re.sub(r"e([+-])0*(\d)", lambda m: "e" + m[1].lstrip("+") + m[2], g)}
    if 0 < x < 1:
        out.add(f"{x * 1000:g} ms")
    if float(x).is_integer():
        n = int(x)
        out |= {str(n), f"{n:,}"}
        for k, unit in enumerate(("KiB", "MiB", "GiB", "TiB"), 1):
            if n and n % (1 << 10 * k) == 0:
                out.add(f"{n >> 10 * k} {unit}")
        for k in range(8, 64):
            if n == 1 << k:
                out.add(f"2^{k}")
            elif n == (1 << k) - 1:
                out.add(f"2^{k}-1")
    return out


def _bounds_rows() -> list[str]:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    start = text.index("| bounded number | range |")
    return re.findall(r"^ *(\|.*\|) *$", text[start:].split("\n\n", 1)[0], re.M)


def test_numeric_bounds_are_documented() -> None:
    """Every flag whose type bounds it (flags.toml) has a row with its bounds in the
    configuration reference's table of bounded numbers."""
    from replaygate.cli._flags import Bounded

    rows = _bounds_rows()
    assert len(rows) > 10
    bad: list[str] = []
    for path, cmd in sorted(COMMANDS.items()):
        for p in cmd.params:
            t = p.type
            if isinstance(t, Bounded):
                lo, hi = t.lo, t.hi
            elif isinstance(t, click.IntRange | click.FloatRange):
                lo, hi = t.min, t.max
            else:
                continue
            flag = next(o for o in p.opts if o.startswith("--"))
            row = next((r for r in rows if f"`{flag}`" in r), None)
            rng = row.rsplit("|", 2)[1] if row else ""
            ok = row is not None and all(
                b is None or any(_mentions(rng, f) for f in _forms(b)) for b in (lo, hi)
            )
            if not ok:
                bad.append(f"{path} {flag} ({lo} to {hi})")
    assert not bad, f"docs/configuration.md bounded numbers: no row or wrong bounds for {bad}"


def test_config_bounds_are_documented() -> None:
    """Every bounded key of the schema (``_config_schema.BOUNDS``, which the flags share) has
    a row with its bounds: ``[section] key`` (further keys of the row: `` `key` ``)."""
    from replaygate._config_schema import BOUNDS

    ranges: dict[tuple[str, str], str] = {}
    for row in _bounds_rows():
        _, first, rng, _ = row.split("|")
        section = None
        for span in re.findall(r"`([^`]+)`", first):
            m = re.fullmatch(r"\[(\w+)\] (\w+)", span)
            if m:
                section = m[1]
                ranges[(section, m[2])] = rng
            elif section and re.fullmatch(r"\w+", span):
                ranges[(section, span)] = rng
    bad = [
        f"[{s}] {k} ({lo:g} to {hi:g})"
        for (s, k), (lo, hi) in sorted(BOUNDS.items())
        if (s, k) not in ranges
        or not all(any(_mentions(ranges[s, k], f) for f in _forms(b)) for b in (lo, hi))
    ]
    assert not bad, f"docs/configuration.md bounded numbers: no row or wrong bounds for {bad}"


# flags of other programs the docs name on their own (GoReplay's, in the pages that compare)
OTHER_FLAGS = {"--help", "--input-raw", "--output-file", "--column-inserts"}


@pytest.mark.parametrize(
    "doc",
    sorted(p for p in [*DOCS.glob("*.md"), ROOT / "README.md"] if p.name != "benchmarks.md"),
    ids=lambda p: p.name,
)
def test_docs_name_only_real_flags(doc: Path) -> None:
    """A ``--flag`` in a code span is an option of some command (hidden aliases count): a
    renamed or removed flag cannot linger in the docs. Spans that start with another program
    (``curl --http2-prior-knowledge``) and GoReplay's flags in the migration table are not ours."""
    every = {f for c in COMMANDS.values() for f in _long_names(c, hidden=True)}
    text = doc.read_text(encoding="utf-8")
    if doc.name == "goreplay-migration.md":  # its replaygate column: test above
        text = "\n".join(c for _, c in _migration_cells())
    bad = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        first = span.split()[0]
        if not first.startswith("-") and first not in ("replaygate", *COMMANDS):
            continue
        for flag in _FLAG.findall(span):
            if flag not in every and flag not in OTHER_FLAGS:
                bad.add(flag)
    assert not bad, f"{doc.name} names flags no command has: {sorted(bad)}"
