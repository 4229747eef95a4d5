"""The default stage list: built in one place, in one order, from typed options."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from click.testing import CliRunner

from replaygate.cli._options import traffic_options
from replaygate.stages.defaults import TrafficOptions, default_stages


def test_order_is_the_documented_one() -> None:
    traffic = TrafficOptions(
        allow_method=("GET",),
        sample="100%",
        sample_random="100%",
        mask=True,
        set_header=("X-Env: staging",),
    )
    names = [type(st).__name__ for st in default_stages(traffic, mask_key=bytes(32))]
    assert names == ["FilterStage", "SampleStage", "RandomSampleStage", "MaskStage", "RewriteStage"]


def test_mask_key_file_is_read(tmp_path: Path) -> None:
    """--mask-key-file names a file whose content is the key (the path is not the key)."""
    key = tmp_path / "key.txt"
    key.write_bytes(b"a-key-of-mine\n")
    (stage,) = default_stages(TrafficOptions(mask=True, mask_key_file=str(key)))
    assert stage.key == b"a-key-of-mine"  # type: ignore[attr-defined]


def test_nothing_asked_nothing_built() -> None:
    assert default_stages(TrafficOptions()) == []


def test_of_reads_click_keywords_and_single_strings() -> None:
    t = TrafficOptions.of({"allow_url": "^/a", "deny_method": ["PUT"], "other_flag": 1})
    assert t.allow_url == ("^/a",) and t.deny_method == ("PUT",)


def test_the_click_group_fills_every_field() -> None:
    """Each traffic flag is one TrafficOptions field, with the same default."""
    seen: dict[str, object] = {}

    @click.command()
    @traffic_options
    def cmd(**kw: object) -> None:
        seen.update(kw)

    result = CliRunner().invoke(cmd, [])
    assert result.exit_code == 0, result.output
    assert set(seen) == {f.name for f in dataclasses.fields(TrafficOptions)}
    assert TrafficOptions.of(seen) == TrafficOptions()
