"""A small, realistic JSON API on the stdlib ``ThreadingHTTPServer``: users, orders, search,
a gzip'd static page. Every JSON response carries volatile fields (a request id and a
timestamp, plus ``X-Request-Id`` and ``Date`` headers), as real services do.

``Variant.CANDIDATE`` plants the regressions the demo must find, and nothing else:

* ``GET /api/users/{id}``: the ``status`` field changed (``"active"`` -> ``"ACTIVE"``);
* ``GET /api/search``: slower (``search_delay_s``, default 0.25 s);
* ``GET /api/orders/{uuid}``: a new 500 on an edge case (orders with a coupon);
* harmless volatile fields: its request ids have another format (``req-<hex>``) and it adds
  an ``X-Trace-Id`` header.
"""

from __future__ import annotations

import enum
import gzip
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["DemoApp", "Variant", "order_id", "users"]

PAGE = b"""<!DOCTYPE html>
<html><head><title>Shop</title><link rel="stylesheet" href="/static/app.css"></head>
<body><h1>Demo shop</h1><p>Welcome. Browse <a href="/api/search?q=lamp">lamps</a>.</p></body></html>
"""
CSS = b"body { font-family: sans-serif; } h1 { color: #333; }\n"
_NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy"]
_PRODUCTS = ["lamp", "desk", "chair", "mug", "pen", "notebook", "shelf", "rug", "clock", "vase"]


class Variant(enum.StrEnum):
    PRODUCTION = "production"
    CANDIDATE = "candidate"


def users() -> list[int]:
    return list(range(1, 41))


def order_id(n: int) -> str:
    """Deterministic order ids (UUIDs), so production and candidate agree on data."""
    return str(uuid.UUID(hashlib.md5(f"order-{n}".encode(), usedforsecurity=False).hexdigest()))


_ORDERS = {order_id(n): n for n in range(1, 121)}


def _order(n: int) -> dict[str, Any]:
    items = [
        {
            "sku": f"SKU-{(n * 7 + k) % 50:03d}",
            "product": _PRODUCTS[(n + k) % 10],
            "qty": 1 + (n + k) % 3,
            "price": round(5 + ((n * 13 + k * 7) % 90) + 0.99, 2),
        }
        for k in range(1 + n % 4)
    ]
    total = round(sum(i["price"] * i["qty"] for i in items), 2)  # type: ignore[operator]
    o: dict[str, Any] = {
        "id": order_id(n),
        "user_id": 1 + n % 40,
        "items": items,
        "total": total,
        "currency": "EUR",
    }
    if n % 8 == 0:
        o["coupon"] = {"code": f"SAVE{n % 30}", "percent": 10}
    return o


