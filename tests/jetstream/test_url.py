from __future__ import annotations

import pytest

from replaygate.errors import ConfigError
from replaygate.jetstream.url import parse_stream_url


def test_parse_single_and_cluster() -> None:
    u = parse_stream_url("nats://127.0.0.1:4222/TRAFFIC")
    assert u.servers == ("nats://127.0.0.1:4222",)
    assert u.stream == "TRAFFIC"
    assert u.results_stream == "TRAFFIC-RESULTS"
    assert u.subject(3) == "rg.TRAFFIC.p.3"
    c = parse_stream_url("nats://a:1,b:2,c:3/T?partitions=4&results=OUT")
    assert c.servers == ("nats://a:1", "nats://b:2", "nats://c:3")
    assert c.partitions == 4
    assert c.results_stream == "OUT"
    assert c.key == "connection"
    assert parse_stream_url("nats://h:1/T?key=user").key == "user"
    assert parse_stream_url("nats://h:1/T?key=Cookie:sid").key == "cookie:sid"
    assert parse_stream_url("nats://h:1/T?key=header:X-User").key == "header:X-User"


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("http://x/T", "not a nats:// URL"),
        ("nats:///T", "no host"),
        ("nats://h:1", "names no stream"),
        ("nats://h:1/a.b", "may use only"),
        ("nats://h:1/T?partitions=0", "partitions must be"),
        ("nats://h:1/T?partitions=x", "partitions must be"),
        ("nats://h:1/T?key=users", "is not a partition key"),
        ("nats://h:1/T?key=cookie:", "is not a partition key"),
    ],
)
def test_bad_urls_name_the_flag(text: str, msg: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_stream_url(text, name="--output")
    assert msg in str(e.value)
    assert str(e.value).startswith("--output")
