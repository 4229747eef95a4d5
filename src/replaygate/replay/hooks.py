"""Hook points of the replay engine, for in-process logic that must see live replay.

Session/token correlation, Python plugins and progress reporting implement this protocol.
The engine calls ``before_send`` right before a request goes out (it may return a modified
request, e.g. with staging's session cookie substituted) and ``after_response`` once the
replayed response (or error) is recorded on the exchange. Both run on the engine's event
loop: keep them fast and never block.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..model import Exchange, Request

__all__ = ["ReplayHook"]


@runtime_checkable
class ReplayHook(Protocol):
    def before_send(self, ex: Exchange, request: Request) -> Request:
        """Return the request to send (``request`` itself when unchanged)."""
        ...

    def after_response(self, ex: Exchange) -> None:
        """``ex.replayed`` / ``ex.replay_error`` are set; learn from them."""
        ...
