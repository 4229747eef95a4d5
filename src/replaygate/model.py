"""The one message model that crosses every stage: :class:`Exchange`.

An exchange is a request, the original response (when it was seen), and later the replayed
response. Each message keeps its *exact raw bytes* as they were on the wire (header order,
case, duplicates, chunked framing) and offers parsed views computed lazily from them, so that
nothing is lost by parsing and nothing is parsed that nobody reads.

Rule: ``raw`` is the source of truth. Every view is derived from it; changing a message means
building a new one from new raw bytes (see :meth:`HTTPMessage.with_head` and
:meth:`HTTPMessage.with_body`), which keeps Content-Length and framing honest.
"""

from __future__ import annotations

import enum
import hashlib
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._bodies import dechunk, decode_content

__all__ = [
    "INCOMPLETE_FLAGS",
    "ConnectionId",
    "Counters",
    "Exchange",
    "Flag",
    "HTTPMessage",
    "Request",
    "Response",
    "dechunk",
    "decode_content",
    "new_exchange_id",
    "stable_exchange_id",
]

CRLF = b"\r\n"


class Flag(enum.StrEnum):
    """Why an exchange is not perfect. Carried with the exchange and written to files."""

    NO_RESPONSE = "no_response"  # request seen, response never seen
    REQUEST_GAP = "request_gap"  # bytes missing (TCP gap) inside the request
    RESPONSE_GAP = "response_gap"  # bytes missing inside the response
    REQUEST_TRUNCATED = "request_truncated"  # stream ended inside the request
    RESPONSE_TRUNCATED = "response_truncated"  # stream ended inside the response
    MIDSTREAM = "midstream"  # connection was joined after it started
    DESYNC = "desync"  # parser lost framing and resynchronised
    PARSE_ERROR = "parse_error"  # message could not be parsed; raw bytes kept
    UPGRADE = "upgrade"  # 101 Switching Protocols; rest of the stream not parsed
    CONNECT = "connect"  # CONNECT tunnel; rest of the stream not parsed
    HTTP09 = "http09"  # HTTP/0.9 request or reply
    CLOSE_DELIMITED = "close_delimited"  # response body ended by connection close
    ORPHAN_RESPONSE = "orphan_response"  # a response with no request (missing request)
    MODIFIED = "modified"  # a stage changed the request (rewrite, mask, middleware)
    MASKED = "masked"  # masking changed something
    INJECTED = "injected"  # created by middleware, not captured
    REPLAY_TRUNCATED = "replay_truncated"  # replayed response cut at --max-response-size
    MALFORMED_REQUEST_LINE = "malformed_request_line"  # odd method, no target, glued version


# The flags that say an exchange's bytes are not whole: it cannot be judged as if it were.
INCOMPLETE_FLAGS = frozenset(
    {
        Flag.REQUEST_GAP,
        Flag.RESPONSE_GAP,
        Flag.REQUEST_TRUNCATED,
        Flag.RESPONSE_TRUNCATED,
        Flag.PARSE_ERROR,
        Flag.ORPHAN_RESPONSE,
    }
)
_NOT_COMPLETE = INCOMPLETE_FLAGS | {Flag.NO_RESPONSE}


@dataclass(frozen=True, slots=True)
class ConnectionId:
    """The TCP connection an exchange travelled on (client side first)."""

    src: str
    sport: int
    dst: str
    dport: int

    def __str__(self) -> str:
        return f"{_host(self.src)}:{self.sport}->{_host(self.dst)}:{self.dport}"

    @classmethod
    def parse(cls, text: str) -> ConnectionId:
        """Inverse of ``str()``; raises ValueError on malformed text."""
        left, right = text.split("->", 1)
        src, sport = _split_hostport(left)
        dst, dport = _split_hostport(right)
        return cls(src, sport, dst, dport)


@dataclass
class Counters:
    """What a run saw and what it did not pass on, by reason. Printed at exit, exported."""

    read: int = 0
    written: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    # inputs found cut short (file, offset): everything before was read; the commands report
    # them after writing what was readable and exit 2 (see formats.raise_cuts)
    cuts: list[tuple[str, int | None, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "written": self.written,
            "dropped": dict(self.dropped),
            "notes": dict(self.notes),
        }


def _host(h: str) -> str:
    return f"[{h}]" if ":" in h else h


def _split_hostport(s: str) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f"bad address {s!r}")
    return host, int(port)


def new_exchange_id() -> str:
    """A fresh random id in GoReplay's format (40 hex characters)."""
    return _ids.getrandbits(160).to_bytes(20, "big").hex()  # = f"{...:040x}", twice as fast


# Ids are drawn from a generator of our own, seeded from os.urandom (and again in a forked
# child): no system call per exchange (the proxy makes one id per request), and a user's
# random.seed() does not make them repeat.
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


def stable_exchange_id(*parts: object) -> str:
    """A deterministic id: the same capture always yields the same ids."""
    h = hashlib.sha1(usedforsecurity=False)
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x00")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Body decoding helpers
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


class HTTPMessage:
    """Raw bytes of one HTTP/1.x message plus lazily parsed views.

    ``head_len`` is the length of the start line + headers + blank line; 0 means the message
    has no head at all (an HTTP/0.9 reply). When ``None`` it is found by scanning ``raw``.
    """

    __slots__ = (
        "_headers",
        "_start",
        "head_len",
        "raw",
        "ts_first_ns",
        "ts_last_ns",
    )

    def __init__(
        self,
        raw: bytes,
        *,
        ts_first_ns: int = 0,
        ts_last_ns: int = 0,
        head_len: int | None = None,
    ) -> None:
        self.raw = raw
        self.ts_first_ns = ts_first_ns
        self.ts_last_ns = ts_last_ns or ts_first_ns
        if head_len is None:
            head_len = _find_head_end(raw)
        self.head_len = head_len
        self._start: list[str] | None = None
        self._headers: list[tuple[str, str]] | None = None

    # -- parsing -------------------------------------------------------------------------
    def _parse_head(self) -> None:
        head = self.raw[: self.head_len].decode("latin-1")
        lines = head.split("\n")
        start = lines[0].rstrip("\r") if lines else ""
        self._start = start.split(" ", 2) if start else []
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            line = line.rstrip("\r")
            if not line:
                continue
            if line[0] in " \t" and headers:  # obsolete line folding
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            if sep:
                headers.append((name.strip(), value.strip(" \t")))
        self._headers = headers

    @property
    def start_line(self) -> list[str]:
        """The start line split on spaces, at most three parts."""
        if self._start is None:
            self._parse_head()
        assert self._start is not None
        return self._start

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Headers in wire order with their original case, duplicates kept (latin-1 text)."""
        if self._headers is None:
            self._parse_head()
        assert self._headers is not None
        return self._headers

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of header ``name`` (case-insensitive)."""
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    def header_values(self, name: str) -> list[str]:
        """Every value of ``name``, comma-separated lists split, in order."""
        lname = name.lower()
        out: list[str] = []
        for k, v in self.headers:
            if k.lower() == lname:
                out.extend(p.strip() for p in v.split(",") if p.strip())
        return out

    @property
    def version(self) -> str:
        raise NotImplementedError

    # -- bodies --------------------------------------------------------------------------
    @property
    def body_raw(self) -> memoryview:
        """The body as on the wire (chunk framing included), without a copy."""
        return memoryview(self.raw)[self.head_len :]

    @property
    def is_chunked(self) -> bool:
        te = self.header_values("transfer-encoding")
        return bool(te) and te[-1].lower() == "chunked"

    def body(self) -> bytes:
        """The body with transfer framing removed (still content-encoded)."""
        if self.is_chunked:
            return dechunk(self.body_raw)[0]
        return bytes(self.body_raw)

    def decoded_body(self) -> bytes:
        """The body with framing and Content-Encoding removed.

        Falls back to the framed-only body when decoding fails (flagged by the caller).
        """
        b = self.body()
        enc = self.header_values("content-encoding")
        if not enc or not b:
            return b
        try:
            return decode_content(b, enc)
        except Exception:
            return b

    # -- building new messages -----------------------------------------------------------
    def with_head(self, start_line: str, headers: Iterable[tuple[str, str]]) -> HTTPMessage:
        """A copy with a new head and the same body bytes."""
        head = start_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        hb = head.encode("latin-1")
        return type(self)(
            hb + bytes(self.body_raw),
            ts_first_ns=self.ts_first_ns,
            ts_last_ns=self.ts_last_ns,
            head_len=len(hb),
        )

    def with_body(self, body: bytes) -> HTTPMessage:
        """A copy with ``body`` (unframed) and framing headers fixed: Content-Length set,
        Transfer-Encoding: chunked removed."""
        headers = self._framed(self.headers, body)
        start = " ".join(self.start_line)
        head = start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        hb = head.encode("latin-1")
        return type(self)(
            hb + body, ts_first_ns=self.ts_first_ns, ts_last_ns=self.ts_last_ns, head_len=len(hb)
        )

    def with_fields(
        self,
        start_line: list[str],
        headers: list[tuple[str, str]],
        body: bytes | None = None,
    ) -> HTTPMessage:
        """``with_head(" ".join(start_line), headers)`` and then, when ``body`` is given,
        ``with_body(body)``, in one step, for fields that read back as given: start-line
        parts without spaces (but the last), names without a colon or white space at their
        ends, values without LF or white space at their ends. The copy keeps them as its
        parsed head instead of parsing the bytes again."""
        if body is not None:
            headers = self._framed(headers, body)
        start = " ".join(start_line)
        lines = [start]
        lines += [f"{k}: {v}" for k, v in headers]  # a list: join of a generator is slower
        lines += ("", "")
        hb = "\r\n".join(lines).encode("latin-1")
        out = type(self)(
            hb + (bytes(self.body_raw) if body is None else body),
            ts_first_ns=self.ts_first_ns,
            ts_last_ns=self.ts_last_ns,
            head_len=len(hb),
        )
        out._start = start.split(" ", 2) if start else []
        out._headers = headers
        return out

    def _framed(self, headers: Iterable[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
        """``headers`` framed for ``body``: one Content-Length, no Transfer-Encoding."""
        fields: list[tuple[str, str]] = []
        had_len = False
        for k, v in headers:
            lk = k.lower()
            if lk == "transfer-encoding":
                continue
            if lk == "content-length":
                if had_len:
                    continue
                had_len = True
                fields.append((k, str(len(body))))
                continue
            fields.append((k, v))
        if not had_len and (body or self._needs_length()):
            fields.append(("Content-Length", str(len(body))))
        return fields

    def _needs_length(self) -> bool:
        return False

    def __len__(self) -> int:
        return len(self.raw)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        first = bytes(self.raw[:80]).split(b"\n", 1)[0].decode("latin-1", "replace").rstrip()
        return f"<{type(self).__name__} {first!r} {len(self.raw)}B>"


def _find_head_end(raw: bytes) -> int:
    i = raw.find(b"\r\n\r\n")
    j = raw.find(b"\n\n")
    if i < 0 and j < 0:
        return len(raw)
    if i < 0:
        return j + 2
    if j < 0 or i < j:
        return i + 4
    return j + 2


class Request(HTTPMessage):
    """An HTTP/1.x request."""

    __slots__ = ()

    @property
    def method(self) -> str:
        s = self.start_line
        return s[0] if s else ""

    @property
    def target(self) -> str:
        """The request target exactly as sent (origin-form, absolute-form, ...); empty
        when the line has none (``GET HTTP/1.1``)."""
        s = self.start_line
        if len(s) == 2 and s[1].startswith("HTTP/1."):
            return ""
        return s[1] if len(s) > 1 else ""

    @property
    def version(self) -> str:
        s = self.start_line
        if len(s) == 2 and s[1].startswith("HTTP/1."):
            return s[1]
        return s[2] if len(s) > 2 else "HTTP/0.9"

    @property
    def path(self) -> str:
        """Path part of the target (no query), also for absolute-form targets."""
        t = self.target
        if "://" in t[:10]:
            t = urlsplit(t).path or "/"
        return t.split("?", 1)[0]

    @property
    def query(self) -> str:
        t = self.target
        return t.split("?", 1)[1] if "?" in t else ""

    @property
    def host(self) -> str | None:
        """Host header, or the authority of an absolute-form target."""
        h = self.header("host")
        if h is None and "://" in self.target[:10]:
            h = urlsplit(self.target).netloc or None
        return h

    def _needs_length(self) -> bool:
        return self.method.upper() in ("POST", "PUT", "PATCH")


class Response(HTTPMessage):
    """An HTTP/1.x response (``head_len == 0`` for an HTTP/0.9 reply with no head)."""

    __slots__ = ()

    @property
    def version(self) -> str:
        if self.head_len == 0:
            return "HTTP/0.9"
        s = self.start_line
        return s[0] if s else ""

    @property
    def status(self) -> int:
        """Status code; 0 for an HTTP/0.9 reply or an unparsable status line."""
        if self.head_len == 0:
            return 0
        s = self.start_line
        try:
            return int(s[1]) if len(s) > 1 else 0
        except ValueError:
            return 0

    @property
    def reason(self) -> str:
        s = self.start_line
        return s[2] if len(s) > 2 else ""


@dataclass(slots=True, eq=False)
class Exchange:
    """Request + original response + replayed response, with timings, ids and flags.

    ``interim`` keeps 1xx responses (e.g. 100 Continue) that came before the final response.
    ``meta`` carries free-form string metadata (for example which rule rewrote the request);
    it is written to replaygate's files and survives round trips.
    """

    id: str
    request: Request
    response: Response | None = None
    replayed: Response | None = None
    conn: ConnectionId | None = None
    session: str | None = None
    seq: int = 0
    flags: set[Flag] = field(default_factory=set)
    interim: list[Response] = field(default_factory=list)
    replay_error: str | None = None
    replay_ts_ns: int | None = None
    replay_latency_ns: int | None = None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def ts_ns(self) -> int:
        """When the request's first byte was seen (ns since the epoch)."""
        return self.request.ts_first_ns

    @property
    def latency_ns(self) -> int | None:
        """Original latency: request first byte to response last byte."""
        if self.response is None:
            return None
        lat = self.response.ts_last_ns - self.request.ts_first_ns
        return lat if lat >= 0 else None

    @property
    def complete(self) -> bool:
        return self.response is not None and not (self.flags & _NOT_COMPLETE)

    def copy(self) -> Exchange:
        """An exchange that can be changed without touching this one: the messages (immutable)
        are shared; flags, interim responses and meta are copied."""
        return Exchange(
            id=self.id,
            request=self.request,
            response=self.response,
            replayed=self.replayed,
            conn=self.conn,
            session=self.session,
            seq=self.seq,
            flags=set(self.flags),
            interim=list(self.interim),
            replay_error=self.replay_error,
            replay_ts_ns=self.replay_ts_ns,
            replay_latency_ns=self.replay_latency_ns,
            meta=dict(self.meta),
        )

    def summary(self) -> dict[str, Any]:
        """The per-exchange record of ``inspect --json`` (contract: keep these keys)."""
        req = self.request
        resp = self.response
        return {
            "id": self.id,
            "ts_ns": self.ts_ns,
            "method": req.method,
            "target": req.target,
            "host": req.host,
            "version": req.version,
            "status": resp.status if resp is not None else None,
            "request_body_len": _body_len(req),
            "response_body_len": _body_len(resp) if resp is not None else None,
            "latency_ns": self.latency_ns,
            "complete": self.complete,
            "flags": sorted(str(f) for f in self.flags),
        }


def _body_len(msg: HTTPMessage | None) -> int | None:
    if msg is None:
        return None
    if len(msg.body_raw) == 0:
        return 0
    return len(msg.decoded_body())


def iter_messages(ex: Exchange) -> Iterator[tuple[int, HTTPMessage]]:
    """(GoReplay type, message) for each message present: 1 request, 2 original, 3 replayed."""
    yield 1, ex.request
    if ex.response is not None:
        yield 2, ex.response
    if ex.replayed is not None:
        yield 3, ex.replayed
