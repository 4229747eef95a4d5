"""How an HTTP/2 stream is an :class:`~replaygate.model.Exchange`.

Every stage, format and comparison works on HTTP/1-style raw bytes, so an HTTP/2 message is
written as HTTP/1-style text whose version is ``HTTP/2``:

* request line ``<:method> <:path> HTTP/2`` (``CONNECT`` has no ``:path``: its target is the
  ``:authority``); ``:authority`` becomes a ``host`` field first in the head;
  ``:scheme`` goes to ``meta["scheme"]`` (the key every reader uses) and an extended
  CONNECT's ``:protocol`` to ``meta["h2.protocol"]``;
* status line ``HTTP/2 <:status>`` (HTTP/2 has no reason phrase);
* the regular fields follow in wire order, as sent (lower case);
* the body is the DATA as sent, unframed, unless the message has **trailers**: then it is
  written chunked (one chunk, then the trailer fields) and the head ends with a
  ``transfer-encoding: chunked`` field that the HTTP/2 message did not carry. HTTP/2 forbids
  ``Transfer-Encoding``, so this last field is always ours and :func:`fields` leaves it out;
  HTTP/1 readers see an ordinary chunked message with trailers.

The stream id travels in ``meta["h2.stream"]``, the TCP connection in ``Exchange.conn``.
:func:`request_fields` / :func:`response_fields` give back the HTTP/2 field lists (pseudo
fields first): ``build_request(*request_fields(r)) == r`` for every message built here, which
the property tests check.

The ``HTTP/2`` version in the first line is also the marker for GoReplay: its readers accept
only ``HTTP/1.x`` lines, so they skip these records instead of replaying them as HTTP/1.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ..model import HTTPMessage, Request, Response

__all__ = [
    "VERSION",
    "FieldError",
    "build_request",
    "build_response",
    "fields",
    "is_http2",
    "request_fields",
    "response_fields",
    "trailers",
]

VERSION = "HTTP/2"
_TE = ("transfer-encoding", "chunked")

Fields = Sequence[tuple[str, str]]


class FieldError(ValueError):
    """A field that HTTP/1-style text cannot carry (CR, LF or NUL, a bad name)."""


def is_http2(msg: HTTPMessage) -> bool:
    return msg.version == VERSION


_BAD_NAME = re.compile(r"[\r\n\x00 \t:]").search
_BAD_VALUE = re.compile(r"[\r\n\x00]").search


def _check(name: str, value: str) -> None:
    if not name or _BAD_NAME(name):
        raise FieldError(f"bad field name ({len(name)} chars)")
    if _BAD_VALUE(value):
        raise FieldError(f"field {name!r} has CR, LF or NUL in its value")


def _head(start: str, regular: Iterable[tuple[str, str]], chunked: bool) -> bytes:
    parts = [start, "\r\n"]
    for k, v in regular:
        _check(k, v)
        parts += (k, ": ", v, "\r\n")
    if chunked:
        parts.append("transfer-encoding: chunked\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("latin-1")


def _body(body: bytes, trailer: Fields | None) -> bytes:
    if trailer is None:
        return body
    out = [f"{len(body):x}\r\n".encode(), body, b"\r\n"] if body else []
    out.append(b"0\r\n")
    for k, v in trailer:
        _check(k, v)
        if k.startswith(":"):
            raise FieldError("pseudo-field in trailers")
        out.append(f"{k}: {v}\r\n".encode("latin-1"))
    out.append(b"\r\n")
    return b"".join(out)


def build_request(
    fields: Fields,
    body: bytes = b"",
    trailer: Fields | None = None,
    *,
    ts_first_ns: int = 0,
    ts_last_ns: int = 0,
) -> tuple[Request, dict[str, str]]:
    """The request for an HTTP/2 field list (pseudo fields included) and the metadata that
    the request line cannot hold (``scheme``, ``h2.protocol``). ``trailer`` None: no
    trailers (an empty list is an empty trailer section, which is kept as such)."""
    pseudo: dict[str, str] = {}
    regular: list[tuple[str, str]] = []
    for k, v in fields:
        if k.startswith(":"):
            if k not in (":method", ":path", ":authority", ":scheme", ":protocol"):
                raise FieldError(f"unknown request pseudo-field {k!r}")
            if k in pseudo:
                raise FieldError(f"duplicate {k}")
            if _BAD_VALUE(v) or " " in v:
                raise FieldError(f"{k} has a space, CR, LF or NUL")
            pseudo[k] = v
        else:
            regular.append((k, v))
    method = pseudo.get(":method", "")
    if not method:
        raise FieldError("request without :method")
    target = pseudo.get(":path") or (pseudo.get(":authority", "") if method == "CONNECT" else "")
    if not target:
        raise FieldError("request without :path")
    if ":authority" in pseudo:
        regular.insert(0, ("host", pseudo[":authority"]))
    meta: dict[str, str] = {}
    if ":scheme" in pseudo:
        meta["scheme"] = pseudo[":scheme"]
    if ":protocol" in pseudo:
        meta["h2.protocol"] = pseudo[":protocol"]
    hb = _head(f"{method} {target} {VERSION}", regular, trailer is not None)
    req = Request(
        hb + _body(body, trailer), ts_first_ns=ts_first_ns, ts_last_ns=ts_last_ns, head_len=len(hb)
    )
    return req, meta


def build_response(
    fields: Fields,
    body: bytes = b"",
    trailer: Fields | None = None,
    *,
    ts_first_ns: int = 0,
    ts_last_ns: int = 0,
) -> Response:
    """The response for an HTTP/2 field list (``:status`` first) and its trailers."""
    status = ""
    regular: list[tuple[str, str]] = []
    for k, v in fields:
        if k.startswith(":"):
            if k != ":status" or status:
                raise FieldError(f"unexpected response pseudo-field {k!r}")
            status = v
        else:
            regular.append((k, v))
    if not (len(status) == 3 and status.isascii() and status.isdigit()):
        raise FieldError("response without a valid :status")
    hb = _head(f"{VERSION} {status}", regular, trailer is not None)
    return Response(
        hb + _body(body, trailer), ts_first_ns=ts_first_ns, ts_last_ns=ts_last_ns, head_len=len(hb)
    )


def _chunked_by_us(msg: HTTPMessage) -> bool:
    h = msg.headers
    return bool(h) and h[-1][0].lower() == _TE[0] and h[-1][1].lower() == _TE[1]


def fields(msg: HTTPMessage) -> list[tuple[str, str]]:
    """The regular fields of an HTTP/2 message as sent (our ``transfer-encoding`` left out)."""
    h = msg.headers
    return list(h[:-1]) if _chunked_by_us(msg) else list(h)


def trailers(msg: HTTPMessage) -> list[tuple[str, str]] | None:
    """The trailer fields of a chunked message (HTTP/1.1 or HTTP/2); None without any."""
    if not msg.is_chunked:
        return None
    raw = bytes(msg.body_raw)
    pos = 0
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(raw[pos:eol].split(b";", 1)[0].strip() or b"x", 16)
        except ValueError:
            return None
        pos = eol + 2
        if size == 0:
            break
        pos += size + 2
    out: list[tuple[str, str]] = []
    for line in raw[pos:].decode("latin-1").split("\r\n"):
        if not line:
            break
        k, _, v = line.partition(":")
        out.append((k.strip(), v.strip(" \t")))
    return out


def request_fields(
    req: Request, meta: dict[str, str] | None = None
) -> tuple[list[tuple[str, str]], bytes, list[tuple[str, str]] | None]:
    """(fields with pseudo fields first, body, trailers) of a request built here."""
    meta = meta or {}
    regular = fields(req)
    out = [(":method", req.method)]
    if "scheme" in meta:
        out.append((":scheme", meta["scheme"]))
    if regular and regular[0][0] == "host":
        out.append((":authority", regular[0][1]))
        regular = regular[1:]
    if req.method != "CONNECT" or req.target != dict(out).get(":authority"):
        out.append((":path", req.target))
    if "h2.protocol" in meta:
        out.append((":protocol", meta["h2.protocol"]))
    return out + regular, req.body(), trailers(req)


def response_fields(
    resp: Response,
) -> tuple[list[tuple[str, str]], bytes, list[tuple[str, str]] | None]:
    """(fields with ``:status`` first, body, trailers) of a response built here."""
    return [(":status", f"{resp.status:03d}"), *fields(resp)], resp.body(), trailers(resp)
