"""Rebuild HTTP/1.1 wire bytes from the header lists that lossy formats (HAR, mitmproxy,
access logs) keep. Shared by those readers so that every one of them applies the same rules:

* HTTP/2 and HTTP/3 pseudo-headers (``:authority``, ``:path``...) are dropped; ``Host`` comes
  from ``:authority`` or the URL when the source had none.
* hop-by-hop framing is made honest: ``Transfer-Encoding`` is removed (bodies are stored
  de-chunked) and ``Content-Length`` is set to the body actually stored.
* bodies are re-encoded with the recorded ``Content-Encoding`` when the source only kept the
  decoded text, so that headers and bytes agree.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from http import HTTPStatus
from urllib.parse import quote

from ..model import Request, Response

__all__ = [
    "build_request",
    "build_response",
    "clean_text",
    "encode_body",
    "is_bodiless",
    "reason_phrase",
    "safe_target",
]

_NO_BODY_STATUS = frozenset({204, 304})


def clean_text(text: str) -> str:
    """``text`` without lone surrogates (JSON escapes and mitmproxy's surrogateescape produce
    them), so it can be written as UTF-8 anywhere (.gor metadata, JSON)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def is_bodiless(status: int, request_method: str = "GET") -> bool:
    """True when a response never carries a body on the wire (RFC 9112 section 6.3)."""
    return request_method.upper() == "HEAD" or status < 200 or status in _NO_BODY_STATUS


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def encode_body(body: bytes, encodings: list[str]) -> bytes | None:
    """Apply Content-Encoding ``encodings`` in order; ``None`` when one is unknown."""
    for enc in encodings:
        e = enc.strip().lower()
        if e in ("", "identity"):
            continue
        if e in ("gzip", "x-gzip"):
            body = gzip.compress(body, compresslevel=6, mtime=0)
        elif e == "deflate":
            body = zlib.compress(body)
        elif e == "br":
            import brotli

            body = brotli.compress(body)
        elif e == "zstd":
            import zstandard

            body = zstandard.ZstdCompressor().compress(body)
        else:
            return None
    return body


def _clean(value: str) -> str:
    # header values must stay on one line; latin-1 is the wire charset
    return value.replace("\r", " ").replace("\n", " ")


_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


def safe_target(target: str) -> str:
    """A request target fit for a request line: non-ASCII, spaces and controls
    percent-encoded (what a browser sends for the URL it shows)."""
    if target.isascii() and target.isprintable() and " " not in target:
        return target
    try:  # mitmproxy keeps undecodable bytes as surrogates: they were bytes on the wire
        return quote(target, safe=_TARGET_SAFE, encoding="utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return quote(clean_text(target), safe=_TARGET_SAFE)


def _name_ok(name: str) -> bool:
    return bool(name) and not any(ch in name for ch in ":\r\n\x00") and not name[0].isspace()


def _head(start: str, headers: Iterable[tuple[str, str]]) -> bytes:
    text = start + "\r\n" + "".join(f"{k}: {_clean(v)}\r\n" for k, v in headers) + "\r\n"
    return text.encode("latin-1", "replace")


def _framed(
    headers: Iterable[tuple[str, str]], body: bytes, *, keep_length: bool, needs_length: bool
) -> list[tuple[str, str]]:
    """Drop pseudo-headers and Transfer-Encoding; make Content-Length match ``body`` (in
    place, first one only) unless ``keep_length``; add it when missing and needed."""
    out: list[tuple[str, str]] = []
    have_length = False
    for k, v in headers:
        lk = k.lower()
        if not _name_ok(k) or lk == "transfer-encoding":
            continue  # pseudo-headers (":authority") and names that cannot be on the wire
        if lk == "content-length":
            if keep_length:
                out.append((k, v))
            elif not have_length:
                out.append((k, str(len(body))))
            have_length = True
            continue
        out.append((k, v))
    if not have_length and not keep_length and (body or needs_length):
        out.append(("Content-Length", str(len(body))))
    return out


def build_request(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    host: str | None,
    version: str = "HTTP/1.1",
    add_length: bool = True,
    ts_first_ns: int = 0,
    ts_last_ns: int = 0,
) -> Request:
    """An HTTP/1.x request; ``Host`` first when it has to be added. ``add_length=False``
    adds no ``Content-Length: 0`` to an empty POST/PUT/PATCH (headers known to be exact)."""
    hs = [(k, v) for k, v in headers]
    names = {k.lower() for k, _ in hs}
    authority = next((v for k, v in hs if k.lower() == ":authority"), None)
    if "host" not in names and (authority or host):
        hs.insert(0, ("Host", authority or host or ""))
    needs = add_length and method.upper() in ("POST", "PUT", "PATCH")
    hs = _framed(hs, body, keep_length=False, needs_length=needs)
    hb = _head(f"{method} {safe_target(target) or '/'} {version}", hs)
    return Request(hb + body, ts_first_ns=ts_first_ns, ts_last_ns=ts_last_ns, head_len=len(hb))


def build_response(
    status: int,
    reason: str | None,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    request_method: str = "GET",
    version: str = "HTTP/1.1",
    body_known: bool = True,
    ts_first_ns: int = 0,
    ts_last_ns: int = 0,
) -> Response:
    """An HTTP/1.x response. Responses that carry no body on the wire (HEAD, 1xx, 204, 304)
    keep their recorded ``Content-Length`` and get no body bytes; so do responses whose body
    the source did not keep (``body_known=False``)."""
    bodiless = is_bodiless(status, request_method)
    if bodiless or not body_known:
        body = b""
    keep = bodiless or not body_known
    hs = _framed(headers, body, keep_length=keep, needs_length=not keep)
    if reason is None or not reason.strip():
        reason = reason_phrase(status)
    hb = _head(f"{version} {status} {reason}".rstrip(), hs)
    return Response(hb + body, ts_first_ns=ts_first_ns, ts_last_ns=ts_last_ns, head_len=len(hb))
