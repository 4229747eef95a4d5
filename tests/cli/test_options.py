"""The shared traffic flags: parsing, GoReplay aliases, config sections, order, errors."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import click
import pytest
from click.testing import CliRunner

from replaygate.cli._options import stages_from_options, traffic_options
from replaygate.errors import ConfigError
from replaygate.pipeline import Counters, run_pipeline
from replaygate.stages.filter import FilterStage
from replaygate.stages.middleware import MiddlewareStage
from replaygate.stages.plugins import PluginStage
from replaygate.stages.rewrite import RewriteStage
from replaygate.stages.sample import RandomSampleStage, SampleStage
from replaygate.testing import MemorySink, make_exchange

HAS_MASK = importlib.util.find_spec("replaygate.stages.mask") is not None


def _parse(args: list[str]) -> dict[str, Any]:
    captured: dict[str, Any] = {}

    @click.command()
    @traffic_options
    def cmd(**kw: Any) -> None:
        captured.update(kw)

    res = CliRunner().invoke(cmd, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return captured


def test_help_mentions_url_matching() -> None:
    @click.command()
    @traffic_options
    def cmd(**kw: Any) -> None:
        pass

    out = CliRunner().invoke(cmd, ["--help"]).output
    for flag in ("--allow-url", "--url-match", "--sample-by", "--middleware-on-error", "--plugin"):
        assert flag in out
    assert "path?query" in out and "scheme://host/path?query" in out
    assert "--http-header-limiter" not in out  # hidden alias


def test_goreplay_aliases() -> None:
    kw = _parse(
        [
            "--http-allow-url", "^/api",
            "--http-disallow-url", "health",
            "--http-allow-method", "GET",
            "--http-allow-header", "X-A: 1",
            "--http-disallow-header", "X-B: 2",
            "--http-basic-auth-filter", "^admin",
            "--http-rewrite-url", "/a:/b",
            "--http-rewrite-header", "Host: a,b",
            "--http-set-header", "X-C: 3",
            "--http-set-param", "k=v",
        ]
    )  # fmt: skip
    assert kw["allow_url"] == ("^/api",) and kw["deny_url"] == ("health",)
    stages = stages_from_options(kw)
    assert [type(s) for s in stages] == [FilterStage, RewriteStage]


def test_header_and_param_limiter_aliases() -> None:
    (s,) = stages_from_options(_parse(["--http-header-limiter", "X-User: 25%"]))
    assert isinstance(s, SampleStage) and (s.kind, s.key_name, s.fraction) == (
        "header",
        "X-User",
        0.25,
    )
    (s,) = stages_from_options(_parse(["--http-param-limiter", "uid: 10%"]))
    assert isinstance(s, SampleStage) and (s.kind, s.key_name) == ("query", "uid")


def test_stage_order(tmp_path: Any) -> None:
    plugin = tmp_path / "p.py"
    plugin.write_text("def request(ex):\n    return ex\n")
    kw = _parse(
        [
            "--plugin", str(plugin),
            "--middleware", f"{sys.executable} -c 'import sys; [sys.stdout.write(l) for l in sys.stdin]'",
            "--set-header", "X-Env: staging",
            "--sample-random", "50%",
            "--sample", "50%",
            "--deny-method", "DELETE",
        ]
    )  # fmt: skip
    stages = stages_from_options(kw)
    try:
        assert [type(s) for s in stages] == [
            FilterStage,
            SampleStage,
            RandomSampleStage,
            RewriteStage,
            MiddlewareStage,
            PluginStage,
        ]
    finally:
        for s in stages:
            list(s.close())


def test_no_flags_no_stages() -> None:
    assert stages_from_options(_parse([])) == []
    assert stages_from_options({}) == []


def test_config_sections_and_flags_win() -> None:
    config = {
        "filters": {"allow_url": ["^/config"], "deny-method": ["POST"], "sample": "100%"},
        "rewrite": {"set_header": {"X-Env": "staging"}, "set_param": {"k": "v"}},
    }
    stages = stages_from_options({}, config)
    sink = MemorySink()
    run_pipeline([make_exchange("GET", "/config/1"), make_exchange("GET", "/x")], stages, sink)
    assert [e.request.target for e in sink.exchanges] == ["/config/1?k=v"]
    assert sink.exchanges[0].request.header("x-env") == "staging"
    # a flag replaces the config value
    stages = stages_from_options(_parse(["--allow-url", "^/x"]), config)
    sink = MemorySink()
    run_pipeline([make_exchange("GET", "/config/1"), make_exchange("GET", "/x")], stages, sink)
    assert [e.request.path for e in sink.exchanges] == ["/x"]


def test_counters_are_filled() -> None:
    c = Counters()
    stages = stages_from_options(_parse(["--deny-url", "^/h"]), counters=c)
    list(stages[0].process(make_exchange("GET", "/h")))
    assert c.notes["filter.deny-url"] == 1


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (
            ["--allow-url", "("],
            None,
            r"--allow-url: bad regex '\(': missing \), unterminated subpattern",
        ),
        (["--deny-header", "nocolon"], None, "--deny-header: expected 'Name: REGEX'"),
        (["--sample", "lots"], None, "--sample: cannot read 'lots'"),
        (["--sample-by", "header:X"], None, "--sample-by: needs --sample"),
        (["--sample", "5%", "--sample-by", "ip"], None, "--sample-by: expected"),
        (
            ["--http-header-limiter", "X-User"],
            None,
            "--http-header-limiter: expected 'NAME: PERCENT'",
        ),
        (["--rewrite-url", "nocolon"], None, "--rewrite-url: expected"),
        (["--set-param", "x"], None, "--set-param: expected 'name=value'"),
        (["--middleware-on-error", "skip"], None, "--middleware-on-error: needs --middleware"),
        (["--plugin", "no_such_plugin_mod:x"], None, "--plugin: cannot import"),
        ([], {"filters": {"alow_url": ["x"]}}, r"\[filters\] unknown field 'alow_url'"),
        ([], {"rewrite": "nope"}, r"\[rewrite\] must be a table"),
        (
            [],
            {"middleware": {"command": "cat", "bogus": 1}},
            r"\[middleware\] unknown field 'bogus'",
        ),
    ],
)
def test_bad_values_raise_config_error(args: list[str], config: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stages_from_options(_parse(args), config)


def test_middleware_from_config() -> None:
    (s,) = stages_from_options({}, {"middleware": {"command": "cat", "on_error": "skip"}})
    try:
        assert isinstance(s, MiddlewareStage) and s.config.on_error == "skip"
        ex = make_exchange()
        assert list(s.process(ex)) + list(s.close()) == [ex]
    finally:
        list(s.close())


def test_plugins_from_config(tmp_path: Any) -> None:
    plugin = tmp_path / "p.py"
    plugin.write_text("def request(ex):\n    return None\n")
    (s,) = stages_from_options({}, {"middleware": {"plugins": [str(plugin)]}})
    assert isinstance(s, PluginStage)


@pytest.mark.skipif(not HAS_MASK, reason="masking module not present")
def test_mask_sits_between_sampling_and_rewrites() -> None:
    stages = stages_from_options(_parse(["--mask", "--sample", "100%", "--set-header", "A: b"]))
    names = [type(s).__name__ for s in stages]
    assert names[0] == "SampleStage" and names[-1] == "RewriteStage" and len(names) == 3


@pytest.mark.skipif(HAS_MASK, reason="masking module present")
def test_mask_without_module_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="--mask"):
        stages_from_options(_parse(["--mask"]))


def test_replay_hooks_selects_middleware_and_plugins(tmp_path: Any) -> None:
    from replaygate.cli._options import replay_hooks
    from replaygate.replay.hooks import ReplayHook

    plugin = tmp_path / "p.py"
    plugin.write_text("def replayed(ex):\n    pass\n")
    stages = stages_from_options(
        _parse(["--deny-method", "X", "--middleware", "cat", "--plugin", str(plugin)])
    )
    try:
        hooks = replay_hooks(stages)
        assert [type(h) for h in hooks] == [MiddlewareStage, PluginStage]
        assert all(isinstance(h, ReplayHook) for h in hooks)
        assert stages[-1].replay_mode  # type: ignore[attr-defined]
    finally:
        for s in stages:
            list(s.close())


def test_config_strings_are_one_rule_and_wrong_types_are_errors() -> None:
    stages = stages_from_options({}, {"filters": {"allow_url": "^/api"}})
    sink = MemorySink()
    run_pipeline([make_exchange("GET", "/api/x"), make_exchange("GET", "/other")], stages, sink)
    assert [e.request.path for e in sink.exchanges] == ["/api/x"]
    with pytest.raises(ConfigError, match="--deny-method: expected a string or a list"):
        stages_from_options({}, {"filters": {"deny_method": 5}})
    with pytest.raises(ConfigError, match="--remove-header: expected a string or a list"):
        stages_from_options({}, {"rewrite": {"remove_header": [1, 2]}})


def test_the_documented_config_example_works() -> None:
    """The replaygate.toml example in docs/stages.md parses and builds the stages it shows."""
    import re
    import tomllib
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "stages.md").read_text()
    block = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert block is not None
    config = tomllib.loads(block.group(1))
    config["middleware"]["command"] = "cat"  # the example names a script of the reader's
    config["middleware"]["plugins"] = [
        str(Path(__file__).resolve().parents[2] / p) for p in config["middleware"]["plugins"]
    ]
    stages = stages_from_options({}, config)
    try:
        assert [type(s).__name__ for s in stages] == [
            "FilterStage",
            "SampleStage",
            "RandomSampleStage",
            "RewriteStage",
            "MiddlewareStage",
            "PluginStage",
        ]
        ex = make_exchange(
            "GET", "/v1/api/x", request_headers=[("Host", "a.example.com"), ("X-Tenant", "acme")]
        )
        (out,) = list(stages[3].process(ex))
        assert out.request.target == "/v2/api/x?api_key=staging-key"
        assert out.request.host == "a.staging.example.com"
    finally:
        for s in stages:
            list(s.close())


def test_iter_through_drains_middleware_and_close_stages_stops_it() -> None:
    from replaygate.cli._options import close_stages, iter_through

    stages = stages_from_options(_parse(["--deny-url", "^/drop", "--middleware", "cat"]))
    counters = Counters()
    exs = [make_exchange("GET", f"/{p}/{i}") for i in range(5) for p in ("keep", "drop")]
    out = list(iter_through(exs, stages, counters))
    assert [e.request.path for e in out] == [f"/keep/{i}" for i in range(5)]
    assert counters.read == 10 and counters.dropped == {"filter": 5}
    mw = stages[1]
    assert isinstance(mw, MiddlewareStage) and mw.proc.poll() is None  # drained, still running
    ex = make_exchange("GET", "/r", replayed_status=200)
    assert mw.send_replayed(ex)  # replayed responses can still be sent
    close_stages(stages, counters)
    assert mw.proc.poll() == 0
    assert not mw.send_replayed(ex) and counters.notes["middleware.replayed_skipped"] == 1
