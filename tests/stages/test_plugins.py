"""Python plugins: loading by module:attr, file path and entry point; hooks as stage and as
replay hook; errors name the plugin."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from replaygate.errors import ConfigError
from replaygate.model import Flag
from replaygate.pipeline import run_pipeline
from replaygate.replay.hooks import ReplayHook
from replaygate.stages.plugins import PluginError, PluginStage, load_plugin, load_plugin_stage
from replaygate.testing import MemorySink, make_exchange

PLUGIN = """
from replaygate.model import Exchange

seen = []

def request(ex):
    if ex.request.path == "/drop":
        return None
    ex.meta["plugin"] = "yes"
    return ex

def response(ex):
    seen.append(("response", ex.response.status))

def replayed(ex):
    seen.append(("replayed", ex.replayed.status if ex.replayed else None))

def exchange(ex):
    seen.append(("exchange", ex.id))

class Counter:
    def __init__(self):
        self.n = 0
    def request(self, ex):
        self.n += 1
        return ex

instance = Counter()

class Broken:
    def request(self, ex):
        return {}["missing"]

class WrongReturn:
    def request(self, ex):
        return "oops"

class NoHooks:
    pass
"""


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    p = tmp_path / "myplugin.py"
    p.write_text(textwrap.dedent(PLUGIN))
    return p


@pytest.fixture
def plugin_module(tmp_path: Path, plugin_file: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myplugin", raising=False)
    return "myplugin"


def test_module_is_a_plugin(plugin_module: str) -> None:
    stage = load_plugin_stage(plugin_module)
    sink = MemorySink()
    exs = [make_exchange("GET", "/a", id="a"), make_exchange("GET", "/drop", id="b")]
    c = run_pipeline(exs, [stage], sink)
    assert [e.id for e in sink.exchanges] == ["a"]
    assert c.dropped["plugin"] == 1 and c.notes["plugin.dropped"] == 1
    assert sink.exchanges[0].meta["plugin"] == "yes"
    mod = sys.modules[plugin_module]
    assert mod.seen == [("response", 200), ("exchange", "a")]


def test_replay_hook_face(plugin_module: str) -> None:
    stage = load_plugin_stage(plugin_module).as_replay_hook()
    assert isinstance(stage, ReplayHook)
    ex = make_exchange("GET", "/a", id="a", replayed_status=201)
    (out,) = list(stage.process(ex))
    assert stage.before_send(out, out.request) is out.request
    stage.after_response(out)
    mod = sys.modules[plugin_module]
    # in replay mode "exchange" runs after "replayed", once
    assert mod.seen == [("response", 200), ("replayed", 201), ("exchange", "a")]


def test_class_and_instance_by_attr(plugin_module: str) -> None:
    stage = load_plugin_stage(f"{plugin_module}:Counter")
    list(stage.process(make_exchange()))
    assert stage.plugin.n == 1
    inst = load_plugin(f"{plugin_module}:instance")
    assert inst is sys.modules[plugin_module].instance


def test_file_path(plugin_file: Path) -> None:
    assert load_plugin(str(plugin_file)).__name__.startswith("replaygate_plugin_")
    assert type(load_plugin(f"{plugin_file}:Counter")).__name__ == "Counter"


def test_modification_is_flagged() -> None:
    class AddHeader:
        def request(self, ex):
            ex.request = ex.request.with_head(
                " ".join(ex.request.start_line), [*ex.request.headers, ("X-P", "1")]
            )
            return ex

    (out,) = list(PluginStage(AddHeader(), "inline").process(make_exchange()))
    assert Flag.MODIFIED in out.flags and out.request.header("x-p") == "1"


def test_errors_name_the_plugin(plugin_module: str) -> None:
    with pytest.raises(PluginError, match=r"plugin 'myplugin:Broken' request\(\) raised KeyError"):
        list(load_plugin_stage(f"{plugin_module}:Broken").process(make_exchange()))
    with pytest.raises(PluginError, match="returned str, expected an Exchange"):
        list(load_plugin_stage(f"{plugin_module}:WrongReturn").process(make_exchange()))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty plugin name"),
        ("no_such_module_xyz", "cannot import 'no_such_module_xyz': ModuleNotFoundError"),
        ("myplugin:nothing", "has no attribute 'nothing'"),
        ("myplugin:NoHooks", "defines none of request, response, replayed, exchange"),
        ("/no/such/file.py", "no such file"),
    ],
)
def test_bad_specs(plugin_module: str, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_plugin(spec)


def test_entry_point(tmp_path: Path, plugin_module: str) -> None:
    # a real installed distribution (dist-info on sys.path) declaring the entry point
    dist = tmp_path / "rg_fake_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rg-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[replaygate.plugins]\ncounter = {plugin_module}:Counter\n"
    )
    assert type(load_plugin("counter")).__name__ == "Counter"
