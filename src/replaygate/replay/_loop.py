"""The event loop a replay runs on, Ctrl-C handling, and the one-process check."""

from __future__ import annotations

import asyncio
import signal
import threading

from ..errors import ConfigError
from ._config import ReplayConfig

__all__ = ["check_no_workers", "install_sigint", "new_event_loop"]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when available (3-4x faster I/O), else the default loop."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()


def install_sigint(loop: asyncio.AbstractEventLoop, stop: threading.Event) -> bool:
    """First Ctrl-C stops feeding (in-flight requests finish, the summary is printed); a
    second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        return False

    def on_sigint() -> None:
        if stop.is_set():  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


def check_no_workers(config: ReplayConfig) -> None:
    if config.workers > 1:
        raise ConfigError(
            "--workers: several processes need re-readable files; use run_replay_parallel()"
        )
