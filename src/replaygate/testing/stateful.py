"""A small stateful JSON service and the users that drive it, for replay-order tests.

``StatefulApp`` is what breaks a naive replay: accounts created by one request and used by
later ones (Basic credentials), a session cookie issued at login, items whose ids the server
makes up (random, so a replay must learn them from staging's answers), reads and deletes of
those items, and a server that closes the connection after every few answers so each user's
traffic spans several TCP connections. ``drive_users`` runs interleaved users against it (one
thread each, keep-alive connections that reconnect when the server closes).

Every status a user sees depends only on the order of that user's own requests, so a replay
to a fresh copy that respects the recording's order gives exactly the original statuses.

    with StatefulApp() as app:
        drive_users(app.url, users=6, items=4)
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["StatefulApp", "drive_users", "record_through_proxy", "status_differences"]


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accounts: dict[str, dict[str, str]] = {}  # name -> {id, password}
        self.sessions: dict[str, str] = {}  # cookie value -> account name
        self.items: dict[str, dict[str, Any]] = {}  # item id -> {owner, text}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    # -- plumbing ------------------------------------------------------------------------
    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return None

    def _send(self, status: int, doc: Any = None, headers: dict[str, str] | None = None) -> None:
        body = b"" if doc is None else json.dumps(doc).encode()
        answered = getattr(self, "_answered", 0) + 1
        self._answered = answered
        close = answered % self.server.close_every == 0
        self.send_response(status)
        if doc is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if close:  # the client must reconnect: one user, several connections
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _user(self) -> str | None:
        st = self.server.state
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            acct = st.accounts.get(name)
            return name if acct is not None and acct["password"] == pw else None
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "sid":
                return st.sessions.get(v)
        return None

    # -- routes --------------------------------------------------------------------------
    def do_POST(self) -> None:
        st = self.server.state
        doc = self._body()
        with st.lock:
            if self.path == "/accounts":
                if not isinstance(doc, dict) or not doc.get("name") or not doc.get("password"):
                    return self._send(400, {"error": "name and password required"})
                if doc["name"] in st.accounts:
                    return self._send(409, {"error": "exists"})
                aid = secrets.token_hex(8)
                st.accounts[doc["name"]] = {"id": aid, "password": doc["password"]}
                return self._send(201, {"id": aid, "name": doc["name"]})
            user = self._user()
            if user is None:
                return self._send(401, {"error": "who are you?"})
            if self.path == "/login":
                sid = secrets.token_urlsafe(24)
                st.sessions[sid] = user
                return self._send(200, {"ok": True}, {"Set-Cookie": f"sid={sid}; Path=/"})
            if self.path == "/items":
                iid = secrets.token_hex(8)
                st.items[iid] = {"owner": user, "text": (doc or {}).get("text", "")}
                return self._send(201, {"id": iid}, {"Location": f"/items/{iid}"})
        self._send(404, {"error": "no route"})

    def do_GET(self) -> None:
        st = self.server.state
        with st.lock:
            user = self._user()
            if user is None:
                return self._send(401, {"error": "who are you?"})
            if self.path == "/me":
                return self._send(200, {"name": user, "id": st.accounts[user]["id"]})
            if self.path == "/items":
                mine = sorted(k for k, v in st.items.items() if v["owner"] == user)
                return self._send(200, {"count": len(mine)})
            if self.path.startswith("/items/"):
                it = st.items.get(self.path[7:])
                if it is None:
                    return self._send(404, {"error": "no such item"})
                if it["owner"] != user:
                    return self._send(403, {"error": "not yours"})
                return self._send(200, {"text": it["text"]})
        self._send(404, {"error": "no route"})

    def do_PUT(self) -> None:
        st = self.server.state
        doc = self._body()
        with st.lock:
            user = self._user()
            if user is None:
                return self._send(401, {"error": "who are you?"})
            it = st.items.get(self.path[7:]) if self.path.startswith("/items/") else None
            if it is None:
                return self._send(404, {"error": "no such item"})
            if it["owner"] != user:
                return self._send(403, {"error": "not yours"})
            it["text"] = (doc or {}).get("text", "")
            return self._send(200, {"text": it["text"]})

    def do_DELETE(self) -> None:
        st = self.server.state
        with st.lock:
            user = self._user()
            if user is None:
                return self._send(401, {"error": "who are you?"})
            iid = self.path[7:] if self.path.startswith("/items/") else ""
            it = st.items.get(iid)
            if it is None:
                return self._send(404, {"error": "no such item"})
            if it["owner"] != user:
                return self._send(403, {"error": "not yours"})
            del st.items[iid]
            return self._send(204)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State
    close_every: int


class StatefulApp:
    """The service on 127.0.0.1 (a free port), fresh state on each start."""

    def __init__(self, close_every: int = 3) -> None:
        self.close_every = close_every
        self._srv: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._srv is not None
        return f"http://127.0.0.1:{self._srv.server_address[1]}"

    def start(self) -> StatefulApp:
        srv = _Server(("127.0.0.1", 0), _Handler)
        srv.state = _State()
        srv.close_every = self.close_every
        self._srv = srv
        self._thread = threading.Thread(target=srv.serve_forever, name="stateful-app", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> StatefulApp:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _user_flow(url: str, name: str, items: int, out: list[int]) -> None:
    """One user: create the account, use it, log in, create/read/update/delete items."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=30)
    cookie = ""
    basic = "Basic " + base64.b64encode(f"{name}:pw-{name}".encode()).decode()

    def call(method: str, path: str, doc: Any = None, auth: str = "") -> tuple[int, Any, str]:
        nonlocal cookie
        body = json.dumps(doc).encode() if doc is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if auth == "basic":
            headers["Authorization"] = basic
        elif auth == "cookie" and cookie:
            headers["Cookie"] = cookie
        for attempt in (0, 1):
            try:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                break
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                if attempt:
                    raise
        set_cookie = r.getheader("Set-Cookie")
        if set_cookie:
            cookie = set_cookie.split(";", 1)[0]
        out.append(r.status)
        return r.status, (json.loads(data) if data else None), r.getheader("Location") or ""

    try:
        call("POST", "/accounts", {"name": name, "password": f"pw-{name}"})
        call("GET", "/me", auth="basic")
        call("POST", "/login", auth="basic")
        ids = []
        for i in range(items):
            _, doc, _ = call("POST", "/items", {"text": f"{name}-{i}"}, auth="cookie")
            ids.append(doc["id"])
            call("GET", f"/items/{doc['id']}", auth="cookie")
        for i, iid in enumerate(ids):
            if i % 2:
                call("PUT", f"/items/{iid}", {"text": "changed"}, auth="basic")
            else:
                call("DELETE", f"/items/{iid}", auth="cookie")
            call("GET", f"/items/{iid}", auth="cookie")  # 200 or 404: depends on the order
        call("GET", "/items", auth="cookie")
        call("GET", "/me", auth="cookie")
    finally:
        conn.close()


