"""Plugin: drop health checks and probes, which only add noise to a replay.

A class is a plugin too (it is instantiated with no arguments); ``exchange`` sees every
exchange that was kept, here to count what went through.

    replaygate convert traffic.gor clean.gor --plugin examples/plugins/drop_health.py:DropHealth
"""

from __future__ import annotations

import re

from replaygate.model import Exchange

PROBES = re.compile(r"^/(health|healthz|livez|readyz|ready|ping|status)(/|$)", re.IGNORECASE)


class DropHealth:
    def __init__(self) -> None:
        self.dropped = 0
        self.kept = 0

    def request(self, ex: Exchange) -> Exchange | None:
        if PROBES.match(ex.request.path):
            self.dropped += 1
            return None  # None drops the exchange
        return ex

    def exchange(self, ex: Exchange) -> None:
        self.kept += 1
