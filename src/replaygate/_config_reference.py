"""Which ``replaygate.toml`` sections exist, which dataclass builds each, who reads them.

Kept next to the code so ``docs/configuration.md`` cannot drift from it: ``tests/test_docs.py``
checks that every field of every dataclass here is documented, that every flag named here is
a real option of a command that reads the section, and that the documented example builds.
Nothing at run time imports this module (the commands import their own dataclasses lazily).
"""

from __future__ import annotations

from .compare._config import CompareConfig, GateConfig
from .replay._config import ReplayConfig
from .replay.correlation import CorrelationConfig
from .stages.filter import FilterConfig
from .stages.mask import MaskConfig
from .stages.middleware import MiddlewareConfig
from .stages.rewrite import RewriteConfig

__all__ = ["EXTRA_KEYS", "FLAGS", "READ_BY", "SECTIONS"]

# section name -> the dataclass ``config.section(cls, data, name=...)`` builds from it
SECTIONS: dict[str, type] = {
    "filters": FilterConfig,
    "mask": MaskConfig,
    "rewrite": RewriteConfig,
    "middleware": MiddlewareConfig,
    "replay": ReplayConfig,
    "correlation": CorrelationConfig,
    "compare": CompareConfig,
    "gate": GateConfig,
}

# keys a command reads from a section before building its dataclass (not dataclass fields)
EXTRA_KEYS: dict[str, tuple[str, ...]] = {"middleware": ("plugins",)}

_TRAFFIC = ("capture", "convert", "proxy", "replay", "shadow")

# section -> commands that read it (from --config FILE or ./replaygate.toml)
READ_BY: dict[str, tuple[str, ...]] = {
    "filters": _TRAFFIC,
    "mask": (*_TRAFFIC, "scan"),
    "rewrite": _TRAFFIC,
    "middleware": _TRAFFIC,
    "replay": ("replay", "shadow"),
    "correlation": ("replay",),
    "compare": ("aggregate", "compare", "replay"),
    "gate": ("aggregate", "compare", "replay"),
}

# section -> field -> the command-line flag that overrides it (flags win over the file)
FLAGS: dict[str, dict[str, str]] = {
    "filters": {
        "allow_url": "--allow-url",
        "deny_url": "--deny-url",
        "allow_method": "--allow-method",
        "deny_method": "--deny-method",
        "allow_header": "--allow-header",
        "deny_header": "--deny-header",
        "allow_basic_auth": "--allow-basic-auth",
        "url_match": "--url-match",
        "sample": "--sample",
        "sample_by": "--sample-by",
        "sample_random": "--sample-random",
    },
    "mask": {"enabled": "--mask", "ip_addresses": "--ip"},
    "rewrite": {
        "rewrite_url": "--rewrite-url",
        "rewrite_header": "--rewrite-header",
        "set_header": "--set-header",
        "remove_header": "--remove-header",
        "set_param": "--set-param",
    },
    "middleware": {
        "command": "--middleware",
        "on_error": "--middleware-on-error",
        "plugins": "--plugin",
    },
    "replay": {
        "targets": "--target",
        "split": "--split",
        "baseline": "--baseline",
        "speed": "--speed",
        "rate": "--rate",
        "max_speed": "--max",
        "concurrency": "--concurrency",
        "ramp": "--ramp",
        "loop": "--loop",
        "duration": "--duration",
        "limit": "--limit",
        "max_wait": "--max-wait",
        "sessions": "--sessions",
        "session_key": "--session-key",
        "order": "--order",
        "keep_host": "--keep-host",
        "connect_timeout": "--connect-timeout",
        "response_timeout": "--timeout",
        "max_response_size": "--max-response-size",
        "max_header_size": "--max-header-size",
        "redirects": "--redirects",
        "insecure": "--insecure",
        "ca_file": "--ca-file",
        "allow_unsafe_target": "--allow-unsafe-target",
        "workers": "--workers",
    },
    "correlation": {"enabled": "--no-correlate"},
    "compare": {},
    "gate": {},
}