def drive_users(url: str, users: int = 6, items: int = 4, prefix: str = "user") -> list[int]:
    """Run ``users`` interleaved users against ``url``; the statuses they saw."""
    outs: list[list[int]] = [[] for _ in range(users)]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            _user_flow(url, f"{prefix}{i}", items, outs[i])
        except BaseException as e:  # reported to the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return [s for o in outs for s in o]


def record_through_proxy(
    upstream: str, output: str, drive: Callable[[str], object], extra: Sequence[str] = ()
) -> str:
    """Run ``replaygate proxy`` (a real process) in front of ``upstream`` writing ``output``,
    call ``drive(proxy_url)``, stop the proxy with SIGTERM; its stderr summary."""
    from .servers import free_port, wait_for_port

    port = free_port()
    p = subprocess.Popen(
        [
            *(sys.executable, "-m", "replaygate", "proxy", "--listen", f"127.0.0.1:{port}"),
            *("--upstream", upstream, "-o", output, *extra),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        drive(f"http://127.0.0.1:{port}")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"replaygate proxy exited {p.returncode}: {err.strip()}")
    return err


def status_differences(path: str) -> list[str]:
    """Replayed exchanges in ``path`` (a replay ``--output``) whose status differs from the
    recorded one, or that failed: one line each (empty = a perfect replay)."""
    from ..formats import open_reader

    out = []
    for ex in open_reader(path):
        orig = ex.response.status if ex.response is not None else None
        got = ex.replayed.status if ex.replayed is not None else ex.replay_error
        if orig != got:
            out.append(f"{ex.request.method} {ex.request.target}: {orig} -> {got}")
    return out
