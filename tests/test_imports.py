"""The import graph of ``src/replaygate``: no cycles, and no layer reaching up.

Module-level imports (outside ``if TYPE_CHECKING:``) must form no cycle. Any import, including
one inside a function or a ``"module:attr"`` string a registry loads later, must not go from a
lower layer to a higher one: a lazy import hides a cycle from Python, not from the design.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import replaygate

ROOT = Path(replaygate.__file__).parent

# Higher numbers may import lower ones (and their own package); never the other way round.
LAYERS: dict[str, int] = {
    "_version": 0,
    "errors": 0,
    "_histogram": 0,
    "_clock": 0,
    "_bodies": 0,
    "_config_schema": 1,
    "metrics": 1,
    "model": 1,
    "jsonpath": 1,
    "config": 2,
    "pipeline": 2,
    "protocol": 2,
    "formats": 3,
    "stages": 3,
    "compare": 3,
    "report": 3,
    "sources": 4,
    "replay": 4,
    "testing": 4,
    "jetstream": 5,
    "_config_reference": 5,
    "runner": 6,  # the library-level run: connects sources, stages, replay, compare, reports
    "demo": 7,
    "": 7,  # the package root: the public facade and where plugins are registered
    "cli": 8,
    "__main__": 9,
}

# The one schema of replaygate.toml names each section's dataclass, in the layer that owns it,
# as a string loaded when a file has that section: the config layer knows the sections' names.
STRING_REFS_ALLOWED = {"replaygate._config_schema"}

_MODULE_REF = re.compile(r"^(replaygate(?:\.\w+)+)(?::\w+)?$")


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = ["replaygate", *p.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)


def _targets(mod: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = mod.split(".")
            if MODULES[mod].name != "__init__.py":
                pkg = pkg[:-1]
            pkg = pkg[: len(pkg) - node.level + 1]
            base = ".".join([*pkg, *([node.module] if node.module else [])])
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            yield name


def _edges(mod: str, nodes: Iterator[ast.Import | ast.ImportFrom]) -> set[str]:
    out = set()
    for node in nodes:
        for target in _targets(mod, node):
            # importing a.b imports a first, unless we are inside a already
            out.add(target)
            parts = target.split(".")
            for i in range(1, len(parts)):
                ancestor = ".".join(parts[:i])
                if ancestor in MODULES and not (mod + ".").startswith(ancestor + "."):
                    out.add(ancestor)
    out.discard(mod)
    return out


def _layer(mod: str) -> tuple[str, int]:
    top = mod.split(".")[1] if "." in mod else ""
    assert top in LAYERS, f"{mod}: add its package to LAYERS in {__file__}"
    return top, LAYERS[top]


def test_no_import_cycle() -> None:
    graph = {m: _edges(m, _module_level(ast.parse(p.read_text()).body)) for m, p in MODULES.items()}
    done: set[str] = set()

    def visit(mod: str, path: list[str]) -> None:
        if mod in path:
            cycle = [*path[path.index(mod) :], mod]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if mod in done:
            return
        for target in sorted(graph[mod]):
            visit(target, [*path, mod])
        done.add(mod)

    for mod in sorted(graph):
        visit(mod, [])


def test_no_layer_imports_a_higher_one() -> None:
    wrong = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text())
        every = (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
        targets = _edges(mod, every)
        for node in ast.walk(tree):  # "replaygate.x.y:name" strings loaded by a registry
            if mod in STRING_REFS_ALLOWED:
                break
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                ref = _MODULE_REF.match(node.value)
                if ref and ref.group(1) in MODULES:
                    targets.add(ref.group(1))
        top, rank = _layer(mod)
        for target in targets:
            t_top, t_rank = _layer(target)
            if t_top != top and t_rank >= rank:
                wrong.append(f"{mod} -> {target}")
    assert not wrong, "imports against the layers: " + ", ".join(sorted(wrong))


def test_cycle_check_sees_a_cycle() -> None:
    """The walker itself: a relative import resolves to the module it names."""
    node = ast.parse("from ..pipeline import Sink\nfrom . import _lanes").body
    assert _edges("replaygate.replay.engine", iter(node)) >= {  # type: ignore[arg-type]
        "replaygate.pipeline",
        "replaygate.replay._lanes",
    }
