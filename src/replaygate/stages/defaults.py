"""The default stage list: one flat, ordered list built in one place (mitmproxy's
``default_addons()`` is the model), from typed traffic options and ``replaygate.toml``::

    filter -> sample -> random sample -> mask -> rewrite -> middleware -> plugins

Why that order: filtering and sampling first, so nothing that is thrown away costs work;
masking before rewrites, so the headers users *set for staging* (a staging token) are not
masked away; masking before middleware and plugins, so external processes and user code never
see raw secrets. Every command that moves traffic (capture, proxy, convert, replay, shadow)
builds its stages here; the command line's ``@traffic_options`` flags fill
:class:`TrafficOptions`. Bad values raise :class:`~replaygate.errors.ConfigError` naming the
flag.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..config import section
from ..errors import ConfigError
from ..model import Counters
from ..pipeline import Stage

__all__ = ["TrafficOptions", "default_stages", "mask_key_of"]

T = TypeVar("T")


@dataclass(frozen=True)
class TrafficOptions:
    """What the traffic flags say (``None`` / empty: not given, the TOML or the default
    applies). Field names are the flags' (``--allow-url`` is ``allow_url``)."""

    allow_url: tuple[str, ...] = ()
    deny_url: tuple[str, ...] = ()
    url_match: str | None = None
    allow_method: tuple[str, ...] = ()
    deny_method: tuple[str, ...] = ()
    allow_header: tuple[str, ...] = ()
    deny_header: tuple[str, ...] = ()
    allow_basic_auth: tuple[str, ...] = ()
    sample: str | None = None
    sample_by: str | None = None
    sample_random: str | None = None
    http_header_limiter: str | None = None
    http_param_limiter: str | None = None
    mask: bool = False
    mask_config: str | None = None
    mask_key_file: str | None = None
    rewrite_url: tuple[str, ...] = ()
    rewrite_header: tuple[str, ...] = ()
    set_header: tuple[str, ...] = ()
    remove_header: tuple[str, ...] = ()
    set_param: tuple[str, ...] = ()
    middleware: str | None = None
    middleware_on_error: str | None = None
    plugin: tuple[str, ...] = ()

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> TrafficOptions:
        """From a mapping such as a click command's keyword arguments (other keys ignored;
        a single string where a list is expected is a list of one)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            v = options.get(f.name)
            if v is None:
                continue
            if f.type == "tuple[str, ...]":
                v = (v,) if isinstance(v, str) else tuple(str(x) for x in v)
            values[f.name] = v
        return cls(**values)


def _list(options: Mapping[str, Any], key: str) -> list[str] | None:
    v = options.get(key)
    if v is None or v == () or v == []:
        return None
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


def _section(config: Mapping[str, Any] | None, name: str) -> dict[str, Any] | None:
    if not config:
        return None
    data = config.get(name)
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    return dict(data)


def _config(
    cls: type[T],
    config: Mapping[str, Any] | None,
    name: str,
    options: Mapping[str, Any],
    lists: tuple[str, ...],
    **more: Any,
) -> T:
    """Section ``[name]`` of the TOML as ``cls``, the flags in ``lists`` (and ``more``) on
    top."""
    flags = {k: _list(options, k) for k in lists}
    return section(cls, _section(config, name), name=name, **flags, **more)


def _limiter(text: str, *, flag: str) -> tuple[str, str]:
    name, sep, pct = text.rpartition(":")
    if not sep or not name.strip() or not pct.strip():
        raise ConfigError(f"{flag}: expected 'NAME: PERCENT' (e.g. 'X-User: 25%'), got {text!r}")
    return name.strip(), pct.strip()


def default_stages(
    traffic: TrafficOptions,
    config: Mapping[str, Any] | None = None,
    *,
    counters: Counters | None = None,
    mask_key: bytes | None = None,
) -> list[Stage]:
    """The stages for the traffic options and the loaded TOML (options win), in the one
    order: filter, sample, random sample, mask, rewrite, middleware, plugins.

    ``counters`` receives the stages' notes (why things were dropped or changed); a
    :class:`~replaygate.pipeline.Pipeline` binds its own counters to them anyway.
    ``mask_key``: the masking key already made (read or generated) by the parent of
    ``--workers`` processes, used instead of making one (see :func:`mask_key_of`).
    """
    from .filter import FilterConfig, FilterStage
    from .rewrite import RewriteConfig, RewriteStage
    from .sample import RandomSampleStage, SampleStage

    options = dataclasses.asdict(traffic)

    counters = counters or Counters()
    stages: list[Stage] = []

    sample = options.get("sample")
    sample_by = options.get("sample_by")
    for flag, key, kind in (
        ("--http-header-limiter", "http_header_limiter", "header"),
        ("--http-param-limiter", "http_param_limiter", "query"),
    ):
        text = options.get(key)
        if text:
            name, pct = _limiter(str(text), flag=flag)
            sample, sample_by = pct, f"{kind}:{name}"

    fc = _config(
        FilterConfig,
        config,
        "filters",
        options,
        ("allow_url", "deny_url", "allow_method", "deny_method", "allow_header", "deny_header",
         "allow_basic_auth"),
        url_match=options.get("url_match"),
        sample=sample,
        sample_by=sample_by,
        sample_random=options.get("sample_random"),
    )  # fmt: skip
    if fc.active or fc.url_match != "path":
        stages.append(FilterStage(fc, counters))
    if fc.sample is not None:
        stages.append(SampleStage(fc.sample, fc.sample_by, counters))
    elif fc.sample_by is not None:
        raise ConfigError("--sample-by: needs --sample PERCENT")
    if fc.sample_random is not None:
        stages.append(RandomSampleStage(fc.sample_random))

    mask_on = bool(options.get("mask"))
    mask_config = options.get("mask_config")
    key_file = options.get("mask_key_file")
    if mask_on or mask_config or key_file or (config and "mask" in config):
        try:
            # imported only when masking is asked for; a missing module is a clear error
            mask_mod = importlib.import_module("replaygate.stages.mask")
        except ImportError:
            raise ConfigError("--mask: masking is not available in this installation") from None
        mask_stage_from_options = mask_mod.mask_stage_from_options
        ms = mask_stage_from_options(
            enabled=mask_on or bool(mask_config),
            config_path=mask_config,
            key_file=key_file,
            config=config,
            key=mask_key,
        )
        if ms is not None:
            stages.append(ms)

    rc = _config(
        RewriteConfig,
        config,
        "rewrite",
        options,
        ("rewrite_url", "rewrite_header", "set_header", "remove_header", "set_param"),
    )
    if rc.active:
        stages.append(RewriteStage(rc, counters))

    mw_section = _section(config, "middleware") or {}
    plugin_names = _list(options, "plugin")
    if plugin_names is None:
        plugin_names = [str(p) for p in mw_section.pop("plugins", None) or []]
    else:
        mw_section.pop("plugins", None)
    if options.get("middleware") or mw_section.get("command"):
        from .middleware import MiddlewareConfig, MiddlewareStage

        mc = section(
            MiddlewareConfig,
            mw_section,
            name="middleware",
            command=options.get("middleware"),
            on_error=options.get("middleware_on_error"),
        )
        stages.append(MiddlewareStage(mc, counters))
    elif options.get("middleware_on_error"):
        raise ConfigError("--middleware-on-error: needs --middleware")

    if plugin_names:
        from .plugins import load_plugin_stage

        for spec in plugin_names:
            stages.append(load_plugin_stage(spec, counters=counters))
    return stages


def mask_key_of(stages: Sequence[Stage]) -> bytes | None:
    """The key of the mask stage among ``stages`` (None without masking)."""
    for st in stages:
        key = getattr(st, "key", None) if st.name == "mask" else None
        if isinstance(key, bytes):
            return key
    return None
