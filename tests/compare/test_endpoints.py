from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.compare import EndpointTemplater, template_path
from replaygate.errors import ConfigError
from replaygate.testing import make_request


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/users/123/orders/9f8e2c1a-1b2c-4d5e-8f90-1234567890ab", "/users/{int}/orders/{uuid}"),
        ("/objects/5f3c9a2b7e1d4c0a9b8e7f6d", "/objects/{hex}"),
        ("/blobs/d41d8cd98f00b204e9800998ecf8427e", "/blobs/{hash}"),
        ("/commits/da39a3ee5e6b4b0d3255bfef95601890afd80709", "/commits/{hash}"),
        ("/reports/2024-01-31", "/reports/{date}"),
        ("/reports/2024-01-31T10:00:00Z", "/reports/{date}"),
        ("/people/alice%40example.com", "/people/{email}"),
        ("/people/bob@example.org/inbox", "/people/{email}/inbox"),
        ("/s/eyJhbGciOiJIUzI1NiJ9xYz1", "/s/{token}"),
        ("/blog/my-first-post-2024", "/blog/my-first-post-2024"),
        ("/static/app.css", "/static/app.css"),
        (
            "/assets/favicon-92e86d463e909754599d66730477622cd3dd0b9bff58c47c9c38bebceb8073e5.ico",
            "/assets/favicon-{hash}.ico",
        ),
        ("/js/app.0123456789abcdef.js", "/js/app.{hex}.js"),
        ("/f/report_9f8e2c1a-1b2c-4d5e-8f90-1234567890ab.pdf", "/f/report_{uuid}.pdf"),
        ("/f/my-deadbeefdeadbeef-name", "/f/my-deadbeefdeadbeef-name"),
        ("/api/v2/users", "/api/v2/users"),
        ("/", "/"),
        ("", "/"),
        ("/a//b/", "/a//b/"),
    ],
)
def test_templates(path: str, expected: str) -> None:
    assert template_path(path) == expected


def test_rules_header_and_query() -> None:
    t = EndpointTemplater(
        ["GET /api/users/:id", "/files/**", {"pattern": "* /v1/{kind}/list", "name": "list"}],
        header="X-Endpoint",
    )
    assert t.endpoint(make_request("GET", "/api/users/abc?x=1")) == "GET /api/users/:id"
    assert t.endpoint(make_request("POST", "/api/users/7")) == "POST /api/users/{int}"
    assert t.endpoint(make_request("PUT", "/files/a/b/c.txt")) == "PUT /files/**"
    assert t.endpoint(make_request("GET", "/v1/cats/list")) == "list"
    assert (
        t.endpoint(make_request("GET", "/x", headers=[("X-Endpoint", "checkout")]))
        == "GET checkout"
    )
    assert t.endpoint(make_request("get", "/Items/42")) == "GET /Items/{int}"


def test_bad_rules() -> None:
    with pytest.raises(ConfigError, match="must have a path"):
        EndpointTemplater(["GET users"])
    with pytest.raises(ConfigError, match="cannot read rule"):
        EndpointTemplater([42])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_path_templates(path: str) -> None:
    out = template_path(path)
    assert out.count("/") == max(path.count("/"), 0) or path == ""


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 10**12).map(str),
            st.uuids().map(str),
            st.text("abcdef0123456789-_.", max_size=40),
        ),
        max_size=6,
    )
)
def test_templating_is_idempotent(segs: list[str]) -> None:
    p = "/" + "/".join(segs)
    once = template_path(p)
    assert template_path(once) == once
