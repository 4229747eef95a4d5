"""Plugin: tag every request sent to staging with ``X-Replayed-By: replaygate``.

A module can be a plugin: its top-level ``request`` function is the hook.

    replaygate replay traffic.gor --target http://staging:8080 \\
        --plugin examples/plugins/add_header.py
"""

from __future__ import annotations

from replaygate.model import Exchange, Request

HEADER = "X-Replayed-By"
VALUE = "replaygate"


def request(ex: Exchange) -> Exchange:
    req = ex.request
    headers = [(k, v) for k, v in req.headers if k.lower() != HEADER.lower()]
    headers.append((HEADER, VALUE))
    new = req.with_head(" ".join(req.start_line), headers)
    assert isinstance(new, Request)
    ex.request = new  # the stage flags the exchange as modified
    return ex
