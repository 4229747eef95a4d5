"""The capture flags shared by ``capture`` and ``shadow``: defined once, here.

``@capture_options`` adds where and how long to capture (``--interface``, ``--port``,
``--bpf``, ``--duration``, ``--max-exchanges``) and hands the command one
:class:`CaptureOptions` (keyword ``capture``); :meth:`CaptureOptions.config` checks it and
builds the library's :class:`~replaygate.sources.capture.CaptureConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError
from ._flags import bounded_duration, group

if TYPE_CHECKING:  # the capture module loads libpcap; only for typing
    from ..sources.capture import CaptureConfig

__all__ = ["CaptureOptions", "capture_options"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CaptureOptions:
    """What the capture flags say."""

    interfaces: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    bpf: str | None = None
    duration: str | None = None
    max_exchanges: int | None = None

    def config(self, **more: Any) -> CaptureConfig:
        """The checked CaptureConfig (``more``: the command's other capture settings); an
        unknown interface is one line naming it and the known ones."""
        from ..sources._libpcap import list_interfaces
        from ..sources.capture import CaptureConfig

        cfg = CaptureConfig(
            interfaces=list(self.interfaces),
            ports=list(self.ports),
            bpf=self.bpf,
            duration=bounded_duration(self.duration, "--duration") if self.duration else None,
            max_exchanges=self.max_exchanges,
            **more,
        )
        cfg.validate()
        known = list_interfaces()
        for name in cfg.interfaces:
            if name not in known:
                raise ConfigError(
                    f"--interface {name}: no such interface (known: {', '.join(known)})"
                )
        return cfg


def _make(values: dict[str, Any]) -> CaptureOptions:
    values["interfaces"] = tuple(values["interfaces"] or ())
    values["ports"] = tuple(values["ports"] or ())
    return CaptureOptions(**values)


# Decorator: the capture flags, handed to the command as ``capture: CaptureOptions``.
capture_options = group("capture", _make, "interfaces", "ports", "bpf", "duration", "max_exchanges")
