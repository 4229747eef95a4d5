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

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from ..errors import ConfigError
from ..pipeline import Counters, Stage, close_stages, iter_through
from ..stages.defaults import TrafficOptions, default_stages, mask_key_of
from ._flags import mask_config_option, mask_key_file_option

if TYPE_CHECKING:  # the replay package is heavy (event loop, clients); only for typing
    from ..replay.hooks import ReplayHook

__all__ = [
    "LOG_FORMATS",
    "close_stages",
    "config_option",
    "input_limit_options",
    "iter_through",
    "log_format_option",
    "log_host_option",
    "mask_key_of",
    "read_limits",
    "replay_hooks",
    "stages_from_options",
    "traffic_group",
    "traffic_options",
]

F = TypeVar("F", bound=Callable[..., Any])

_URL_HELP = (
    "matched (regex search, not anchored) against the request target path?query, or against "
    "the full URL scheme://host/path?query with --url-match full"
)

# (names..., keyword, kwargs) in the order they appear in --help
_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--allow-url", "--http-allow-url", "allow_url"),
        dict(
            multiple=True,
            metavar="RE",
            help=f"Keep only requests whose URL matches; {_URL_HELP}. Repeatable: any may match.",
        ),
    ),
    (
        ("--deny-url", "--http-disallow-url", "deny_url"),
        dict(
            multiple=True,
            metavar="RE",
            help=f"Drop requests whose URL matches; {_URL_HELP}. Repeatable; deny wins over allow.",
        ),
    ),
    (
        ("--url-match", "url_match"),
        dict(
            type=click.Choice(["path", "full"]),
            default=None,
            help="What URL regexes see: 'path' = path?query as sent (default), "
            "'full' = scheme://host/path?query.",
        ),
    ),
    (
        ("--allow-method", "--http-allow-method", "allow_method"),
        dict(multiple=True, metavar="M", help="Keep only these methods (repeatable)."),
    ),
    (
        ("--deny-method", "deny_method"),
        dict(multiple=True, metavar="M", help="Drop these methods (repeatable)."),
    ),
    (
        ("--allow-header", "--http-allow-header", "allow_header"),
        dict(
            multiple=True,
            metavar="'NAME: RE'",
            help="Keep only requests that have header NAME with a value matching RE. "
            "Every name given must match.",
        ),
    ),
    (
        ("--deny-header", "--http-disallow-header", "deny_header"),
        dict(
            multiple=True, metavar="'NAME: RE'", help="Drop requests whose header NAME matches RE."
        ),
    ),
    (
        ("--allow-basic-auth", "--http-basic-auth-filter", "allow_basic_auth"),
        dict(
            multiple=True,
            metavar="RE",
            help="Keep only requests with Authorization: Basic whose user name matches RE.",
        ),
    ),
    (
        ("--sample", "sample"),
        dict(
            metavar="PCT",
            default=None,
            help="Consistent sampling: keep PCT (e.g. 25%) of keys (see --sample-by); the same "
            "keys are kept on every run.",
        ),
    ),
    (
        ("--sample-by", "sample_by"),
        dict(
            metavar="KEY",
            default=None,
            help="Key for --sample: header:NAME, query:NAME, cookie:NAME or session (default: "
            "session key, else client connection, else the exchange). Requests without a "
            "header/query/cookie key are kept (as GoReplay does) and counted.",
        ),
    ),
    (
        ("--sample-random", "sample_random"),
        dict(
            metavar="PCT",
            default=None,
            help="Random sampling: keep each exchange with probability PCT.",
        ),
    ),
    (
        ("--http-header-limiter", "http_header_limiter"),
        dict(
            metavar="'NAME: PCT'",
            default=None,
            hidden=True,
            help="GoReplay alias: --sample PCT --sample-by header:NAME.",
        ),
    ),
    (
        ("--http-param-limiter", "http_param_limiter"),
        dict(
            metavar="'NAME: PCT'",
            default=None,
            hidden=True,
            help="GoReplay alias: --sample PCT --sample-by query:NAME.",
        ),
    ),
    (
        ("--mask", "mask"),
        dict(
            is_flag=True,
            default=False,
            help="Mask secrets and personal data with the default profile.",
        ),
    ),
    (
        ("--rewrite-url", "--http-rewrite-url", "rewrite_url"),
        dict(
            multiple=True,
            metavar="'RE:REPLACEMENT'",
            help="Rewrite the target path?query; the first matching rule applies. $1 / \\1 "
            "refer to groups; write \\: for a colon inside RE.",
        ),
    ),
    (
        ("--rewrite-header", "--http-rewrite-header", "rewrite_header"),
        dict(
            multiple=True,
            metavar="'NAME: RE,REPLACEMENT'",
            help="Rewrite header NAME's value (write \\, for a comma inside RE).",
        ),
    ),
    (
        ("--set-header", "--http-set-header", "set_header"),
        dict(multiple=True, metavar="'NAME: VALUE'", help="Set (replace or add) a request header."),
    ),
    (
        ("--remove-header", "remove_header"),
        dict(multiple=True, metavar="NAME", help="Remove a request header (every occurrence)."),
    ),
    (
        ("--set-param", "--http-set-param", "set_param"),
        dict(multiple=True, metavar="NAME=VALUE", help="Set (replace or add) a query parameter."),
    ),
    (
        ("--middleware", "middleware"),
        dict(
            metavar="'CMD ARGS'",
            default=None,
            help="Run an external middleware speaking GoReplay's protocol (hex lines on "
            "stdin/stdout; echo to keep, modify, omit to drop, write new lines to inject).",
        ),
    ),
    (
        ("--middleware-on-error", "middleware_on_error"),
        dict(
            type=click.Choice(["stop", "skip"]),
            default=None,
            help="If the middleware crashes: stop with an error (default) or pass exchanges "
            "through unchanged (counted).",
        ),
    ),
    (
        ("--plugin", "plugin"),
        dict(
            multiple=True,
            metavar="MODULE:ATTR",
            help="Load a Python plugin by module:attr path or 'replaygate.plugins' entry point "
            "name (repeatable).",
        ),
    ),
]


