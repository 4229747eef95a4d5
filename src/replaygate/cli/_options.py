"""The traffic flags shared by capture, proxy, convert, replay and shadow.

``@traffic_options`` adds the filter / sampling / masking / rewrite / middleware / plugin
flags to a click command; :func:`stages_from_options` turns the command's keyword arguments
into :class:`~replaygate.stages.defaults.TrafficOptions` and the stages are built, with the
``[filters]``, ``[mask]``, ``[rewrite]`` and ``[middleware]`` sections of replaygate.toml
(flags win), by :func:`~replaygate.stages.defaults.default_stages`, in its one order. GoReplay's
flag names are accepted as aliases (``--http-allow-url`` ...).

Bad values raise :class:`~replaygate.errors.ConfigError` naming the flag, e.g.
``--allow-url: bad regex '(': missing ), unterminated subpattern at position 0``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError
from ..pipeline import Counters, Stage, close_stages, iter_through
from ..runner._replay import replay_hooks
from ..stages.defaults import TrafficOptions, default_stages, mask_key_of
from ._flags import flags, group

if TYPE_CHECKING:  # the replay package is heavy (event loop, clients); only for typing
    pass

__all__ = [
    "LIMIT_KEYS",
    "LOG_FORMATS",
    "close_stages",
    "iter_through",
    "mask_key_of",
    "read_limits",
    "replay_hooks",
    "stages_from_options",
    "traffic_group",
    "traffic_options",
]

F = TypeVar("F", bound=Callable[..., Any])

# the traffic flags (flags.toml), in --help order
TRAFFIC_FLAGS = (
    "allow_url", "deny_url", "url_match", "allow_method", "deny_method", "allow_header",
    "deny_header", "allow_basic_auth", "sample", "sample_by", "sample_random",
    "http_header_limiter", "http_param_limiter", "mask", "mask_config", "mask_key_file",
    "rewrite_url", "rewrite_header", "set_header", "remove_header", "set_param", "middleware",
    "middleware_on_error", "plugin",
)  # fmt: skip


def traffic_options(f: F) -> F:
    """Decorator: add the filter / sample / mask / rewrite / middleware / plugin flags."""
    return flags(*TRAFFIC_FLAGS)(f)


# Decorator: the traffic flags (``@traffic_options``), handed to the command as one
# ``traffic: TrafficOptions`` instead of loose keywords.
traffic_group = group("traffic", TrafficOptions.of, *TRAFFIC_FLAGS)


LOG_FORMATS = ("nginx", "apache", "alb", "elb")


LIMIT_KEYS = ("max_record_size", "max_file_size")


def read_limits(options: Mapping[str, Any]) -> dict[str, int]:
    """ReadOptions keyword arguments from the ``input_limit_options`` flags."""
    from ..config import parse_size

    out: dict[str, int] = {}
    for key in LIMIT_KEYS:
        text = options.get(key)
        if text is not None:
            flag = "--" + key.replace("_", "-")
            n = parse_size(text, name=flag)
            if n < 1024:
                raise ConfigError(f"{flag}: must be at least 1KiB (got {text!r})")
            out[key] = n
    return out


def stages_from_options(
    options: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    *,
    counters: Counters | None = None,
    made_mask_key: bytes | None = None,
) -> list[Stage]:
    """The stages for a command's keyword arguments (the ``@traffic_options`` flags) and the
    loaded TOML: :func:`replaygate.stages.defaults.default_stages` builds them."""
    return default_stages(
        TrafficOptions.of(options), config, counters=counters, mask_key=made_mask_key
    )
