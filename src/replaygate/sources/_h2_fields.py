"""Sans-I/O pieces of the HTTP/2 proxy: what a connection's first bytes are, and how a field
list crosses between HTTP/2 and HTTP/1.1 (RFC 9113 §8.2.2, §8.3.1; RFC 7540 §3.2).

Rules written here because they matter on both paths:

* **Connection-specific fields** (``connection``, ``keep-alive``, ``proxy-connection``,
  ``transfer-encoding``, ``upgrade`` and any field ``connection`` names) never cross: HTTP/2
  forbids them and HTTP/1.1 framing is re-made by whoever writes the message. ``te`` crosses
  only as ``trailers`` (the one value HTTP/2 allows).
* **Pseudo-fields** become the request line and ``host`` on HTTP/1.1 (``:authority`` wins
  over a ``host`` field, as §8.3.1 says) and come back from them; ``cookie`` fields split by
  HTTP/2 compression are joined with ``"; "`` for HTTP/1.1 (§8.2.3).
* The connection's first bytes decide the protocol (:func:`sniff`): the HTTP/2 preface
  (prior knowledge), an HTTP/1.1 request asking ``Upgrade: h2c`` (with ``HTTP2-Settings`` and
  both named in ``Connection``, a body of at most ``MAX_UPGRADE_BODY`` bytes; else it is an
  ordinary request), anything else HTTP/1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..protocol.http2 import PREFACE

__all__ = [
    "HOP_BY_HOP",
    "MAX_UPGRADE_BODY",
    "Sniffed",
    "h1_request_head",
    "h2_request_fields",
    "h2_response_fields",
    "is_grpc",
    "sniff",
]

Fields = Sequence[tuple[str, str]]

# An Upgrade: h2c request is read whole (its body too) before the 101; larger bodies (or
# chunked ones) are not upgraded: RFC 7540 §3.2 lets a server ignore the upgrade
MAX_UPGRADE_BODY = 1 << 20

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)


class Sniffed:
    """What the first bytes of a cleartext connection are."""

    NEED_MORE = "need-more"
    H2 = "h2"  # the client preface: HTTP/2 by prior knowledge
    UPGRADE = "upgrade"  # an HTTP/1.1 request with Upgrade: h2c
    HTTP1 = "http1"


def _tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",") if t.strip()}


def sniff(buf: bytes, max_head: int) -> str:
    """Decide (or ask for more bytes): never more than ``max_head`` bytes are waited for."""
    n = min(len(buf), len(PREFACE))
    if buf[:n] == PREFACE[:n]:
        return Sniffed.H2 if len(buf) >= len(PREFACE) else Sniffed.NEED_MORE
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        # waiting for the head only makes sense for something that may be a request asking
        # to upgrade; a lone LF head or a huge one goes to the HTTP/1 path (which judges it)
        if len(buf) > max_head or b"\n\n" in buf:
            return Sniffed.HTTP1
        return Sniffed.NEED_MORE
    head = buf[:end]
    if b"h2c" not in head.lower():
        return Sniffed.HTTP1
    lines = head.split(b"\r\n")
    if not lines[0].endswith(b" HTTP/1.1"):
        return Sniffed.HTTP1
    upgrade: set[str] = set()
    connection: set[str] = set()
    settings = 0
    body = 0
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            return Sniffed.HTTP1  # obs-fold or garbage: not ours to judge
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if key == "upgrade":
            upgrade |= _tokens(text)
        elif key == "connection":
            connection |= _tokens(text)
        elif key == "http2-settings":
            settings += 1
        elif key == "content-length":
            body = int(text.strip()) if text.strip().isdigit() else MAX_UPGRADE_BODY + 1
        elif key == "transfer-encoding":
            body = MAX_UPGRADE_BODY + 1
    if body > MAX_UPGRADE_BODY:
        return Sniffed.HTTP1  # the whole body is read before the 101: not for large ones
    if "h2c" in upgrade and settings == 1 and {"upgrade", "http2-settings"} <= connection:
        return Sniffed.UPGRADE
    return Sniffed.HTTP1


def _regular(fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Fields without pseudo-fields and connection-specific ones (those ``connection``
    names included); ``te`` only as ``trailers``."""
    items = list(fields)
    named: set[str] = set()
    for k, v in items:
        if k.lower() == "connection":
            named |= _tokens(v)
    out = []
    for k, v in items:
        low = k.lower()
        if low.startswith(":") or low in HOP_BY_HOP or low in named:
            continue
        if low == "te":
            if "trailers" not in _tokens(v):
                continue
            v = "trailers"
        out.append((low, v))
    return out


def h1_request_head(fields: Fields) -> tuple[str, str, list[tuple[str, str]]]:
    """(method, target, headers) of the HTTP/1.1 request for an HTTP/2 request's fields:
    ``host`` first (from ``:authority``), cookies joined, connection fields dropped. The
    caller adds the framing (``content-length`` or ``transfer-encoding``)."""
    pseudo = {k: v for k, v in fields if k.startswith(":")}
    method = pseudo.get(":method", "GET")
    target = pseudo.get(":path") or (pseudo.get(":authority", "/") if method == "CONNECT" else "/")
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    host = pseudo.get(":authority")
    for k, v in _regular(fields):
        if k == "host":
            host = host or v
        elif k == "cookie":
            cookies.append(v)
        else:
            headers.append((k, v))
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    return method, target, [("host", host or ""), *headers]


def h2_request_fields(
    method: str, target: str, headers: Fields, scheme: str = "http"
) -> list[tuple[str, str]]:
    """The HTTP/2 fields of an HTTP/1.1 request (the one an ``Upgrade: h2c`` carried)."""
    host = ""
    rest = []
    for k, v in _regular(headers):
        if k == "host":
            host = host or v
        elif k != "http2-settings":
            rest.append((k, v))
    out = [(":method", method), (":scheme", scheme)]
    if host:
        out.append((":authority", host))
    out.append((":path", target))
    return out + rest


def h2_response_fields(status: int, headers: Fields) -> list[tuple[str, str]]:
    """The HTTP/2 fields of an HTTP/1.1 response head (the reason phrase has no place)."""
    return [(":status", str(status)), *_regular(headers)]


def is_grpc(fields: Fields) -> bool:
    """A gRPC call (``content-type: application/grpc`` or ``application/grpc+proto``...)."""
    for k, v in fields:
        if k == "content-type":
            return v.lower().startswith("application/grpc")
    return False
