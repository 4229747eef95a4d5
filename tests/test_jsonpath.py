"""JSON path patterns, shared by masking and correlation."""

from __future__ import annotations

import pytest

from replaygate.errors import ConfigError
from replaygate.jsonpath import JsonPath, PathPart


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("$.users[*].email", ["users", 3, "email"], True),
        ("$.users[*].email", ["users", "x", "email"], True),
        ("$.users[0].email", ["users", 1, "email"], False),
        ("$..password", ["a", "b", "password"], True),
        ("$..password", ["password"], True),
        ("**.token", ["x", "token"], True),
        ("a.b", ["a", "b", "c"], False),
        ("$['odd key']", ["odd key"], True),
    ],
)
def test_matches(pattern: str, path: list[PathPart], matches: bool) -> None:
    assert JsonPath.parse(pattern).matches(path) is matches


def test_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^\[mask\] json_paths: '\$' names no field"):
        JsonPath.parse("$")
    with pytest.raises(ConfigError, match=r"^\[correlation\] rules\[2\]\.name: cannot read"):
        JsonPath.parse("$.a[x", "[correlation] rules[2].name")
