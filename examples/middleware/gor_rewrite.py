#!/usr/bin/env python3
"""A middleware written against the PyPI ``gor`` package (``pip install gor``).

It moves ``/v1/...`` requests to ``/v2/...`` and tags every request with
``X-Replayed-By: gor-middleware``; responses pass through unchanged (``gor`` echoes every
message its callbacks do not replace).

Limits of the ``gor`` package (0.2.3), not of replaygate: it decodes payloads as UTF-8, so a
message with a binary body is reported on stderr and dropped; and its asyncio loop reads stdin
with a blocking call. Works on Python 3.11.

    replaygate convert in.gor out.gor --middleware "python3 examples/middleware/gor_rewrite.py"
"""

from gor.asyncio_impl import AsyncioGor


def on_request(proxy, msg, **kwargs):
    msg.http = proxy.set_http_header(msg.http, "X-Replayed-By", "gor-middleware")
    path = proxy.http_path(msg.http)
    if path.startswith("/v1/"):
        msg.http = proxy.set_http_path(msg.http, "/v2/" + path[len("/v1/") :])
    return msg


if __name__ == "__main__":
    proxy = AsyncioGor()
    proxy.on("request", on_request)
    proxy.run()
