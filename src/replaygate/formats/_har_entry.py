"""HAR import, one entry at a time: rebuild an HTTP/1.1 exchange (raw request and response
bytes, timings, our own ``_replaygate`` fields) from a HAR 1.2 entry. An entry that cannot be
read raises :class:`_BadEntry` with the reason; the document level is :mod:`._har_import`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from ..model import ConnectionId, Exchange, Flag, Request, Response, decode_content
from ..model import stable_exchange_id as _stable_id
from ..protocol import h2msg
from ._http1 import build_request, build_response, clean_text, encode_body, is_bodiless

__all__: list[str] = []

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _BadEntry(Exception):
    pass


def _obj(parent: Any, key: str) -> dict[str, Any]:
    v = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(v, dict):
        raise _BadEntry(f'"{key}" is missing or not an object')
    return v


def _str(d: dict[str, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    return v if isinstance(v, str) else default


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    # reject NaN and absurd values (durations are in ms: 1e10 ms is 115 days)
    return float(v) if v == v and abs(v) < 1e10 else None


def _headers(msg: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    raw = msg.get("headers")
    if not isinstance(raw, list):
        return out
    for h in raw:
        if isinstance(h, dict):
            k, v = h.get("name"), h.get("value")
        elif isinstance(h, list | tuple) and len(h) >= 2:
            k, v = h[0], h[1]
        else:
            continue
        if isinstance(k, str) and isinstance(v, str | int | float) and k.strip():
            out.append((clean_text(k.strip()), clean_text(str(v))))
    return out


def _version(v: str, meta: dict[str, str]) -> str:
    u = v.strip().upper()
    if u == "HTTP/1.0":
        return "HTTP/1.0"
    if u and u not in ("HTTP/1.1", "HTTP/1"):
        meta.setdefault("source_version", clean_text(_canon_version(u)))
    return "HTTP/1.1"


def _canon_version(u: str) -> str:
    if u in ("H2", "HTTP/2", "HTTP/2.0", "H2C"):
        return "HTTP/2"
    if u in ("H3", "HTTP/3", "HTTP/3.0") or u.startswith("H3-"):
        return "HTTP/3"
    return u


def _split_url(url: str) -> tuple[str, str, str]:
    """(scheme, authority, target) without a fragment, keeping the target as written."""
    url = url.split("#", 1)[0]
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url or "/"
    slash = len(rest)
    for ch in "/?":
        j = rest.find(ch)
        if 0 <= j < slash:
            slash = j
    authority = rest[:slash].rpartition("@")[2]
    target = rest[slash:]
    if not target.startswith("/"):
        target = "/" + target
    return scheme.lower(), authority, target


_FRACTION = re.compile(r"\.(\d+)")


def _parse_time(text: str) -> int:
    """ISO 8601 -> ns since the epoch, keeping all fraction digits (up to ns)."""
    t = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    m = _FRACTION.search(t)
    frac_ns = int((m.group(1) + "000000000")[:9]) if m else 0
    try:
        dt = datetime.fromisoformat(_FRACTION.sub("", t, count=1) if m else t)
    except ValueError:
        raise _BadEntry(f"bad startedDateTime ({len(text)} chars)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ns = ((dt - _EPOCH) // timedelta(seconds=1)) * 1_000_000_000 + frac_ns
    if not 0 <= ns < 1 << 62:
        raise _BadEntry(f"startedDateTime out of range ({len(text)} chars)")
    return ns


def _ms(v: float | None) -> int:
    return round(v * 1_000_000) if v is not None and v > 0 else 0


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        raise _BadEntry("content is not valid base64") from None


def _content_body(text: str, encoding: str | None) -> bytes:
    if encoding == "base64":
        return _b64(text)
    return text.encode("utf-8", "surrogatepass")


def _encoded(body: bytes, headers: list[tuple[str, str]], meta: dict[str, str], who: str) -> bytes:
    """Re-apply Content-Encoding to a decoded HAR body (unless it is already encoded)."""
    encs = [
        p.strip()
        for k, v in headers
        if k.lower() == "content-encoding"
        for p in v.split(",")
        if p.strip()
    ]
    if not encs or not body or all(e.lower() == "identity" for e in encs):
        return body
    try:
        decode_content(body, encs)
        return body  # the tool stored the encoded bytes already
    except Exception:
        pass
    out = encode_body(body, encs)
    if out is None:
        headers[:] = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
        meta[f"har.{who}_encoding_dropped"] = ",".join(encs)
        return body
    return out


def _entry_to_exchange(entry: Any, index: int, path: str) -> Exchange:
    if not isinstance(entry, dict):
        raise _BadEntry("not an object")
    req = _obj(entry, "request")
    resp = entry.get("response") if isinstance(entry.get("response"), dict) else {}
    assert isinstance(resp, dict)
    ours = entry.get("_replaygate") if isinstance(entry.get("_replaygate"), dict) else {}
    assert isinstance(ours, dict)
    method = _str(req, "method").strip()
    url = _str(req, "url").strip()
    if not method or not url or any(ch.isspace() for ch in method):
        raise _BadEntry("request has no usable method/url")
    meta: dict[str, str] = {}
    m = ours.get("meta")
    if isinstance(m, dict):
        meta.update({clean_text(str(k)): clean_text(str(v)) for k, v in m.items()})
    scheme, authority, target = _split_url(url)
    if ours.get("synthetic_url") is True:  # we invented scheme/host on export: not real
        scheme, authority = "", ""
    if scheme and "scheme" not in meta:
        meta["scheme"] = clean_text(scheme)
    started = _str(entry, "startedDateTime")
    ts = ours.get("ts_ns")
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts < 1 << 62:
        ts = None
    if ts is None:
        ts = _parse_time(started) if started else 0
    total = _ms(_num(entry, "time"))
    tm = entry.get("timings") if isinstance(entry.get("timings"), dict) else {}
    assert isinstance(tm, dict)
    before_send = sum(_ms(_num(tm, k)) for k in ("blocked", "dns", "connect"))
    send, wait = _ms(_num(tm, "send")), _ms(_num(tm, "wait"))
    req_last = ts + before_send + send if tm else ts
    h2 = bool(ours) and _str(req, "httpVersion") == h2msg.VERSION  # ours: exact, lossless
    version = h2msg.VERSION if h2 else _version(_str(req, "httpVersion"), meta)
    headers = _headers(req)
    names = {k.lower() for k, _ in headers}
    cookies = req.get("cookies")
    if "cookie" not in names and isinstance(cookies, list):
        pairs = [
            f"{ck['name']}={ck.get('value', '')}"
            for ck in cookies
            if isinstance(ck, dict) and isinstance(ck.get("name"), str)
        ]
        if pairs:
            headers.append(("Cookie", "; ".join(pairs)))
    body = b""
    post = req.get("postData")
    if isinstance(post, dict):
        if isinstance(post.get("text"), str):
            body = _content_body(post["text"], _str(post, "encoding") or None)
        elif isinstance(post.get("params"), list):
            params = [p for p in post["params"] if isinstance(p, dict)]
            body = _params_body(params, _str(post, "mimeType"), headers)
            if params:
                meta["har.request_body"] = "rebuilt_from_params"
        body = _encoded(body, headers, meta, "request")
    elif not ours and _declared_length(headers, req) > 0:
        # Chrome leaves out large or binary request bodies: say so, never replay it as empty
        meta["har.request_body"] = "omitted"
    if h2:
        request = _h2_request(method, target, headers, body, ours, ts, req_last)
    else:
        request = build_request(
            method,
            target,
            headers,
            body,
            host=authority or None,
            version=version,
            add_length=not ours,
            ts_first_ns=ts,
            ts_last_ns=req_last,
        )
    ex = Exchange(id=_exchange_id(ours, path, index, started, url), request=request, meta=meta)
    _restore_ours(ex, ours)
    if meta.get("har.request_body") == "omitted" and not ours:
        ex.flags.add(Flag.REQUEST_TRUNCATED)
    status = resp.get("status")
    if (
        isinstance(status, str)
        and status.strip().isascii()
        and status.strip().isdigit()
        and len(status) < 30
    ):
        status = int(status.strip())  # some exporters write "200"
    if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 999:
        status = 0
    if status == 0:
        if not ours:  # our own HAR restores the exact flags instead
            ex.flags.add(Flag.NO_RESPONSE)
        err = entry.get("_error") or resp.get("_error") or resp.get("statusText")
        if isinstance(err, str) and err:
            meta.setdefault("error", clean_text(err))
        return ex
    ex.response = _response(
        resp, status, method, meta, ts, req_last, wait, total, ours if h2 else None
    )
    if status == 101 and not ours:
        ex.flags.add(Flag.UPGRADE)  # what follows the handshake is not HTTP
    if meta.get("har.body") == "omitted" and not ours:
        ex.flags.add(Flag.RESPONSE_TRUNCATED)
    return ex


def _response(
    resp: dict[str, Any],
    status: int,
    method: str,
    meta: dict[str, str],
    ts: int,
    req_last: int,
    wait: int,
    total: int,
    h2: dict[str, Any] | None = None,
) -> Response:
    rversion = _version(_str(resp, "httpVersion"), {})
    headers = _headers(resp)
    content = resp.get("content") if isinstance(resp.get("content"), dict) else {}
    assert isinstance(content, dict)
    known = True
    body = b""
    if isinstance(content.get("text"), str) and meta.get("har.body") != "omitted":
        body = _content_body(content["text"], _str(content, "encoding") or None)
        body = _encoded(body, headers, meta, "response")
    elif not is_bodiless(status, method):
        size = _num(content, "size")
        if size is None or size > 0 or meta.get("har.body") == "omitted":
            known = False
            meta["har.body"] = "omitted"
    last = ts + total if total else req_last + wait
    first = min(req_last + wait, last) if wait else last
    if h2 is not None and _str(resp, "httpVersion") == h2msg.VERSION:
        try:
            return h2msg.build_response(
                [(":status", f"{status:03d}"), *headers],
                body,
                _trailer_list(h2, "response_trailers"),
                ts_first_ns=first,
                ts_last_ns=max(last, first),
            )
        except h2msg.FieldError as e:
            raise _BadEntry(f"HTTP/2 response: {e}") from None
    return build_response(
        status,
        _str(resp, "statusText") or None,
        headers,
        body,
        request_method=method,
        version=rversion,
        body_known=known,
        ts_first_ns=first,
        ts_last_ns=max(last, first),
    )


def _params_body(params: list[dict[str, Any]], mime: str, headers: list[tuple[str, str]]) -> bytes:
    """A body from ``postData.params``: multipart/form-data (boundary from the Content-Type
    header, else a new one written into it) or, for anything else, a urlencoded form."""
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "") or mime
    if not ctype.lower().startswith("multipart/"):
        return urlencode(
            [(str(p.get("name", "")), str(p.get("value", ""))) for p in params]
        ).encode()
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    boundary = m.group(1) if m else "replaygate-" + _stable_id(*(str(p) for p in params))[:24]
    if m is None:
        ctype = f"{ctype.split(';')[0]}; boundary={boundary}"
        headers[:] = [(k, v) for k, v in headers if k.lower() != "content-type"]
        headers.append(("Content-Type", ctype))
    out = []
    for p in params:
        disp = f'form-data; name="{p.get("name", "")}"'
        if isinstance(p.get("fileName"), str):
            disp += f'; filename="{p["fileName"]}"'
        part = f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
        if isinstance(p.get("contentType"), str) and p["contentType"]:
            part += f"Content-Type: {p['contentType']}\r\n"
        out.append(
            part.encode("utf-8", "replace")
            + b"\r\n"
            + str(p.get("value", "")).encode("utf-8", "replace")
            + b"\r\n"
        )
    return b"".join(out) + f"--{boundary}--\r\n".encode()


def _declared_length(headers: list[tuple[str, str]], req: dict[str, Any]) -> int:
    """The body size the entry claims (Content-Length, else bodySize), 0 when unknown."""
    for k, v in headers:
        if k.lower() == "content-length":
            v = v.strip()
            return int(v) if v.isascii() and v.isdigit() and len(v) <= 30 else 0
    size = _num(req, "bodySize")
    return int(size) if size is not None and size > 0 else 0


def _exchange_id(ours: dict[str, Any], path: str, index: int, started: str, url: str) -> str:
    v = ours.get("id")
    if isinstance(v, str) and v and not any(ch.isspace() for ch in v):
        return clean_text(v)
    return _stable_id(
        "har", clean_text(os.path.basename(path)), index, clean_text(started), clean_text(url)
    )


def _trailer_list(ours: dict[str, Any], key: str) -> list[tuple[str, str]] | None:
    v = ours.get(key)
    if not isinstance(v, list):
        return None
    return [
        (clean_text(p[0]), clean_text(p[1]))
        for p in v
        if isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
    ]


def _h2_request(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    ours: dict[str, Any],
    ts: int,
    last: int,
) -> Request:
    """Our own HTTP/2 entry, rebuilt exactly (see :mod:`replaygate.protocol.h2msg`)."""
    try:
        req, _ = h2msg.build_request(
            [(":method", method), (":path", target), *headers],
            body,
            _trailer_list(ours, "request_trailers"),
            ts_first_ns=ts,
            ts_last_ns=last,
        )
    except h2msg.FieldError as e:
        raise _BadEntry(f"HTTP/2 request: {e}") from None
    return req


def _restore_ours(ex: Exchange, ours: dict[str, Any]) -> None:
    conn = ours.get("conn")
    if isinstance(conn, str):
        try:
            ex.conn = ConnectionId.parse(conn)
        except ValueError:
            pass
    if isinstance(ours.get("session"), str):
        ex.session = clean_text(ours["session"])
    if isinstance(ours.get("seq"), int) and not isinstance(ours["seq"], bool):
        ex.seq = ours["seq"]
    flags = ours.get("flags")
    if isinstance(flags, list):
        for f in flags:
            try:
                ex.flags.add(Flag(f))
            except ValueError:
                pass
