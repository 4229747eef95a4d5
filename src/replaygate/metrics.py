"""Prometheus text exposition of a live run's counters (``--metrics-port``).

Small on purpose: a stdlib ``ThreadingHTTPServer`` in a daemon thread answers
``GET /metrics`` by calling a ``collect()`` function that returns the current counters
(the same flat dict the run prints at exit), so what Prometheus scrapes is exactly what the
user sees on stderr. Names become ``replaygate_<name>``; monotonic counts get ``_total``;
names in ``gauges`` (queue depths, open connections) are exported as gauges. A nested
mapping becomes one labelled family (``replaygate_dropped_total{reason="backpressure"}``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ConfigError

__all__ = ["DEFAULT_GAUGES", "MetricsServer", "parse_metrics_address", "render"]

DEFAULT_GAUGES = frozenset(
    {"active_connections", "recording_queue", "replay_queue", "queue", "up", "flows_open"}
)

_BAD = re.compile(r"[^a-zA-Z0-9_]")

Metrics = Mapping[str, Any]


def _name(text: str) -> str:
    n = _BAD.sub("_", text).strip("_")
    return n if n and not n[0].isdigit() else f"m_{n}"


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(
    metrics: Metrics, *, prefix: str = "replaygate", gauges: Iterable[str] = DEFAULT_GAUGES
) -> str:
    """The text format (version 0.0.4) for ``metrics``; non-numeric values are skipped."""
    gset = set(gauges)
    lines: list[str] = []
    for key in sorted(metrics):
        value = metrics[key]
        gauge = key in gset or key.endswith("_queue") or key.startswith("active_")
        base = f"{prefix}_{_name(key)}"
        name = base if gauge or base.endswith("_total") else base + "_total"
        kind = "gauge" if gauge else "counter"
        if isinstance(value, Mapping):
            samples = [
                (f'{name}{{reason="{_label(str(k))}"}}', v)
                for k, v in sorted(value.items())
                if isinstance(v, int | float) and not isinstance(v, bool)
            ]
            if not samples:
                continue
        elif isinstance(value, int | float) and not isinstance(value, bool):
            samples = [(name, value)]
        else:
            continue
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{s} {v}" for s, v in samples)
    return "\n".join(lines) + "\n"


def parse_metrics_address(text: str | int) -> tuple[str, int]:
    """``9100`` (all interfaces, as exporters do) or ``127.0.0.1:9100`` -> (host, port)."""
    s = str(text)
    host, sep, port = s.rpartition(":")
    if not sep:
        host = "0.0.0.0"
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(f"--metrics-port: expected PORT or HOST:PORT, got {s!r}") from None
    if not 0 <= p < 65536:
        raise ConfigError(f"--metrics-port: {p} is not a port")
    return host.strip("[]") or "0.0.0.0", p


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (port 0 picks a free one; see ``port``)."""

    def __init__(
        self,
        collect: Callable[[], Metrics],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        prefix: str = "replaygate",
        gauges: Iterable[str] = DEFAULT_GAUGES,
    ) -> None:
        self._collect = collect
        self._prefix = prefix
        self._gauges = frozenset(gauges)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                try:
                    body = outer.text().encode()
                    code = 200
                except Exception as e:  # a broken collector must not kill the exporter
                    body = f"# collect failed: {e}\n".encode()
                    code = 500
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            self._srv = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise ConfigError(f"--metrics-port {port}: cannot listen: {e.strerror}") from None
        self._srv.daemon_threads = True
        self.host = host
        self.port = int(self._srv.server_address[1])
        self._t = threading.Thread(
            target=self._srv.serve_forever, args=(0.2,), name="replaygate-metrics", daemon=True
        )
        self._t.start()

    def text(self) -> str:
        return render(self._collect(), prefix=self._prefix, gauges=self._gauges)

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._t.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
