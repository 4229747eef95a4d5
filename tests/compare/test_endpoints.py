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


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/db/orders/982.json", "/db/orders/{int}.json"),
        ("/db/orders/982.csv", "/db/orders/{int}.csv"),
        ("/f/9f8e2c1a-1b2c-4d5e-8f90-1234567890ab.json", "/f/{uuid}.json"),
        ("/reports/2024-01-31.csv", "/reports/{date}.csv"),
        ("/db/orders.json", "/db/orders.json"),
        ("/v1.2/x", "/v1.2/x"),
        ("/s/QmFzZTY0SXNGdW5BbmRFYXN5", "/s/{token}"),  # base64 with digits
        ("/s/aGVsbG9Xb3JsZEhlbGxvV29ybGQ", "/s/{token}"),
        ("/s/dGVzdEFiY0RlZkdoaUprbE1ubw", "/s/{token}"),  # digit-less base64
        ("/docs/GettingStartedWithReplaygate", "/docs/GettingStartedWithReplaygate"),
    ],
)
def test_templates_through_extensions_and_base64(path: str, expected: str) -> None:
    assert template_path(path) == expected


def test_json_row_urls_are_one_endpoint() -> None:
    from replaygate.compare import Comparator, GateConfig, judge
    from replaygate.testing import make_exchange

    c = Comparator()
    for i in range(300):
        c.add(make_exchange("GET", f"/fixtures/orders/{i * 7 + 3}.json", replayed_status=200))
    names = [e["endpoint"] for e in judge(c.result(), GateConfig()).summary()["endpoints"]]
    assert names == ["GET /fixtures/orders/{int}.json"]


def test_cardinality_guard_folds_many_values_under_one_prefix() -> None:
    t = EndpointTemplater(max_segment_values=5)
    names = [t.endpoint(make_request("GET", f"/blog/post-number-{w}")) for w in "abcdefgh"]
    # the first five were named before the guard saw enough values; later ones are folded
    assert names[:5] == [f"GET /blog/post-number-{w}" for w in "abcde"]
    assert names[5:] == ["GET /blog/{var}"] * 3
    assert t.endpoint(make_request("GET", "/blog/post-number-a")) == "GET /blog/{var}"
    assert t.endpoint(make_request("GET", "/about")) == "GET /about"


def test_cardinality_guard_in_results_merges_endpoints() -> None:
    from replaygate.compare import Comparator, CompareConfig, GateConfig, judge
    from replaygate.testing import make_exchange

    c = Comparator(CompareConfig(max_segment_values=10, endpoints=["GET /blog/keep-me"]))
    for w in range(30):
        for _ in range(2):
            slug = f"post-{chr(97 + w % 26)}{chr(97 + w // 26)}-title"
            c.add(make_exchange("GET", f"/blog/{slug}", replayed_status=200))
    c.add(make_exchange("GET", "/blog/keep-me", replayed_status=200))
    for i in range(4):  # fewer than SHAPE_MIN: kept apart
        c.add(make_exchange("GET", f"/tags/tag{i}", replayed_status=200))
    eps = {e["endpoint"]: e for e in judge(c.result(), GateConfig()).summary()["endpoints"]}
    assert eps["GET /blog/{slug}"]["requests"] == 60
    assert "GET /blog/keep-me" in eps  # named by a rule: never folded
    assert {f"GET /tags/tag{i}" for i in range(4)} <= set(eps)
    assert len(eps) == 6


def test_fold_endpoints_keeps_small_groups() -> None:
    from replaygate.compare import fold_endpoints

    names = [f"GET /u/{i}x/items" for i in range(4)] + ["GET /u/{var}/items", "POST /u/a"]
    assert fold_endpoints(names, 10) == {
        f"GET /u/{i}x/items": "GET /u/{var}/items" for i in range(4)
    }
    assert fold_endpoints(names[:4], 10) == {}
    assert fold_endpoints(names, 0) == {}


def test_rule_that_matches_nothing_is_a_warning() -> None:
    from replaygate.compare import Comparator, CompareConfig, GateConfig, judge
    from replaygate.testing import make_exchange

    c = Comparator(CompareConfig(endpoints=["GET /shop/*/*.json", "GET /shop/{id}"]))
    c.add(make_exchange("GET", "/shop/12", replayed_status=200))
    c.add(make_exchange("GET", "/shop/a/b/c.json", replayed_status=200))
    s = judge(c.result(), GateConfig()).summary()
    assert s["warnings"] == ["[compare] endpoints rule 'GET /shop/*/*.json' matched no request"]
    # merged comparators (workers) add their hits
    c2 = Comparator(CompareConfig(endpoints=["GET /shop/*/*.json", "GET /shop/{id}"]))
    c2.add(make_exchange("GET", "/shop/a/b.json", replayed_status=200))
    c.merge(Comparator.from_state(c2.to_state(), c2.config))
    assert judge(c.result(), GateConfig()).summary()["warnings"] == []


def test_rules_with_params_inside_segments_and_stars() -> None:
    t = EndpointTemplater(["GET /db/{table}/{pk}.json", "GET /files/*.txt"])
    assert t.endpoint(make_request("GET", "/db/orders/9.json")) == "GET /db/{table}/{pk}.json"
    assert t.endpoint(make_request("GET", "/db/orders/9.csv")) == "GET /db/orders/{int}.csv"
    assert t.endpoint(make_request("GET", "/files/a.txt")) == "GET /files/*.txt"
    assert t.unmatched_rules() == []


def test_values_that_differ_in_digits_fold_to_their_shape() -> None:
    from replaygate.compare import fold_endpoints

    names = [f"GET /issue{i}" for i in range(1, 41)] + ["GET /issue", "GET /", "GET /user3"]
    names += ["GET /encode/base64", "GET /v2/users"]
    m = fold_endpoints(names, 50)
    assert {m[f"GET /issue{i}"] for i in range(1, 41)} == {"GET /issue{int}"}
    assert set(m) == {f"GET /issue{i}" for i in range(1, 41)}  # the rest keep their names
    t = EndpointTemplater(max_segment_values=5)
    got = {t.endpoint(make_request("GET", f"/issue{i}")) for i in range(1, 41)}
    assert got == {f"GET /issue{i}" for i in range(1, 41)}  # one shape: no {var} while reading


def test_ignore_rule_for_an_endpoint_that_never_came_is_a_warning() -> None:
    from replaygate.compare import Comparator, CompareConfig
    from replaygate.testing import make_exchange

    cfg = CompareConfig(
        ignore=[
            {"endpoint": "GET /shop/*", "field": "$.x"},
            {"endpoint": "GET /users/*", "field": "$.y"},
            "$.z",
        ]
    )
    c = Comparator(cfg)
    c.add(make_exchange("GET", "/users/1", replayed_status=200))
    assert c.result().warnings == [
        "[compare] ignore rule for endpoint 'GET /shop/*' matched no endpoint"
    ]
