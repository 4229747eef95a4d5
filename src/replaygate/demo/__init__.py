"""The end-to-end demo: a small "production" app, a candidate with planted regressions, a
second production copy as baseline; traffic through the recording proxy, replay, compare,
reports. ``replaygate demo`` (and ``make demo``) run :func:`run_demo`."""

from __future__ import annotations

from .app import DemoApp, Variant
from .script import DemoResult, run_demo

__all__ = ["DemoApp", "DemoResult", "Variant", "run_demo"]
