"""Python plugins: in-process hooks for users who prefer Python to a middleware process.

A plugin is any object (a module, a class instance, a class, which is instantiated with no
arguments) with some of these methods, all optional::

    def request(ex: Exchange) -> Exchange | None    # return ex (or a new one) to keep, None drops
    def response(ex: Exchange) -> Exchange | None   # the original response is in ex.response;
                                                    # return a new exchange or None (keep ex)
    def replayed(ex: Exchange) -> None              # ex.replayed / ex.replay_error are set
    def exchange(ex: Exchange) -> None              # the finished exchange, read-only

Loaded with ``--plugin`` by ``module:attr``, ``module`` (the module itself is the plugin),
``path/to/file.py[:attr]``, or the name of an entry point in the ``replaygate.plugins``
group. :class:`PluginStage` adapts a plugin to both a pipeline stage (``request`` and
``response`` run where the stage sits) and a :class:`~replaygate.replay.hooks.ReplayHook`
(``replayed`` runs after each replayed response). ``exchange`` runs once per exchange: after
``replayed`` when the stage is registered with the replay engine (:meth:`PluginStage.
as_replay_hook`), else right after ``request``/``response``.

A plugin that raises becomes a :class:`PluginError` naming the plugin, hook, exception and
the plugin's source line, so a run never ends in an anonymous traceback.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..errors import ConfigError, ReplaygateError
from ..model import Exchange, Flag, Request
from ..pipeline import Counters

__all__ = [
    "ENTRY_POINT_GROUP",
    "Plugin",
    "PluginError",
    "PluginStage",
    "load_plugin",
    "load_plugin_stage",
]

ENTRY_POINT_GROUP = "replaygate.plugins"
_HOOKS = ("request", "response", "replayed", "exchange")


class Plugin(Protocol):
    """Documentation of the hook signatures; a plugin implements any subset of them."""

    def request(self, ex: Exchange) -> Exchange | None: ...

    def response(self, ex: Exchange) -> Exchange | None: ...

    def replayed(self, ex: Exchange) -> None: ...

    def exchange(self, ex: Exchange) -> None: ...


class PluginError(ReplaygateError):
    """A plugin raised an exception (its message names the plugin, hook and source line)."""


def _load_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise ConfigError(f"--plugin: no such file {path!r}")
    name = "replaygate_plugin_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--plugin: cannot load {path!r} as Python")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_plugin(spec: str) -> Any:
    """Resolve ``spec`` (see module doc) to a plugin object; ConfigError when impossible."""
    text = spec.strip()
    if not text:
        raise ConfigError("--plugin: empty plugin name")
    if text.endswith(".py"):
        modpart, attr = text, ""
    elif ".py:" in text:
        modpart, _, attr = text.rpartition(":")
    else:
        modpart, _, attr = text.partition(":")
    try:
        if modpart.endswith(".py"):
            obj: Any = _load_file(modpart)
        elif not attr and (ep := _entry_point(text)) is not None:
            obj = ep.load()
        else:
            obj = importlib.import_module(modpart)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"--plugin: cannot import {spec!r}: {type(e).__name__}: {e}") from None
    if attr:
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ConfigError(f"--plugin: {modpart!r} has no attribute {attr!r}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as e:
            raise ConfigError(
                f"--plugin: cannot create {spec!r}: {type(e).__name__}: {e}"
            ) from None
    if not any(callable(getattr(obj, h, None)) for h in _HOOKS):
        raise ConfigError(f"--plugin: {spec!r} defines none of {', '.join(_HOOKS)}")
    return obj


def _entry_point(name: str) -> importlib.metadata.EntryPoint | None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


class PluginStage:
    """One plugin as a pipeline stage and a replay hook (see module doc)."""

    def __init__(self, plugin: Any, spec: str, counters: Counters | None = None) -> None:
        self.plugin = plugin
        self.spec = spec
        self.name = "plugin"
        self.counters = counters or Counters()
        self.replay_mode = False
        self._hooks: dict[str, Callable[[Exchange], Any] | None] = {
            h: getattr(plugin, h, None) if callable(getattr(plugin, h, None)) else None
            for h in _HOOKS
        }

    def bind_counters(self, counters: Counters) -> None:
        self.counters = counters

    def as_replay_hook(self) -> PluginStage:
        """Register with the replay engine: ``exchange`` then runs after ``replayed``."""
        self.replay_mode = True
        return self

    def _call(self, hook: str, ex: Exchange) -> Any:
        fn = self._hooks[hook]
        if fn is None:
            return ex if hook in ("request", "response") else None
        try:
            return fn(ex)
        except ReplaygateError:
            raise
        except Exception as e:
            tb = traceback.extract_tb(e.__traceback__)
            where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
            raise PluginError(
                f"plugin {self.spec!r} {hook}() raised {type(e).__name__}: {e}{where} "
                f"(exchange {ex.id})"
            ) from e

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        before = ex.request.raw
        out = self._call("request", ex)
        if out is None:
            self.counters.notes["plugin.dropped"] += 1
            return ()
        if not isinstance(out, Exchange):
            raise PluginError(
                f"plugin {self.spec!r} request() returned {type(out).__name__}, "
                "expected an Exchange (or None to drop)"
            )
        ex = out
        if ex.response is not None:
            r = self._call("response", ex)
            if isinstance(r, Exchange):
                ex = r
        if ex.request.raw != before:
            ex.flags.add(Flag.MODIFIED)
        if not self.replay_mode:
            self._call("exchange", ex)
        return (ex,)

    def close(self) -> Iterable[Exchange]:
        return ()

    # -- ReplayHook ----------------------------------------------------------------------
    def before_send(self, ex: Exchange, request: Request) -> Request:
        return request

    def after_response(self, ex: Exchange) -> None:
        self._call("replayed", ex)
        if self.replay_mode:
            self._call("exchange", ex)


def load_plugin_stage(spec: str, *, counters: Counters | None = None) -> PluginStage:
    """Load ``spec`` and wrap it as a stage (the ``--plugin`` flag)."""
    return PluginStage(load_plugin(spec), spec, counters)
