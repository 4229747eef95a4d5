"""Shared fixtures. Real servers, real files; nothing mocked that can be run for real."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared real-traffic corpus; skips the test when it is not next to the checkout."""
    env = os.environ.get("REPLAYGATE_CORPUS")
    path = Path(env) if env else CORPUS
    if not path.is_dir():
        pytest.skip(f"corpus not found at {path} (set REPLAYGATE_CORPUS)")
    return path
