"""The output checks shared by capture, proxy, shadow and convert."""

from __future__ import annotations

import pytest

from replaygate.cli._output import write_options
from replaygate.errors import ConfigError


def test_rotation_parsed() -> None:
    w = write_options("a.gor", append=True, max_bytes="1mb", max_seconds="10s")
    assert (w.append, w.max_bytes, w.max_seconds) == (True, 1 << 20, 10.0)


@pytest.mark.parametrize(
    ("output", "max_bytes", "max_seconds", "message"),
    [
        ("a.gor", "0", None, "--max-bytes: must be positive"),
        ("a.gor", None, "0s", "--max-seconds: must be positive"),
        ("a.jsonl", "1mb", None, "rotation is for .gor outputs only"),
    ],
)
def test_bad_values_name_the_flag(
    output: str, max_bytes: str | None, max_seconds: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        write_options(output, append=False, max_bytes=max_bytes, max_seconds=max_seconds)
