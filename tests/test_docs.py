"""The user documentation cannot drift from the code.

* every field of every ``replaygate.toml`` section dataclass has a row in
  docs/configuration.md, every section the code reads is in the reference, and every flag the
  reference names is a real option of a command that reads that section;
* every command of the CLI registry is shown in docs/user-guide.md, and every
  ``replaygate ...`` line of its shell examples parses with the real click commands;
* every relative link (and its #anchor) in docs/*.md and README.md points to something;
* the example ``replaygate.toml`` parses and builds every section, the way the commands do;
* the command lines of every page's code blocks and of every command's ``--help`` parse;
* the JSON fields users read (``ReplayStats.as_dict()``, ``scan --json``) are documented.

Flags against the docs (every flag documented, every documented flag real, bounds, the
GoReplay table): tests/cli/test_flag_docs.py.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest

from replaygate._config_reference import EXTRA_KEYS, FLAGS, READ_BY, SECTIONS
from replaygate.cli import COMMANDS, cli
from replaygate.config import section

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG_MD = DOCS / "configuration.md"
GUIDE_MD = DOCS / "user-guide.md"

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _read(p: Path) -> str:
    return p.read_text(encoding="utf-8")


def _section_text(name: str) -> str:
    """The part of configuration.md under the heading ``## `[name]` ``."""
    text = _read(CONFIG_MD)
    m = re.search(rf"^## `\[{re.escape(name)}\]`\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"docs/configuration.md has no '## `[{name}]`' heading"
    return m.group(1)


def _rows(name: str) -> dict[str, str]:
    """Table rows of a section, by key: {"allow_url": "| `allow_url` | ... |"}."""
    rows: dict[str, str] = {}
    for line in _section_text(name).splitlines():
        m = re.match(r"\|\s*`([a-z0-9_]+)`", line)
        if m:
            rows[m.group(1)] = line
    return rows


def _example() -> dict[str, Any]:
    text = _read(CONFIG_MD)
    m = re.search(r"^## A complete example\n+```toml\n(.*?)^```", text, re.S | re.M)
    assert m, "docs/configuration.md: no ```toml block under '## A complete example'"
    return tomllib.loads(m.group(1))


# --- configuration reference -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_every_field_has_a_row(name: str) -> None:
    rows = _rows(name)
    fields = [f.name for f in dataclasses.fields(SECTIONS[name])]
    missing = [f for f in [*fields, *EXTRA_KEYS.get(name, ())] if f not in rows]
    assert not missing, f"docs/configuration.md [{name}]: no row for {missing}"
    unknown = sorted(set(rows) - set(fields) - set(EXTRA_KEYS.get(name, ())))
    assert not unknown, f"docs/configuration.md [{name}]: rows for keys the code lacks: {unknown}"


def test_every_section_the_code_reads_is_documented() -> None:
    names: set[str] = set()
    for p in (ROOT / "src" / "replaygate").rglob("*.py"):
        text = _read(p)
        names.update(re.findall(r"\bsection\([^()]*?name=\"(\w+)\"", text, re.S))
        names.update(re.findall(r"_section\(config, \"(\w+)\"\)", text))
        names.update(re.findall(r"config\.get\(\"(\w+)\"\)", text))
    assert names, "found no config.section(...) calls: the scan is broken"
    assert names <= set(SECTIONS), f"sections read but not in SECTIONS: {names - set(SECTIONS)}"
    assert set(READ_BY) == set(SECTIONS) == set(FLAGS)


def _options_of(command: str) -> set[str]:
    ctx = click.Context(cli)
    cmd = cli.get_command(ctx, command)
    assert cmd is not None, command
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_flags_are_real_and_documented(name: str) -> None:
    rows = _rows(name)
    options = {c: _options_of(c) for c in READ_BY[name]}
    for key, flag in FLAGS[name].items():
        assert any(flag in opts for opts in options.values()), (
            f"[{name}] {key}: {flag} is not an option of {', '.join(READ_BY[name])}"
        )
        assert f"`{flag}`" in rows[key], f"docs/configuration.md [{name}] {key}: flag {flag}"


def test_example_builds_every_section(monkeypatch: pytest.MonkeyPatch) -> None:
    from replaygate.cli._options import close_stages, stages_from_options
    from replaygate.cli._report_options import compare_config, gate_config
    from replaygate.cli.replay import build_config
    from replaygate.compare import Comparator
    from replaygate.pipeline import Counters
    from replaygate.replay.correlation import CorrelationConfig, CorrelationHook

    data = _example()
    assert set(data) == set(SECTIONS), "the example should show every section"
    for name, cls in SECTIONS.items():
        sub = data[name]
        assert isinstance(sub, dict)
        values = {k: v for k, v in sub.items() if k not in EXTRA_KEYS.get(name, ())}
        assert isinstance(section(cls, values, name=name), cls)
    # and the way the commands build them (validation, regexes, paths of the example)
    build_config({}, data).validate()
    Comparator(compare_config(data))
    gate_config(data)
    CorrelationHook(section(CorrelationConfig, dict(data["correlation"]), name="correlation"))
    monkeypatch.chdir(ROOT)  # the example's middleware and plugin paths are repo-relative
    monkeypatch.setenv("REPLAYGATE_MASK_KEY", "docs-test-key")
    counters = Counters()
    stages = stages_from_options({}, data, counters=counters)
    try:
        names = [s.name for s in stages]
        assert names == ["filter", "sample", "mask", "rewrite", "middleware", "plugin"]
    finally:
        close_stages(stages, counters)


# --- user guide ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_in_the_user_guide(command: str) -> None:
    assert f"replaygate {command}" in _read(GUIDE_MD), f"docs/user-guide.md: no `{command}`"


def _command_lines(text: str) -> list[str]:
    """``replaygate ...`` lines of the ```sh blocks (continuations joined)."""
    lines: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            s = line.strip()
            if s.startswith("sudo "):
                s = s[5:]
            if s.startswith("replaygate "):
                lines.append(s)
    return lines


def test_user_guide_command_lines_parse() -> None:
    lines = _command_lines(_read(GUIDE_MD))
    assert len(lines) > 30
    seen: set[str] = set()
    for line in lines:
        args = shlex.split(line, comments=True)[1:]
        for i, a in enumerate(args):  # stop at shell operators
            if a in ("|", "||", "&&", ">", "2>", ";"):
                args = args[:i]
                break
        cmd: click.Command = cli
        ctx = click.Context(cli, info_name="replaygate")
        while isinstance(cmd, click.Group):
            sub = cmd.get_command(ctx, args[0])
            assert sub is not None, f"{line}: no command {args[0]!r}"
            if cmd is cli:
                seen.add(args[0])
            cmd, args = sub, args[1:]
        try:
            cmd.make_context(cmd.name, list(args), parent=ctx).close()
        except click.ClickException as e:
            pytest.fail(f"docs/user-guide.md: `{line}` does not parse: {e.format_message()}")
    assert seen == set(COMMANDS), f"no example line for {sorted(set(COMMANDS) - seen)}"


def _counter_names() -> set[str]:
    """Every literal ``dropped[...]`` reason in the package, with the prefixed families."""
    names: set[str] = set()
    src = ROOT / "src" / "replaygate"
    for p in src.rglob("*.py"):
        text = _read(p)
        names.update(re.findall(r"dropped\[\"([a-z_.0-9]+)\"\]\s*[+-]=", text))
    link = _read(src / "protocol" / "linklayer.py")
    names.update("link." + r for r in re.findall(r"_drop\(\s*counters,\s*\"(\w+)\"", link))
    log = _read(src / "formats" / "accesslog.py")
    names.update("accesslog_" + r for r in re.findall(r"LineError\(\s*\"(\w+)\"", log))
    names.update("accesslog_" + r for r in re.findall(r"drop\(\s*\"(\w+)\",", log))
    return names


def test_every_dropped_reason_is_explained() -> None:
    from replaygate.model import Flag

    guide = _read(GUIDE_MD)
    part = guide[guide.index("## 8. Counters") :]
    names = _counter_names()
    assert len(names) > 20, "the counter scan found too little: is it broken?"
    missing = []
    for n in sorted(names):
        family, _, rest = n.partition(".") if n.startswith("link.") else ("", "", n)
        if n.startswith("accesslog_"):
            family, rest = "accesslog_", n[len("accesslog_") :]
        if f"`{n}`" not in part and not (family and f"`{rest}`" in part):
            missing.append(n)
    assert not missing, f"docs/user-guide.md section 8 does not explain: {missing}"
    flags = [f.value for f in Flag if f"| `{f.value}` |" not in part]
    assert not flags, f"docs/user-guide.md section 8: no row for flags {flags}"


# --- links ---------------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    h = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", heading.strip()).lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def _anchors(text: str) -> set[str]:
    out: set[str] = set()
    counts: dict[str, int] = {}
    for m in re.finditer(r"^#{1,6} (.+)$", _FENCE.sub("", text), re.M):
        s = _slug(m.group(1))
        n = counts.get(s, 0)
        counts[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


_DOC_FILES = sorted([*DOCS.glob("*.md"), ROOT / "README.md"])


@pytest.mark.parametrize("doc", _DOC_FILES, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    text = _FENCE.sub("", _read(doc))
    text = re.sub(r"`[^`\n]*`", "", text)
    bad: list[str] = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(_read(dest)):
            bad.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not bad, f"{doc.relative_to(ROOT)}: broken links: {bad}"


def test_readme_command_lines_parse() -> None:
    """The README's tour uses the same flags the commands really have."""
    readme = DOCS.parent / "README.md"
    lines = _command_lines(_read(readme))
    assert len(lines) >= 5
    for line in lines:
        args = shlex.split(line, comments=True)[1:]
        sub = cli.get_command(click.Context(cli, info_name="replaygate"), args[0])
        assert sub is not None, f"README.md: {line}: no command {args[0]!r}"
        try:
            sub.make_context(sub.name, list(args[1:])).close()
        except click.ClickException as e:
            pytest.fail(f"README.md: `{line}` does not parse: {e.format_message()}")


def test_readme_says_how_to_get_replaygate_on_path() -> None:
    """#12: after `make demo` the tour's `replaygate` is only at .venv/bin/replaygate."""
    readme = _read(DOCS.parent / "README.md")
    tour = readme.index("## A five-minute tour")
    assert ". .venv/bin/activate" in readme[:tour]
    assert ".venv/bin/replaygate" in readme[:tour]


# -- docs/architecture.md names only what exists -------------------------------------------

ARCHITECTURE_MD = DOCS / "architecture.md"
_SRC = ROOT / "src" / "replaygate"


def _architecture_names() -> tuple[set[str], set[str]]:
    text = _read(ARCHITECTURE_MD)
    dotted = set(re.findall(r"\breplaygate(?:\.\w+)+", text))
    files = set(re.findall(r"(?<![\w./-])(\w+(?:/\w+)*\.py|\w+/)(?![\w/])", text))
    return dotted, files


def test_architecture_names_real_modules() -> None:
    import importlib

    dotted, files = _architecture_names()
    assert len(dotted) > 10 and len(files) > 20
    missing = []
    for name in sorted(dotted):
        parts = name.split(".")
        for n in range(len(parts), 0, -1):  # the longest prefix that is a module or package
            path = _SRC.joinpath(*parts[1:n])
            if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
                break
        rest = parts[n:]
        mod = importlib.import_module(".".join(parts[:n]))
        if len(rest) > 1 or (rest and not hasattr(mod, rest[0])):
            missing.append(name)
    everything = {p.relative_to(_SRC).as_posix() for p in _SRC.rglob("*")}
    for f in sorted(files):
        name = f.rstrip("/")
        if (ROOT / name).exists():  # a path from the repository root (tests/...)
            continue
        if not any(e == name or e.endswith("/" + name) for e in everything):
            missing.append(f)
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"


# -- JSON fields users read are documented --------------------------------------------------


def _documented(key: str, text: str) -> bool:
    """``key`` in backticks, or a percentile family written `x_p50_ms` / `_p99_` / `_max_`."""
    if f"`{key}`" in text:
        return True
    m = re.fullmatch(r"(\w+?)_(p\d+|max)_(\w+)", key)
    return (
        bool(m) and f"`_{m[2]}_`" in text and re.search(rf"`{m[1]}_p\d+_{m[3]}`", text) is not None
    )


def test_replay_stats_fields_are_documented() -> None:
    from replaygate.replay import ReplayStats

    text = _read(DOCS / "replay.md")
    part = text[text.index("`ReplayStats.as_dict()`") :].split("\n\n", 1)[0]
    missing = [k for k in ReplayStats().as_dict() if not _documented(k, part)]
    assert not missing, f"docs/replay.md: ReplayStats.as_dict() fields not listed: {missing}"


def test_scan_json_fields_are_documented(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from replaygate import open_writer
    from replaygate.testing import make_exchange

    path = tmp_path / "t.gor"
    w = open_writer(str(path))
    w.write(make_exchange())
    w.close()
    res = CliRunner().invoke(cli, ["scan", str(path), "--json"])
    assert res.exit_code == 0, res.output
    keys = json.loads(res.stdout)
    text = _read(DOCS / "masking.md")
    part = text[text.index("## `replaygate scan`") :].split("\n## ", 1)[0]
    missing = [k for k in keys if not re.search(rf"(?<![\w-]){k}\b", part)]
    assert not missing, f"docs/masking.md: scan --json fields not listed: {missing}"


# -- every page's shell examples use real commands and flags --------------------------------


def _args(line: str) -> list[str]:
    """The arguments of a ``replaygate ...`` line, up to the first shell operator."""
    args = shlex.split(line, comments=True)[1:]
    for i, a in enumerate(args):
        if a in ("|", "||", "&&", ">", "2>", ";", "&"):
            return args[:i]
    return args


def _parse_line(line: str) -> str | None:
    """None if ``replaygate ...`` parses with the real click commands, else why not."""
    args = _args(line)
    cmd: click.Command = cli
    ctx = click.Context(cli, info_name="replaygate")
    while isinstance(cmd, click.Group):
        if not args:
            return "no command"
        sub = cmd.get_command(ctx, args[0])
        if sub is None:
            return f"no command {args[0]!r}"
        cmd, args = sub, args[1:]
    try:
        cmd.make_context(cmd.name, list(args), parent=ctx).close()
    except click.ClickException as e:
        return e.format_message()
    return None


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_shell_examples_parse(doc: Path) -> None:
    """The ```sh examples of every page (synopses with [optional] parts, ``...`` or
    ``a|b`` choices left out) parse with the real commands: a renamed or removed flag
    shows up here."""
    text = _read(doc)
    # ```sh blocks, and the plain ``` blocks' command lines (not diagrams, not module lists)
    plain = "".join(
        f"```sh\n{line}\n```\n"
        for lang, block in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
        if not lang
        for line in block.replace("\\\n", " ").splitlines()
        if re.match(r"\s*replaygate [a-z]", line) and not re.search(r"[\u2500-\u257f\u25b6]", line)
    )
    bad = []
    for line in _command_lines(text) + _command_lines(plain):
        if any(re.search(r"\[|\.\.\.|\|", a) for a in _args(line)):
            continue
        why = _parse_line(line)
        if why:
            bad.append(f"`{line}`: {why}")
    assert not bad, f"docs/{doc.name}: " + "; ".join(bad)


def test_help_examples_parse() -> None:
    """The ``replaygate ...`` examples in every command's ``--help`` parse too."""
    todo: list[click.Command] = [cli]
    lines: list[str] = []
    while todo:
        cmd = todo.pop()
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            todo.extend(c for n in cmd.list_commands(ctx) if (c := cmd.get_command(ctx, n)))
        for line in (cmd.help or "").replace("\\\n", " ").splitlines():
            if line.strip().startswith("replaygate "):
                lines.append(line.strip())
    checked = [s for s in lines if not any(re.search(r"\[|\.\.\.|\|", a) for a in _args(s))]
    assert len(checked) > 5
    bad = [f"`{s}`: {why}" for s in checked if (why := _parse_line(s))]
    assert not bad, "--help examples that do not parse: " + "; ".join(bad)
