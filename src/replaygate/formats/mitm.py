"""mitmproxy flow files (``.mitm``, ``.flows``) read through mitmproxy's own reader.

mitmproxy is an optional extra (``pip install 'replaygate[mitm]'``) imported only when such a
file is opened. Flows keep parsed messages, not wire bytes, so replaygate rebuilds HTTP/1.1
bytes (see :mod:`replaygate.formats._http1`) from the header list and the *raw* (still
content-encoded) body: HTTP/2 and HTTP/3 flows become HTTP/1.1 requests (the original version
is in ``meta["source_version"]``), pseudo-headers are dropped, ``Host`` comes from the
authority, ``Content-Length`` matches the body. A flow with an error or without a response
gets :data:`Flag.NO_RESPONSE` (the error text goes to ``meta["error"]``). Non-HTTP flows (TCP,
UDP, DNS) are counted in ``counters.dropped["mitm_not_http"]``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from ..errors import FormatError, InputError
from ..model import ConnectionId, Exchange, Flag, stable_exchange_id
from . import ReadOptions
from ._http1 import build_request, build_response, clean_text

__all__ = ["read"]

INSTALL_HINT = "reading .mitm files needs mitmproxy: pip install 'replaygate[mitm]'"


def _import() -> Any:
    try:
        from mitmproxy import io as mio
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return mio


def read(path: str, options: ReadOptions) -> Iterator[Exchange]:
    mio = _import()
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the generator
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    return _flows(mio, f, path, options)


def _ns(ts: float | None) -> int:
    return round(ts * 1e6) * 1000 if ts else 0


def _text(b: bytes | str) -> str:
    return b.decode("latin-1") if isinstance(b, bytes) else clean_text(b)


def _version(v: str, meta: dict[str, str]) -> str:
    u = v.upper()
    if u in ("HTTP/1.0", "HTTP/1.1"):
        return u
    if u:
        meta.setdefault("source_version", "HTTP/2" if u.startswith("HTTP/2") else clean_text(u))
    return "HTTP/1.1"


def _addr(a: Any) -> tuple[str, int] | None:
    if isinstance(a, tuple | list) and len(a) >= 2 and a[0] and isinstance(a[1], int):
        return clean_text(str(a[0])), int(a[1])
    return None


def _flows(mio: Any, f: Any, path: str, options: ReadOptions) -> Iterator[Exchange]:
    from mitmproxy import exceptions, http

    c = options.counters
    with f:
        stream = mio.FlowReader(f).stream()
        i = 0
        while True:
            try:
                flow = next(stream)
            except StopIteration:
                return
            except exceptions.FlowReadException as e:
                if i == 0:
                    raise FormatError(f"not a mitmproxy flow file: {_safe(e)}", path=path) from None
                c.dropped["truncated_record"] += 1
                c.notes[f"{path}: unreadable after flow {i}: {_safe(e)}"] += 1
                return
            except Exception as e:  # mitmproxy's loader trusts its input: any error = damage
                what = f"{type(e).__name__}: {_safe(e)}"[:200]
                raise FormatError(
                    f"damaged mitmproxy flow file (after flow {i}): {what}", path=path
                ) from None
            i += 1
            if not isinstance(flow, http.HTTPFlow):
                c.dropped["mitm_not_http"] += 1
                continue
            yield _exchange(flow, path, i)


def _exchange(flow: Any, path: str, index: int) -> Exchange:
    rq = flow.request
    meta: dict[str, str] = {"scheme": clean_text(str(rq.scheme))}
    version = _version(str(rq.http_version), meta)
    headers = [(_text(k), _text(v)) for k, v in rq.headers.fields]
    body = rq.raw_content or b""
    if rq.raw_content is None:  # streamed through (stream_large_bodies): not recorded
        meta["mitm.request_body"] = "omitted"
    authority = rq.host_header or rq.authority or rq.pretty_host
    if rq.port not in (80, 443) and ":" not in authority:
        authority = f"{authority}:{rq.port}"
    target = rq.path if rq.method.upper() != "CONNECT" else (rq.authority or authority)
    req = build_request(
        rq.method,
        target or "/",
        headers,
        body,
        host=authority,
        version=version,
        ts_first_ns=_ns(rq.timestamp_start),
        ts_last_ns=_ns(rq.timestamp_end),
    )
    ex = Exchange(
        id=clean_text(flow.id) if isinstance(flow.id, str) and " " not in flow.id else "",
        request=req,
        meta=meta,
    )
    if not ex.id:
        ex.id = stable_exchange_id("mitm", os.path.basename(path), index)
    client = _addr(flow.client_conn.peername)
    server = _addr(flow.server_conn.peername) or _addr(flow.server_conn.address)
    if client and server:
        ex.conn = ConnectionId(client[0], client[1], server[0], server[1])
    if flow.server_conn.address:
        a = _addr(flow.server_conn.address)
        if a:
            meta["server"] = clean_text(f"{a[0]}:{a[1]}")
    if flow.error is not None:
        meta["error"] = clean_text(str(flow.error.msg))
    if rq.raw_content is None:
        ex.flags.add(Flag.REQUEST_TRUNCATED)
    rs = flow.response
    if rs is None:
        ex.flags.add(Flag.NO_RESPONSE)
        return ex
    rmeta: dict[str, str] = {}
    ex.response = build_response(
        rs.status_code,
        _text(rs.reason) if rs.reason else None,
        [(_text(k), _text(v)) for k, v in rs.headers.fields],
        rs.raw_content or b"",
        request_method=rq.method,
        version=_version(str(rs.http_version), rmeta),
        body_known=rs.raw_content is not None,
        ts_first_ns=_ns(rs.timestamp_start),
        ts_last_ns=_ns(rs.timestamp_end),
    )
    if rs.raw_content is None:
        ex.flags.add(Flag.RESPONSE_TRUNCATED)
    if rs.status_code == 101:
        ex.flags.add(Flag.UPGRADE)  # a WebSocket: its messages are not HTTP exchanges
    return ex


_QUOTED = re.compile(r"b?'(?:[^'\\]|\\.)*'" + r'|b?"(?:[^"\\]|\\.)*"')


def _safe(e: BaseException) -> str:
    """An error text without the flow bytes mitmproxy's loader quotes in it (a damaged flow
    can hold a request's secrets): every quoted literal becomes its length."""
    return _QUOTED.sub(lambda m: f"<{len(m.group())} chars>", str(e))
