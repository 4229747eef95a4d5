"""HAR 1.2 (HTTP Archive) import and export.

HAR is a *lossy* source: browsers and proxies keep header lists and decoded bodies, not wire
bytes. On import replaygate rebuilds HTTP/1.1 raw bytes from them (see
:mod:`replaygate.formats._http1`): HTTP/2 and HTTP/3 entries become HTTP/1.1 requests (the
original version is kept in ``meta["source_version"]``), pseudo-headers are dropped, ``Host``
comes from ``:authority`` or the URL, bodies are re-encoded with their recorded
``Content-Encoding`` and ``Content-Length`` is fixed. Status 0 (no response: blocked, failed,
aborted) becomes :data:`Flag.NO_RESPONSE`. A body the HAR left out (Firefox does this for
images) marks the exchange :data:`Flag.RESPONSE_TRUNCATED` with ``meta["har.body"] =
"omitted"``, so comparison never mistakes "not recorded" for "empty".

Export writes HAR 1.2 as the exchanges come (one entry per line) and closes the JSON in
``close()``; our own metadata rides in an ``_replaygate`` object per entry (custom fields start
with ``_`` in HAR) and is read back on import.
"""

from __future__ import annotations

from ._har_export import Writer, exchange_to_entry
from ._har_import import parse_har, read

__all__ = ["Writer", "exchange_to_entry", "parse_har", "read"]
