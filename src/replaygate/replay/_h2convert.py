"""The request bytes the engine prepared (HTTP/1-style text) as an HTTP/2 request.

The engine prepares every request as text (Host replaced, path prefix added, Content-Length
corrected: :func:`~replaygate.replay.client.prepare_request`), whether it was recorded over
HTTP/1.x or HTTP/2 (:mod:`replaygate.protocol.h2msg` writes HTTP/2 messages as such text).
This module turns that text into what an HTTP/2 client sends, sans I/O:

* pseudo fields first: ``:method``, ``:scheme`` (the target's), ``:authority`` (the first
  ``Host`` field, else the target's), ``:path`` (an absolute-form target is split into
  authority and path; ``CONNECT`` has no ``:scheme``/``:path``);
* the other fields in their order, names lower-cased, values stripped of surrounding blanks;
  the connection-specific ones HTTP/2 forbids (``Connection``, ``Keep-Alive``,
  ``Proxy-Connection``, ``Transfer-Encoding``, ``Upgrade``, ``HTTP2-Settings``, a ``TE``
  other than ``trailers``) are left out, as RFC 9113 section 8.2.2 asks of an intermediary;
* a chunked body is de-chunked, its trailer fields become HTTP/2 trailers (gRPC requests
  recorded over HTTP/2 carry theirs this way); other bodies are sent as they are.
"""

from __future__ import annotations

__all__ = ["H2Request", "to_h2"]

Fields = list[tuple[bytes, bytes]]
H2Request = tuple[Fields, bytes, Fields | None]  # fields, body, trailers (None: none)

_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"http2-settings",
    )
)


def _lines(head: bytes) -> list[bytes]:
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")]


def _dechunk(body: bytes) -> tuple[bytes, Fields]:
    """The data of a chunked body and its trailer fields (a cut body gives what is there)."""
    out: list[bytes] = []
    pos = 0
    n = len(body)
    while pos < n:
        eol = body.find(b"\n", pos)
        if eol < 0:
            break
        try:
            size = int(body[pos:eol].split(b";", 1)[0].strip() or b"x", 16)
        except ValueError:
            break
        pos = eol + 1
        if size == 0:
            return b"".join(out), _fields(_lines(body[pos:]))
        out.append(body[pos : pos + size])
        pos += size
        if body[pos : pos + 2] == b"\r\n":
            pos += 2
        elif body[pos : pos + 1] == b"\n":
            pos += 1
    return b"".join(out), []


def _fields(lines: list[bytes]) -> Fields:
    out: Fields = []
    for ln in lines:
        if not ln:
            break
        name, sep, value = ln.partition(b":")
        name = name.strip().lower()
        if not sep or not name:
            continue
        value = value.strip(b" \t")
        if name in _HOP or (name == b"te" and value.lower() != b"trailers"):
            continue
        out.append((name, value))
    return out


def to_h2(raw: bytes, scheme: bytes, authority: bytes) -> H2Request:
    """The HTTP/2 request for the prepared request ``raw``. ``authority`` is used when the
    request has no Host field (HTTP/1.0) nor an absolute-form target."""
    i = raw.find(b"\r\n\r\n")
    j = raw.find(b"\n\n", 0, i + 2 if i >= 0 else len(raw))
    if j >= 0:
        head_end, body_start = j, j + 2
    elif i >= 0:
        head_end, body_start = i, i + 4
    else:
        head_end = body_start = len(raw)
    lines = _lines(raw[:head_end])
    parts = lines[0].split(b" ")
    method = parts[0]
    target = parts[1] if len(parts) > 1 else b"/"
    regular = _fields(lines[1:])
    chunked = False
    for ln in lines[1:]:
        name, _, value = ln.partition(b":")
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    host: bytes | None = None
    kept: Fields = []
    for k, v in regular:
        if k == b"host" and host is None:
            host = v
        elif k != b"host":
            kept.append((k, v))
    low = target[:8].lower()
    if low.startswith((b"http://", b"https://")):
        rest = target[target.find(b"://") + 3 :]
        cut = min((x for x in (rest.find(b"/"), rest.find(b"?")) if x >= 0), default=len(rest))
        if host is None:
            host = rest[:cut]
        target = rest[cut:] or b"/"
        if not target.startswith(b"/"):
            target = b"/" + target
    body = raw[body_start:]
    trailers: Fields | None = None
    if chunked:
        body, tr = _dechunk(body)
        trailers = tr or None
    if method == b"CONNECT":
        fields: Fields = [(b":method", method), (b":authority", host or target)]
    else:
        fields = [
            (b":method", method),
            (b":scheme", scheme),
            (b":authority", host or authority),
            (b":path", target),
        ]
    return fields + kept, body, trailers
