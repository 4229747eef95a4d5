"""Route lists: OpenAPI 3 (JSON and YAML) and plain patterns name endpoints."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from replaygate.compare import EndpointTemplater, load_routes
from replaygate.compare._routes import parse_routes
from replaygate.errors import ConfigError, InputError
from replaygate.testing import make_request

OPENAPI = {
    "openapi": "3.0.3",
    "servers": [{"url": "https://api.example.com/v1"}],
    "paths": {
        "/users/{userId}": {"get": {}, "delete": {}, "parameters": []},
        "/users/me": {"get": {}},
        "/orders/{id}.json": {"get": {}},
    },
}


def names(rules: list, reqs: list[tuple[str, str]]) -> list[str]:
    t = EndpointTemplater(routes=rules)
    return [t.endpoint(make_request(m, p)) for m, p in reqs]


REQS = [
    ("GET", "/v1/users/alice"),
    ("GET", "/v1/users/me"),
    ("DELETE", "/v1/users/7"),
    ("POST", "/v1/users/7"),
    ("GET", "/v1/orders/12.json"),
]
EXPECTED = [
    "GET /v1/users/{userId}",
    "GET /v1/users/me",
    "DELETE /v1/users/{userId}",
    "POST /v1/users/{int}",  # no such operation: automatic template
    "GET /v1/orders/{id}.json",
]


def test_openapi_json(tmp_path: Path) -> None:
    p = tmp_path / "openapi.json"
    p.write_bytes(orjson.dumps(OPENAPI))
    assert names(load_routes(p), REQS) == EXPECTED


def test_openapi_yaml(tmp_path: Path) -> None:
    p = tmp_path / "api.yaml"
    p.write_text(
        "openapi: 3.1.0\nservers:\n  - url: /v1\npaths:\n"
        "  /users/{userId}:\n    get: {}\n    delete: {}\n"
        "  /users/me:\n    get:\n      summary: me\n"
        "  /orders/{id}.json:\n    get: {}\n"
    )
    assert names(load_routes(p), REQS) == EXPECTED


def test_plain_patterns(tmp_path: Path) -> None:
    p = tmp_path / "routes.txt"
    p.write_text("# our routes\nGET /v1/users/{id}\n\n/v1/orders/:id.json  # any method\n")
    assert names(load_routes(p), [("GET", "/v1/users/3"), ("PUT", "/v1/orders/:id.json")]) == [
        "GET /v1/users/{id}",
        "PUT /v1/orders/:id.json",
    ]


def test_bad_route_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"routes.txt:2: expected"):
        parse_routes(b"GET /a\nGET users\n", "routes.txt")
    with pytest.raises(ConfigError, match="needs a 'paths' object"):
        parse_routes(b'{"openapi": "3.0.0"}', "x.json")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_routes(b"openapi: [\n", "x.yaml")
    with pytest.raises(InputError):
        load_routes(tmp_path / "missing.yaml")
