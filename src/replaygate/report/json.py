"""The JSON summary, exactly as judged (stable key order, UTF-8)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["render_json"]


def render_json(summary: dict[str, Any]) -> str:
    return (
        orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )
