"""Body plumbing for masking: JSON paths, content types, compression, forms and multipart.

Nothing here knows about rules or pseudonyms; :mod:`._mask_engine` drives it.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Sequence
from urllib.parse import unquote_plus

from ..jsonpath import JsonPath, PathPart

__all__ = [
    "BINARY_TYPES",
    "JsonPath",
    "PathPart",
    "body_kind",
    "body_kind_by_type",
    "chunk_trailers",
    "encode_content",
    "looks_like_text",
    "map_multipart",
    "map_pair",
    "map_urlencoded",
]


def path_text(path: Sequence[PathPart]) -> str:
    """``["users", 3, "email"]`` -> ``$.users[*].email`` (indexes collapsed for counting)."""
    out = "$"
    for p in path:
        if isinstance(p, int):
            out += "[*]"
        else:  # keys can be data (e-mail -> object maps): only identifier-like keys shown
            out += f".{p}" if _KEY.fullmatch(p) and not p.isdigit() else ".*"
    return out


_KEY = re.compile(r"[A-Za-z_$][\w$-]{0,63}")


# -- content types ------------------------------------------------------------------------

#: content-type prefixes whose bodies are not scanned by default (``[mask] binary_types``)
BINARY_TYPES: tuple[str, ...] = (
    "image/",
    "audio/",
    "video/",
    "font/",
    "application/octet-stream",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-protobuf",
    "application/protobuf",
    "application/grpc",
    "application/wasm",
    "application/x-tar",
)


def body_kind(content_type: str, body: bytes, skip: Sequence[str]) -> str:
    """``json`` | ``form`` | ``multipart`` | ``text`` | ``binary``, by type then by sniffing."""
    kind = body_kind_by_type(content_type, skip)
    if kind:
        return kind
    ct = content_type.split(";", 1)[0].strip().lower()
    head = body[:1024]
    if b"\x00" in head:
        return "binary"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the 1 KiB boundary
            return "binary"
    first = body.lstrip()[:1]
    if first in (b"{", b"[") and (not ct or ct.startswith("text/plain")):
        return "json"
    return "text"


def body_kind_by_type(content_type: str, skip: Sequence[str]) -> str:
    """The kind :func:`body_kind` gives whatever the body, or "" when it looks at the body."""
    ct = content_type.split(";", 1)[0].strip().lower()
    if ct and ct.startswith(tuple(skip)):
        return "binary"
    if ct == "application/x-www-form-urlencoded":
        return "form"
    if ct.startswith("multipart/"):
        return "multipart"
    if "json" in ct:
        return "json"
    return ""


def encode_content(body: bytes, encodings: Sequence[str]) -> bytes:
    """Re-apply Content-Encoding (inverse of :func:`replaygate.model.decode_content`)."""
    for enc in [e.strip().lower() for e in encodings if e.strip()]:
        if enc in ("gzip", "x-gzip"):
            body = gzip.compress(body, mtime=0)
        elif enc == "deflate":
            body = zlib.compress(body)
        elif enc == "br":
            import brotli

            body = brotli.compress(body)
        elif enc == "zstd":
            import zstandard

            body = zstandard.ZstdCompressor().compress(body)
        elif enc in ("identity", ""):
            continue
        else:
            raise ValueError(f"unknown content-encoding {enc!r}")
    return body


# -- urlencoded and multipart ---------------------------------------------------------------

#: (name, value) -> new value, or None to drop the pair; returns the same object when unchanged
PairFn = Callable[[str, str], str | None]


def map_urlencoded(
    text: str,
    fn: PairFn,
    quote_fn: Callable[[str], str],
    name_fn: Callable[[str], str | None] | None = None,
) -> str | None:
    """Apply ``fn`` to each decoded ``name=value`` of a query string or form body, and
    ``name_fn`` (new name or None when unchanged) to each name: a bare ``?<token>`` or an
    e-mail used as a key is data too.

    Unchanged pairs keep their exact bytes; returns None when nothing changed.
    """
    changed = False
    out: list[str] = []
    for pair in text.split("&"):
        new = map_pair(pair, fn, quote_fn, name_fn) if pair else pair
        if new is None:
            changed = True
            continue
        if new is not pair:
            changed = True
        out.append(new)
    return "&".join(out) if changed else None


def map_pair(
    pair: str,
    fn: PairFn,
    quote_fn: Callable[[str], str],
    name_fn: Callable[[str], str | None] | None = None,
) -> str | None:
    """One non-empty ``name=value`` of :func:`map_urlencoded`: its new text, ``pair``
    itself (the same object) when unchanged, None to drop it."""
    k, _sep, v = pair.partition("=")
    name = unquote_plus(k) if "%" in k or "+" in k else k
    value = unquote_plus(v) if "%" in v or "+" in v else v
    new = fn(name, value)
    if new is None:
        return None
    new_name = name_fn(name) if name_fn is not None and name else None
    if new_name is not None:
        k = quote_fn(new_name)
    if (new is value or new == value) and new_name is None:
        return pair
    if new is value or new == value:
        return k + _sep + v
    return k + "=" + quote_fn(new)


_DISP_NAME = re.compile(rb'(?i)\bname\s*=\s*(?:"([^"]*)"|([^;\s]+))')
_DISP_FILE = re.compile(rb"(?i)\bfilename\*?\s*=")
_PART_CT = re.compile(rb"(?im)^content-type:\s*([^\r\n]+)")

#: (field name, part content type, has filename, content) -> new content or None to drop
PartFn = Callable[[str, str, bool, bytes], bytes | None]


#: unparsed bytes (preamble, epilogue, a malformed part) -> new bytes or None when unchanged
RestFn = Callable[[bytes], bytes | None]


def map_multipart(body: bytes, boundary: str, fn: PartFn, rest: RestFn) -> bytes | None:
    """Apply ``fn`` to the content of each part; delimiters and part headers kept exactly.

    Nothing is skipped: whatever is not a well-formed part (the preamble, the epilogue after
    the closing delimiter, a part without a blank line after its headers, a body whose
    boundary does not occur at all) goes to ``rest``, which scans it as text. A body cut
    short (no closing delimiter) has its parts masked like any other.
    """
    delim = b"--" + boundary.encode("latin-1")
    pieces = body.split(delim)
    changed = False
    first = rest(pieces[0]) if pieces[0] else None
    out = [pieces[0] if first is None else first]
    changed = first is not None
    for piece in pieces[1:]:
        if piece.startswith(b"--") or (b"\n\n" not in piece and b"\r\n\r\n" not in piece):
            tail = piece[2:] if piece.startswith(b"--") else piece
            new_tail = rest(tail) if tail.strip() else None
            if new_tail is not None:
                changed = True
                piece = piece[: len(piece) - len(tail)] + new_tail
            out.append(piece)  # closing delimiter + epilogue / malformed part
            continue
        sep = b"\r\n\r\n" if b"\r\n\r\n" in piece else b"\n\n"
        head, _, content = piece.partition(sep)
        trail = b""
        if content.endswith(b"\r\n"):
            content, trail = content[:-2], b"\r\n"
        elif content.endswith(b"\n"):
            content, trail = content[:-1], b"\n"
        m = _DISP_NAME.search(head)
        name = (m.group(1) or m.group(2) or b"").decode("utf-8", "replace") if m else ""
        ctm = _PART_CT.search(head)
        ct = ctm.group(1).decode("latin-1").strip() if ctm else ""
        new = fn(name, ct, bool(_DISP_FILE.search(head)), content)
        if new is None:
            changed = True
            continue
        if new is not content and new != content:
            changed = True
            piece = head + sep + new + trail
        out.append(piece)
    return delim.join(out) if changed else None


def looks_like_text(body: bytes) -> bool:
    """A body labelled binary that is really text (UTF-8, no control bytes but whitespace):
    ``application/octet-stream`` is often JSON or a log; such bodies are scanned."""
    if not body or b"\x00" in body:
        return False
    try:
        t = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return t.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in t)


def chunk_trailers(body_raw: bytes) -> tuple[int, bytes] | None:
    """Where the trailer section of a chunked body starts and its bytes (header lines, the
    final empty line excluded); None when the body ends without trailers or is cut short."""
    pos, n = 0, len(body_raw)
    while pos < n:
        eol = body_raw.find(b"\n", pos)
        if eol < 0:
            return None
        try:
            size = int(body_raw[pos:eol].split(b";", 1)[0].strip(), 16)
        except ValueError:
            return None
        pos = eol + 1
        if size == 0:
            tr = body_raw[pos:]
            return (pos, tr) if tr.strip(b"\r\n") else None
        pos += size
        if body_raw[pos : pos + 2] == b"\r\n":
            pos += 2
        elif body_raw[pos : pos + 1] == b"\n":
            pos += 1
    return None