class DemoApp:
    """One running copy of the demo app on 127.0.0.1 (``port``); ``close()`` stops it."""

    def __init__(
        self, variant: Variant = Variant.PRODUCTION, *, search_delay_s: float = 0.25
    ) -> None:
        self.variant = variant
        self.search_delay_s = search_delay_s
        app = self

        class Handler(_Handler):
            demo = app

        self.metrics_lock = threading.Lock()
        self.requests_total: dict[tuple[str, int], int] = {}
        self.seconds_total = 0.0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name=f"demo-{variant}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def __enter__(self) -> DemoApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API -----------------------------------------------------------------------
    def request_id(self) -> str:
        if self.variant is Variant.CANDIDATE:
            return "req-" + uuid.uuid4().hex[:16]
        return str(uuid.uuid4())

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        cand = self.variant is Variant.CANDIDATE
        parts = [p for p in path.split("/") if p]
        if (
            method == "GET"
            and parts[:2] == ["api", "users"]
            and len(parts) == 3
            and parts[2].isdigit()
        ):
            uid = int(parts[2])
            if uid not in users():
                return 404, {"error": "no such user"}
            return 200, {
                "id": uid,
                "name": _NAMES[uid % 10] + f" {uid}",
                "email": f"user{uid}@example.com",
                "status": ("ACTIVE" if cand else "active")
                if uid % 5
                else ("SUSPENDED" if cand else "suspended"),
                "plan": ["free", "pro", "team"][uid % 3],
            }
        if (
            method == "GET"
            and parts[:2] == ["api", "users"]
            and len(parts) == 4
            and parts[3] == "orders"
        ):
            uid = int(parts[2]) if parts[2].isdigit() else -1
            mine = [oid for oid, n in _ORDERS.items() if 1 + n % 40 == uid]
            return 200, {"user_id": uid, "orders": mine}
        if method == "GET" and parts[:2] == ["api", "orders"] and len(parts) == 3:
            n = _ORDERS.get(parts[2])
            if n is None:
                return 404, {"error": "no such order"}
            o = _order(n)
            if cand and "coupon" in o:
                return 500, {"error": "internal error", "detail": "TypeError: unsupported operand"}
            return 200, o
        if method == "POST" and parts == ["api", "orders"]:
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                return 400, {"error": "invalid JSON"}
            if not isinstance(req, dict) or not isinstance(req.get("items"), list):
                return 422, {"error": "items required"}
            return 201, {
                "id": str(uuid.uuid4()),
                "status": "created",
                "items": len(req["items"]),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                + f".{time.time_ns() % 1_000_000:06d}Z",
            }
        if method == "GET" and parts == ["api", "search"]:
            q = (query.get("q") or [""])[0].lower()
            if cand:
                time.sleep(self.search_delay_s)
            hits = [p for p in _PRODUCTS if q and q in p]
            return 200, {
                "q": q,
                "results": [
                    {"product": p, "score": round(1 / (1 + i), 3)} for i, p in enumerate(hits)
                ],
                "total": len(hits),
            }
        if method == "GET" and parts == ["health"]:
            return 200, {"ok": True}
        return 404, {"error": "not found"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-shop/1.0"
    wbufsize = 1 << 16  # one send per response: no Nagle/delayed-ACK 40 ms stalls
    demo: DemoApp

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(
        self, status: int, body: bytes, ctype: str, extra: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _metrics(self) -> None:
        d = self.demo
        with d.metrics_lock:
            rows = sorted(d.requests_total.items())
            secs = d.seconds_total
        lines = ["# TYPE demo_requests_total counter"]
        lines += [f'demo_requests_total{{method="{m}",code="{c}"}} {n}' for (m, c), n in rows]
        lines += [
            "# TYPE demo_request_seconds_total counter",
            f"demo_request_seconds_total {secs:.6f}",
        ]
        self._send(200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4")

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        if self.path != "/metrics":
            d = self.demo
            with d.metrics_lock:
                k = (self.command, code)
                d.requests_total[k] = d.requests_total.get(k, 0) + 1
                d.seconds_total += time.monotonic() - getattr(self, "_t0", time.monotonic())

    def _dispatch(self) -> None:
        self._t0 = time.monotonic()
        u = urlsplit(self.path)
        if u.path == "/metrics":
            self._metrics()
            return
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        rid = self.demo.request_id()
        if u.path in ("/", "/index.html"):
            page, extra = PAGE, [("Cache-Control", "max-age=60")]
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                page = gzip.compress(PAGE, mtime=0)
                extra.append(("Content-Encoding", "gzip"))
            self._send(200, page, "text/html; charset=utf-8", [*extra, ("X-Request-Id", rid)])
            return
        if u.path == "/static/app.css":
            self._send(
                200,
                CSS,
                "text/css",
                [("ETag", '"' + hashlib.md5(CSS, usedforsecurity=False).hexdigest() + '"')],
            )
            return
        status, doc = self.demo.handle(self.command, u.path, parse_qs(u.query), body)
        if isinstance(doc, dict) and status < 500:
            doc["meta"] = {"request_id": rid, "served_at": round(time.time(), 6)}
        out = json.dumps(doc).encode()
        extra = [("X-Request-Id", rid)]
        if self.demo.variant is Variant.CANDIDATE:  # harmless: a new tracing header
            extra.append(("X-Trace-Id", uuid.uuid4().hex))
        self._send(status, out, "application/json", extra)

    do_GET = _dispatch
    do_POST = _dispatch
    do_HEAD = _dispatch
