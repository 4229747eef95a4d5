"""Plugin: tag every request sent to staging with ``X-Replayed-By: replaygate``.

A module can be a plugin: its top-level ``request`` function is the hook. ``edit_request``
changes only the lines it must, so every other byte of the request stays as captured.

    replaygate replay traffic.gor --target http://staging:8080 \\
        --plugin examples/plugins/add_header.py
"""

from __future__ import annotations

from replaygate.model import Exchange
from replaygate.stages.rewrite import edit_request


def request(ex: Exchange) -> Exchange:
    ex.request = edit_request(ex.request, set_headers={"X-Replayed-By": "replaygate"})
    return ex  # the stage flags the exchange as modified
