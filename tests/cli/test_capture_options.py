"""The capture option group: defined once, taken by capture and shadow alike."""

from __future__ import annotations

import dataclasses

import click
import pytest

from replaygate.cli import capture, shadow
from replaygate.cli._capture_options import CaptureOptions, capture_options
from replaygate.errors import ConfigError


@pytest.mark.parametrize("cmd", [capture.command, shadow.command])
def test_capture_and_shadow_take_every_flag_alike(cmd: click.Command) -> None:
    @click.command()
    @capture_options
    def reference(capture: CaptureOptions) -> None:  # pragma: no cover - not invoked
        pass

    ref = {p.name: p for p in reference.params}
    got = {p.name: p for p in cmd.params}
    assert set(ref) == {f.name for f in dataclasses.fields(CaptureOptions)}
    for name, p in ref.items():
        q = got[name]
        assert (q.opts, q.multiple, q.default, repr(q.type)) == (
            p.opts,
            p.multiple,
            p.default,
            repr(p.type),
        )


def test_config_checks_the_flags() -> None:
    with pytest.raises(ConfigError, match="--duration"):
        CaptureOptions(ports=(80,), duration="soon").config()
