"""Prometheus exposition: format, labels, and a real HTTP scrape on loopback."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from replaygate.errors import ConfigError
from replaygate.metrics import MetricsServer, parse_metrics_address, render


def test_render_counters_gauges_and_labels() -> None:
    text = render(
        {
            "packets_seen": 10,
            "active_connections": 2,
            "recording_queue": 5,
            "dropped": {"backpressure": 3, "filter": 1},
            "name": "skipped",
            "odd-name.x": 1.5,
            "flag": True,
        }
    )
    assert (
        "# TYPE replaygate_packets_seen_total counter\nreplaygate_packets_seen_total 10\n" in text
    )
    assert "# TYPE replaygate_active_connections gauge\nreplaygate_active_connections 2" in text
    assert "replaygate_recording_queue 5" in text
    assert 'replaygate_dropped_total{reason="backpressure"} 3' in text
    assert 'replaygate_dropped_total{reason="filter"} 1' in text
    assert "replaygate_odd_name_x_total 1.5" in text
    assert "skipped" not in text and "flag" not in text
    assert text.count("# TYPE replaygate_dropped_total") == 1


def test_label_escaping() -> None:
    assert 'reason="a\\"b\\\\c\\nd"' in render({"dropped": {'a"b\\c\nd': 1}})


def test_scrape_over_http() -> None:
    calls = {"n": 0}

    def collect() -> dict[str, int]:
        calls["n"] += 1
        return {"exchanges_written": calls["n"]}

    with MetricsServer(collect, host="127.0.0.1", port=0) as m:
        url = f"http://127.0.0.1:{m.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "replaygate_exchanges_written_total 1" in r.read().decode()
        with urllib.request.urlopen(url, timeout=5) as r:
            assert "replaygate_exchanges_written_total 2" in r.read().decode()
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(f"http://127.0.0.1:{m.port}/nope", timeout=5)
        ei.value.close()


def test_broken_collector_is_500_not_a_crash() -> None:
    def collect() -> dict[str, int]:
        raise RuntimeError("boom")

    with MetricsServer(collect, port=0) as m:
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=5)
        ei.value.close()
        assert ei.value.code == 500


def test_parse_address_and_port_in_use() -> None:
    assert parse_metrics_address("9100") == ("0.0.0.0", 9100)
    assert parse_metrics_address("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_metrics_address("[::1]:9") == ("::1", 9)
    with pytest.raises(ConfigError, match="--metrics-port"):
        parse_metrics_address("x")
    with pytest.raises(ConfigError, match="not a port"):
        parse_metrics_address("70000")
    with MetricsServer(dict, port=0) as m, pytest.raises(ConfigError, match="cannot listen"):
        MetricsServer(dict, port=m.port)
