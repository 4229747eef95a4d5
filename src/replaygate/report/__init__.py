"""Reports written from the JSON summary (``Verdict.summary()``): JSON, JUnit, Markdown, HTML.

Every writer takes the same summary dict, so a report built from a file, a live replay or
NATS workers looks the same. ``write_reports`` writes the ones asked for and returns paths.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError
from .html import render_html
from .json import render_json
from .junit import render_junit
from .markdown import render_markdown

__all__ = ["render_html", "render_json", "render_junit", "render_markdown", "write_reports"]


def write_reports(
    summary: dict[str, Any],
    *,
    json_path: str | os.PathLike[str] | None = None,
    junit_path: str | os.PathLike[str] | None = None,
    markdown_path: str | os.PathLike[str] | None = None,
    html_path: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Write each report whose path is given; ``-`` is not accepted (files only)."""
    written: list[str] = []
    for path, render in (
        (json_path, render_json),
        (junit_path, render_junit),
        (markdown_path, render_markdown),
        (html_path, render_html),
    ):
        if path is None:
            continue
        p = Path(path)
        if p.parent and not p.parent.is_dir():
            raise InputError("directory does not exist", path=str(p.parent))
        text = render(summary)
        tmp = p.with_name(p.name + ".tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, p)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()  # a full disk must not leave report.json.tmp behind
            raise OutputError(f"cannot write report: {e.strerror or e}", path=str(p)) from None
        written.append(str(p))
    return written
