"""HAR export: a streaming HAR 1.2 writer (see :mod:`.har`)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from urllib.parse import parse_qsl

import orjson

from .._version import __version__
from ..errors import InputError
from ..model import Exchange, HTTPMessage
from ..protocol import h2msg
from . import WriteOptions
from ._limits import writing

__all__ = ["Writer", "exchange_to_entry"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(ts_ns: int) -> str:
    try:
        dt = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    except OverflowError:
        dt = _EPOCH
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}Z"


def _hlist(headers: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers]


def _content(body: bytes, mime: str) -> dict[str, Any]:
    c: dict[str, Any] = {"size": len(body), "mimeType": mime}
    if not body:
        c["text"] = ""
        return c
    try:
        c["text"] = body.decode("utf-8")
    except UnicodeDecodeError:
        c["text"] = base64.b64encode(body).decode("ascii")
        c["encoding"] = "base64"
    return c


def _url(ex: Exchange) -> str:
    req = ex.request
    t = req.target
    if "://" in t[:10]:
        return t
    scheme = ex.meta.get("scheme")
    if scheme is None:
        scheme = "https" if ex.conn is not None and ex.conn.dport == 443 else "http"
    host = req.host
    if not host:
        if ex.conn is not None:
            dst = f"[{ex.conn.dst}]" if ":" in ex.conn.dst else ex.conn.dst
            host = f"{dst}:{ex.conn.dport}"
        else:
            host = "localhost"
    if not t.startswith("/"):
        t = "/" + t if t != "*" else "/*"
    return f"{scheme}://{host}{t}"


def _ms_between(a: int, b: int) -> float:
    return round(max(0, b - a) / 1e6, 6) if a and b else 0.0


def exchange_to_entry(ex: Exchange) -> dict[str, Any]:
    """One HAR 1.2 entry for ``ex`` (text bodies as text, binary as base64)."""
    req = ex.request
    rbody = req.decoded_body()
    request: dict[str, Any] = {
        "method": req.method,
        "url": _url(ex),
        "httpVersion": req.version,
        "cookies": _cookies(req.header("cookie")),
        "headers": _hlist(_fields(req)),
        "queryString": [
            {"name": k, "value": v} for k, v in parse_qsl(req.query, keep_blank_values=True)
        ],
        "headersSize": req.head_len,
        "bodySize": len(req.body_raw),
    }
    if rbody or req.method.upper() in ("POST", "PUT", "PATCH"):
        pc = _content(rbody, req.header("content-type") or "")
        post: dict[str, Any] = {"mimeType": pc["mimeType"], "text": pc["text"]}
        if "encoding" in pc:
            post["encoding"] = "base64"
        request["postData"] = post
    resp = ex.response
    send = _ms_between(req.ts_first_ns, req.ts_last_ns)
    wait = receive = 0.0
    if resp is None:
        response: dict[str, Any] = {
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        }
    else:
        body = resp.decoded_body()
        response = {
            "status": resp.status,
            "statusText": resp.reason,
            "httpVersion": resp.version,
            "cookies": [],
            "headers": _hlist(_fields(resp)),
            "content": _content(body, resp.header("content-type") or ""),
        }
        if ex.meta.get("har.body") == "omitted":  # not recorded: say so again, not ""
            del response["content"]["text"]
        response |= {
            "redirectURL": resp.header("location") or "",
            "headersSize": resp.head_len,
            "bodySize": len(resp.body_raw),
        }
        wait = _ms_between(req.ts_last_ns or req.ts_first_ns, resp.ts_first_ns)
        receive = _ms_between(resp.ts_first_ns, resp.ts_last_ns)
    ours: dict[str, Any] = {"id": ex.id, "ts_ns": ex.ts_ns}
    if "://" not in req.target[:10] and (not req.host or "scheme" not in ex.meta):
        ours["synthetic_url"] = True
    if ex.flags:
        ours["flags"] = sorted(str(f) for f in ex.flags)
    if ex.conn is not None:
        ours["conn"] = str(ex.conn)
    if ex.session is not None:
        ours["session"] = ex.session
    if ex.seq:
        ours["seq"] = ex.seq
    if ex.meta:
        ours["meta"] = dict(ex.meta)
    _h2_trailers(ex, ours)
    entry: dict[str, Any] = {
        "startedDateTime": _iso(ex.ts_ns),
        "time": round(send + wait + receive, 6),
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": send, "wait": wait, "receive": receive},
        "_replaygate": ours,
    }
    if ex.conn is not None:
        entry["serverIPAddress"] = ex.conn.dst
    if ex.replay_error:
        entry["_error"] = ex.replay_error
    return entry


def _fields(msg: HTTPMessage) -> list[tuple[str, str]]:
    """Headers as sent: an HTTP/2 message without the chunked framing we gave its trailers."""
    return h2msg.fields(msg) if h2msg.is_http2(msg) else msg.headers


def _h2_trailers(ex: Exchange, ours: dict[str, Any]) -> None:
    """HTTP/2 trailers (gRPC status, ...) ride in ``_replaygate``: HAR has no place for them."""
    for key, msg in (("request", ex.request), ("response", ex.response)):
        if msg is not None and h2msg.is_http2(msg):
            tr = h2msg.trailers(msg)
            if tr is not None:
                ours[f"{key}_trailers"] = [[k, v] for k, v in tr]


def _cookies(header: str | None) -> list[dict[str, str]]:
    if not header:
        return []
    out = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out.append({"name": name, "value": value})
    return out


_HEAD = (
    '{"log":{"version":"1.2","creator":{"name":"replaygate","version":"'
    + __version__
    + '"},"pages":[],"entries":[\n'
)


class Writer:
    """Streaming HAR writer: the document head is written at open, each entry as it comes
    (one per line), and the JSON is closed by :meth:`close`."""

    def __init__(self, path: str, options: WriteOptions | None = None) -> None:
        self.path = path
        try:
            self._f: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror}", path=path) from None
        with writing(path):
            self._f.write(_HEAD.encode())
        self._n = 0
        self._closed = False

    def write(self, ex: Exchange) -> None:
        data = orjson.dumps(exchange_to_entry(ex))
        with writing(self.path):
            self._f.write(b",\n" + data if self._n else data)
        self._n += 1

    def flush(self) -> None:
        with writing(self.path):
            self._f.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with writing(self.path):
                self._f.write(b"\n]}}\n")
        finally:
            with writing(self.path):
                self._f.close()

    @property
    def entries(self) -> int:
        return self._n
