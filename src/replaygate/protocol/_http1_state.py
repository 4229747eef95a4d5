"""The state of an HTTP/1 stream parser: its bounds, its counters, the per-side framing
states, one :class:`Entry` per request and one :class:`Side` per direction, and
:class:`ParserBase`, which names what the parts of the parser (messages, edges) share.
See :mod:`replaygate.protocol.http1` for the rules."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

from ..model import ConnectionId, Flag, Request, Response
from . import _http1_grammar as g

__all__ = [
    "BODY_STATES",
    "CHUNK_CRLF",
    "CHUNK_DATA",
    "CHUNK_SIZE",
    "CLOSE",
    "ENDED",
    "HEAD",
    "PAUSED",
    "RESYNC",
    "SIZED",
    "TRAILERS",
    "TUNNEL",
    "Entry",
    "ParserBase",
    "ParserConfig",
    "ParserStats",
    "Side",
]


@dataclass(frozen=True, slots=True)
class ParserConfig:
    """Bounds that keep one connection's memory in check.

    ``max_head_bytes``: a head (start line + headers) longer than this is a parse error.
    ``max_line_bytes``: an unfinished start line longer than this is garbage.
    ``max_paused_bytes``: client bytes held while waiting for the answer to CONNECT/Upgrade;
    beyond it the tunnel is assumed to be up. ``max_held_response_bytes``: server bytes held
    while the client's next request is still incomplete, before they are parsed as orphans.
    Bodies have no limit (100 MB+ bodies are normal); they are kept in pieces and joined once.
    """

    max_head_bytes: int = 1 << 20
    max_line_bytes: int = 64 << 10
    max_paused_bytes: int = 256 << 10
    max_held_response_bytes: int = 64 << 10


@dataclass(slots=True)
class ParserStats:
    """What one parser skipped or stopped parsing, so nothing is lost silently."""

    requests: int = 0
    responses: int = 0
    interim_responses: int = 0
    skipped_bytes: int = 0
    resyncs: int = 0
    parse_errors: int = 0
    malformed_request_lines: int = 0
    tunnel_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# side states
HEAD, SIZED, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS, CLOSE = range(7)
PAUSED, TUNNEL, RESYNC, ENDED = range(7, 11)
BODY_STATES = (SIZED, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS, CLOSE)


class Entry:
    """One request (maybe not fully read yet) and what came back for it."""

    __slots__ = (
        "connect",
        "expect_continue",
        "flags",
        "head",
        "http09",
        "interim",
        "method",
        "request",
        "resp_done",
        "response",
        "seq",
        "switched",
        "ts_first",
        "upgrade",
    )

    def __init__(self, seq: int, method: bytes) -> None:
        self.seq = seq
        self.ts_first = 0
        self.method = method
        self.flags: set[Flag] = set()
        self.request: Request | None = None
        self.response: Response | None = None
        self.interim: list[Response] = []
        self.resp_done = False
        self.http09 = False
        self.connect = method == b"CONNECT"
        self.upgrade = False
        self.expect_continue = False
        self.switched = False  # 101 or CONNECT 2xx: the stream is no longer HTTP
        self.head = False  # HEAD request: the response has no body


class Side:
    """One direction: unconsumed bytes, framing state and the message being read."""

    __slots__ = (
        "after_gap",
        "base",
        "body_seen",
        "buf",
        "entry",
        "eof",
        "final",
        "head_len",
        "interim",
        "last_ts",
        "marks",
        "msg_flags",
        "parts",
        "pending",
        "pos",
        "remaining",
        "scan",
        "scan_at",
        "skipped_run",
        "started",
        "state",
        "ts_first",
    )

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0
        self.base = 0  # stream offset of buf[0]
        self.marks: deque[tuple[int, int]] = deque()  # (stream offset, ts) of each feed
        self.state = HEAD
        self.remaining = 0
        self.scan = 0  # stream offset the head-end search may resume from ...
        self.scan_at = -1  # ... for the message starting at this stream offset
        self.parts: list[bytes] = []
        self.head_len = 0
        self.ts_first = 0
        self.last_ts = 0
        self.entry: Entry | None = None
        self.msg_flags: set[Flag] = set()
        self.pending: Flag | None = None  # flag for the next message (MIDSTREAM/DESYNC)
        self.started = False
        self.eof = False
        self.interim = False
        self.final = False
        self.body_seen = 0
        self.skipped_run = 0
        self.after_gap = False

    @property
    def avail(self) -> int:
        return len(self.buf) - self.pos

    def feed(self, data: bytes, ts: int) -> None:
        if self.pos >= len(self.buf):
            self.base += len(self.buf)
            self.buf = data
        else:
            self.base += self.pos
            self.buf = self.buf[self.pos :] + data
        self.pos = 0
        self.marks.append((self.base + len(self.buf) - len(data), ts))
        self.last_ts = ts
        cur = self.base
        marks = self.marks
        while len(marks) > 1 and marks[1][0] < cur:
            marks.popleft()

    def ts_at(self, offset: int) -> int:
        """Capture time of the byte at stream ``offset`` (still buffered or just consumed)."""
        marks = self.marks
        if marks and marks[-1][0] <= offset:
            return marks[-1][1]
        for start, ts in reversed(marks):
            if start <= offset:
                return ts
        return self.marks[0][1] if self.marks else self.last_ts

    def take(self, n: int) -> None:
        """Move ``n`` buffered bytes into the current message."""
        buf, pos = self.buf, self.pos
        if pos == 0 and n == len(buf):
            self.parts.append(buf)
        else:
            self.parts.append(buf[pos : pos + n])
        self.pos = pos + n

    def begin(self, ts_first: int) -> None:
        self.parts = []
        self.head_len = 0
        self.ts_first = ts_first
        self.msg_flags = set()
        self.body_seen = 0
        if self.pending is not None:
            self.msg_flags.add(self.pending)
            self.pending = None

    def raw(self) -> bytes:
        parts = self.parts
        self.parts = []
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def ts_last(self) -> int:
        return self.ts_at(self.base + self.pos - 1)

    def skip(self, n: int, stats: ParserStats) -> None:
        self.pos += n
        stats.skipped_bytes += n
        self.skipped_run += n

    def drop_all(self) -> int:
        n = self.avail
        self.pos = len(self.buf)
        return n


class ParserBase:
    """What the parts of the parser share: the attributes :class:`HTTP1StreamParser` sets up,
    and the steps :class:`Edges` calls in :class:`Messages` (its subclass) and the driver.

    One chain of single inheritance (ParserBase <- Edges <- Messages <- FastPaths <-
    HTTP1StreamParser), so the modules can also be compiled (mypyc has no multiple
    inheritance of classes)."""

    conn: ConnectionId | None
    config: ParserConfig
    stats: ParserStats
    _c: Side
    _s: Side
    _order: deque[Entry]  # entries not yet returned, in request order
    _awaiting: deque[Entry]  # entries without a final response yet
    _seq: int  # exchanges returned so far: the next one's seq
    _hold: bool  # may server bytes wait for a request still arriving?
    _client_ending: bool
    tunnel_start: tuple[bytes, bytes] | None
    _tunnel_taken: bool

    def _run(self, server_first: bool = False) -> None:
        raise NotImplementedError

    # messages (_http1_messages)
    def _new_request(
        self,
        method: bytes,
        head_len: int,
        framing: g.Framing,
        *,
        http09: bool = False,
        cut: bool = False,
        malformed: bool = False,
    ) -> None:
        raise NotImplementedError

    def _end_request(self) -> None:
        raise NotImplementedError

    def _new_response(
        self,
        e: Entry | None,
        head_len: int,
        *,
        status: int,
        framing: g.Framing | None = None,
        http09: bool = False,
        cut: bool = False,
        before: Entry | None = None,
    ) -> None:
        raise NotImplementedError

    def _end_response(self) -> None:
        raise NotImplementedError

    def _tunnel(self) -> None:
        raise NotImplementedError
