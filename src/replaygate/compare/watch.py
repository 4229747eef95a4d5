"""Watch the target while a replay runs: Prometheus metrics and process statistics.

``TargetWatcher(metrics_url=..., pid=...)`` samples in a background thread every
``interval`` seconds between :meth:`start` and :meth:`stop`; :meth:`result` gives the time
series and first-to-last deltas that go into the report. Metrics URLs must be loopback (the
tool watches a staging copy it runs next to, and never scrapes a remote production host).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["TargetWatcher", "parse_prometheus"]

MAX_SERIES = 60


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text exposition -> ``{"name{labels}": value}`` (comments, NaN skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "}" in line:
            name, _, rest = line.rpartition("}")
            name += "}"
        else:
            name, _, rest = line.partition(" ")
        parts = rest.split()
        if not parts:
            continue
        try:
            v = float(parts[0])
        except ValueError:
            continue
        if v != v:  # NaN
            continue
        out[name.strip()] = v
    return out


def _check_loopback(url: str) -> None:
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(f"--watch-metrics: {url!r} is not an http(s) URL")
    try:
        infos = socket.getaddrinfo(u.hostname, None)
    except OSError:
        raise ConfigError(f"--watch-metrics: cannot resolve {u.hostname!r}") from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise ConfigError(
                f"--watch-metrics: {u.hostname} is not a loopback address (only local targets are scraped)"
            )


class TargetWatcher:
    """Samples a metrics endpoint and/or a process during a replay."""

    def __init__(
        self,
        *,
        metrics_url: str | None = None,
        pid: int | None = None,
        interval: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if metrics_url:
            _check_loopback(metrics_url)
        self._proc: Any = None
        if pid is not None:
            import psutil

            try:
                self._proc = psutil.Process(pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied) as e:
                raise ConfigError(f"--watch-pid: cannot watch process {pid}: {e}") from None
        self.metrics_url = metrics_url
        self.pid = pid
        self.interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.metrics: list[tuple[float, dict[str, float]]] = []
        self.process: list[dict[str, float]] = []
        self.errors: dict[str, int] = {}

    def sample(self) -> None:
        """Take one sample now (the thread calls this; tests may too)."""
        now = self._clock()
        if self.metrics_url:
            try:
                with urllib.request.urlopen(
                    self.metrics_url, timeout=min(5.0, self.interval * 2)
                ) as r:
                    text = r.read(8 << 20).decode("utf-8", "replace")
                self.metrics.append((now, parse_prometheus(text)))
            except (OSError, ValueError) as e:
                k = f"metrics: {type(e).__name__}"
                self.errors[k] = self.errors.get(k, 0) + 1
        if self._proc is not None:
            import psutil

            try:
                p = self._proc
                with p.oneshot():
                    row = {
                        "t": now,
                        "cpu_percent": p.cpu_percent(None),
                        "rss_bytes": float(p.memory_info().rss),
                        "threads": float(p.num_threads()),
                        "fds": float(p.num_fds()) if hasattr(p, "num_fds") else 0.0,
                    }
                self.process.append(row)
            except psutil.Error as e:
                k = f"process: {type(e).__name__}"
                self.errors[k] = self.errors.get(k, 0) + 1

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                break

    def start(self) -> None:
        if self._proc is not None:
            self._proc.cpu_percent(None)  # prime: the first call always returns 0
        self._thread = threading.Thread(target=self._run, name="replaygate-watch", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sample()  # the final state, so deltas cover the whole run
        return self.result()

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"errors": dict(self.errors)}
        if self.metrics_url:
            series: dict[str, list[list[float]]] = {}
            deltas: dict[str, float] = {}
            if self.metrics:
                t0 = self.metrics[0][0]
                first, last = self.metrics[0][1], self.metrics[-1][1]
                changed = sorted(
                    (k for k in last if last[k] != first.get(k, 0.0)),
                    key=lambda k: -abs(last[k] - first.get(k, 0.0)),
                )[:MAX_SERIES]
                for k in changed:
                    deltas[k] = last[k] - first.get(k, 0.0)
                    series[k] = [[round(t - t0, 3), m[k]] for t, m in self.metrics if k in m]
            out["metrics"] = {
                "url": self.metrics_url,
                "samples": len(self.metrics),
                "deltas": deltas,
                "series": series,
            }
        if self.pid is not None:
            proc: dict[str, Any] = {"pid": self.pid, "samples": len(self.process)}
            if self.process:
                t0 = self.process[0]["t"]
                for k in ("cpu_percent", "rss_bytes", "threads", "fds"):
                    proc[k] = {
                        "first": self.process[0][k],
                        "last": self.process[-1][k],
                        "max": max(r[k] for r in self.process),
                        "delta": self.process[-1][k] - self.process[0][k],
                        "series": [[round(r["t"] - t0, 3), r[k]] for r in self.process],
                    }
            out["process"] = proc
        return out
