"""Route lists that name endpoints: an OpenAPI 3 document (JSON or YAML) or plain patterns.

OpenAPI: every ``paths`` entry with its operations (``get``, ``post``...) becomes a rule
``GET /users/{id}``; a path in the first ``servers`` URL (``https://api.example.com/v1``) is
put in front. Plain text: one pattern a line (``GET /users/{id}``, ``/health``, ``* /files/**``),
``#`` starts a comment.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from ..errors import ConfigError, InputError

if TYPE_CHECKING:
    from .endpoints import EndpointRule

__all__ = ["load_routes", "parse_routes"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_routes(path: str | os.PathLike[str]) -> list[EndpointRule]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"cannot read the route list: {e.strerror}", path=str(path)) from None
    return parse_routes(data, str(path))


def parse_routes(data: bytes, name: str = "routes") -> list[EndpointRule]:
    from .endpoints import EndpointRule

    text = data.decode("utf-8", "replace").lstrip("\ufeff")
    head = text.lstrip()[:1]
    doc: Any = None
    if head == "{":
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise ConfigError(f"{name}: not valid JSON: {e}") from None
    elif name.endswith((".yaml", ".yml")) or text.lstrip().startswith(("openapi:", "swagger:")):
        doc = _yaml(text, name)
    if doc is not None:
        return _openapi(doc, name)
    rules: list[EndpointRule] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 2 or not parts[-1].startswith("/"):
            raise ConfigError(
                f"{name}:{n}: expected '[METHOD] /path' (e.g. 'GET /users/{{id}}'), got {line!r}"
            )
        rules.append(EndpointRule(" ".join(parts)))
    return rules


def _yaml(text: str, name: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "syntax error"
        raise ConfigError(f"{name}: not valid YAML: {first}") from None


def _openapi(doc: Any, name: str) -> list[EndpointRule]:
    from .endpoints import EndpointRule

    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise ConfigError(f"{name}: an OpenAPI document needs a 'paths' object")
    prefix = ""
    servers = doc.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], dict):
        url = servers[0].get("url")
        if isinstance(url, str):
            prefix = urlsplit(url).path.rstrip("/")
    rules: list[EndpointRule] = []
    for path, item in doc["paths"].items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"{name}: paths: {path!r} must start with /")
        methods = [m for m in _METHODS if isinstance(item, dict) and m in item]
        full = prefix + path
        if not methods:
            rules.append(EndpointRule(full))
        rules.extend(EndpointRule(f"{m.upper()} {full}") for m in methods)
    return rules
