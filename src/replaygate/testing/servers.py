"""Real servers on loopback for tests and benchmarks: free ports and an nginx we start.

``NginxServer`` writes its own config into a temporary directory and runs the system's
``nginx`` binary (Debian ``nginx-light``) in the foreground on 127.0.0.1, so tests and
benchmarks talk to a real server. Extra ``location`` blocks can be passed in.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["NginxServer", "free_port", "is_root", "nginx_binary", "wait_for_port"]

_DEFAULT_LOCATIONS = """
        location = / { return 200 "ok"; }
        location = /json { default_type application/json;
            return 200 '{"id": 1, "name": "demo", "tags": ["a", "b"]}'; }
        location = /status/404 { return 404 "not found"; }
        location = /status/500 { return 500 "boom"; }
        location = /status/204 { return 204; }
        location = /status/304 { return 304; }
        location /static/ { alias %(root)s/static/; }
        location / { return 200 "ok"; }
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on ``host:port`` (or raise TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port}") from None
            time.sleep(0.02)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def nginx_binary() -> str | None:
    """Path of the nginx binary, or None when it is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


class NginxServer:
    """``with NginxServer() as ng: ng.url`` -> a running nginx on 127.0.0.1:<free port>.

    ``locations`` replaces the default ``location`` blocks; ``%(root)s`` in it is the
    server's temporary directory (``static/`` under it is served at ``/static/``).
    ``keepalive_requests`` is set high so benchmarks are not cut by nginx's default of 1000.
    ``http_extra`` goes into the ``http`` block (e.g. an ``upstream`` for ``proxy_pass``).
    """

    def __init__(
        self,
        locations: str | None = None,
        *,
        workers: int = 1,
        port: int | None = None,
        access_log: bool = False,
        http_extra: str = "",
    ) -> None:
        self.port = port or free_port()
        self._http_extra = http_extra
        self.host = "127.0.0.1"
        self._locations = locations if locations is not None else _DEFAULT_LOCATIONS
        self._workers = workers
        self._access_log = access_log
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.root = Path()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> NginxServer:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        self._tmp = tempfile.TemporaryDirectory(prefix="rg-nginx-")
        self.root = Path(self._tmp.name)
        (self.root / "static").mkdir()
        (self.root / "static" / "hello.txt").write_text("hello\n")
        user = "user root;" if is_root() else ""
        log = f"access_log {self.root}/access.log;" if self._access_log else "access_log off;"
        conf = f"""
{user}
worker_processes {self._workers};
daemon off;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    {log}
    client_body_temp_path {self.root}/body;
    proxy_temp_path {self.root}/proxy;
    fastcgi_temp_path {self.root}/fastcgi;
    uwsgi_temp_path {self.root}/uwsgi;
    scgi_temp_path {self.root}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_max_body_size 0;
    default_type text/plain;
    {self._http_extra}
    server {{
        listen {self.host}:{self.port} reuseport backlog=4096;
        {self._locations % {"root": str(self.root)}}
    }}
}}
"""
        (self.root / "nginx.conf").write_text(conf)
        self._proc = subprocess.Popen(
            [binary, "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError:
            self.stop()
            err = (
                (self.root / "error.log").read_text() if (self.root / "error.log").exists() else ""
            )
            raise RuntimeError(f"nginx did not start: {err.strip()[-500:]}") from None
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