def traffic_options(f: F) -> F:
    """Decorator: add the filter / sample / mask / rewrite / middleware / plugin flags."""
    for names, kwargs in reversed(_OPTIONS):
        if names[0] == "--mask":  # the next two are shared with mask-data and scan: _flags
            f = mask_config_option(mask_key_file_option(f))
        f = click.option(*names, **kwargs)(f)
    return f


_TRAFFIC_NAMES = tuple(f.name for f in dataclasses.fields(TrafficOptions))


def traffic_group(f: F) -> F:
    """Decorator: the traffic flags (``@traffic_options``), handed to the command as one
    ``traffic: TrafficOptions`` instead of loose keywords."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _TRAFFIC_NAMES}
        return f(*args, traffic=TrafficOptions.of(values), **kwargs)

    return traffic_options(cast(F, command))


LOG_FORMATS = ("nginx", "apache", "alb", "elb")


def config_option(f: F) -> F:
    """``--config FILE`` (keyword ``config_path``): the replaygate.toml to read."""
    return click.option(
        "--config",
        "config_path",
        default=None,
        metavar="FILE",
        help="replaygate.toml to read (default: ./replaygate.toml if present).",
    )(f)


def log_format_option(f: F) -> F:
    """``--log-format`` for commands that read access logs."""
    return click.option(
        "--log-format",
        type=click.Choice(LOG_FORMATS, case_sensitive=False),
        default=None,
        help="Access-log format of .log inputs (default: detected per line).",
    )(f)


def log_host_option(f: F) -> F:
    """``--host`` for access-log lines that do not name one."""
    return click.option(
        "--host",
        default=None,
        metavar="HOST",
        help="Host header for access-log lines that do not name one.",
    )(f)


def input_limit_options(f: F) -> F:
    """Decorator: ``--max-record-size`` and ``--max-file-size`` for commands that read files."""
    f = click.option(
        "--max-file-size",
        metavar="SIZE",
        default=None,
        help="Largest document read at once (HAR); larger is an error (default 2GiB).",
    )(f)
    f = click.option(
        "--max-record-size",
        metavar="SIZE",
        default=None,
        help="Largest .gor record or .jsonl line read; larger is an error naming the file and "
        "offset (default 512MiB).",
    )(f)
    return f


def read_limits(options: Mapping[str, Any]) -> dict[str, int]:
    """ReadOptions keyword arguments from the ``input_limit_options`` flags."""
    from ..config import parse_size

    out: dict[str, int] = {}
    for key in ("max_record_size", "max_file_size"):
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


def replay_hooks(stages: list[Stage]) -> list[ReplayHook]:
    """The stages that want to see replayed responses, as replay-engine hooks.

    Middleware stages send them to the child as type-3 messages; plugin stages run their
    ``replayed`` (then ``exchange``) hook. Pass the result to the replay engine with its own
    hooks (session correlation, progress).
    """
    from ..stages.middleware import MiddlewareStage
    from ..stages.plugins import PluginStage

    hooks: list[ReplayHook] = []
    for st in stages:
        if isinstance(st, PluginStage):
            hooks.append(st.as_replay_hook())
        elif isinstance(st, MiddlewareStage):
            hooks.append(st)
        elif st.name == "mask" and hasattr(st, "replay_hook"):  # masks staging's responses
            hooks.append(st.replay_hook())
    return hooks
