"""Incremental HTTP/1.x message framing for the recording proxy (sans-I/O): one direction.

The proxy forwards bytes untouched; this module only watches a *copy* of each direction and
cuts it into messages with their exact raw bytes, so that recordings are byte-exact. It does
not validate more than framing needs: the start line, ``Content-Length``,
``Transfer-Encoding: chunked``, the request method (HEAD, CONNECT) and the status (1xx, 101,
204, 304). Body bytes are sliced in bulk (no per-byte Python work); only header blocks and
chunk-size lines are searched.

A request and a response framer are paired by
:class:`~replaygate.protocol.h1recorder.ConnectionRecorder`, which builds
:class:`~replaygate.model.Exchange` objects with interim (1xx) responses, upgrade/CONNECT
tunnels and honest flags for whatever ended early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import Flag
from .h1rules import (
    REASONS,
    Limits,
    RequestHead,
    check_chunk_line,
    check_request_head,
    check_trailer,
    find_blank_line,
)

__all__ = ["MAX_HEAD", "STATE_HEAD", "STATE_WAIT", "Framer", "Message"]

MAX_HEAD = 256 << 10  # a head larger than this is not HTTP we can frame

# framer states
_HEAD = 0
_BODY = 1  # counted body (Content-Length)
_CHUNK_SIZE = 2
_CHUNK_DATA = 3  # chunk data, counted
_TRAILER = 4
_CLOSE = 5  # body delimited by connection close
_WAIT = 6  # after CONNECT/Upgrade request: hold bytes until the response decides
_TUNNEL = 7  # not HTTP any more: bytes are passed, not parsed
_CHUNK_END = 8  # the CRLF after chunk data
_REJECTED = 9  # strict: the request broke a rule; nothing more is read
_HOLDING = (_HEAD, _CHUNK_SIZE, _CHUNK_END, _TRAILER, _WAIT)
STATE_HEAD = _HEAD  # between messages (the recorder's fast path starts only here)
STATE_WAIT = _WAIT  # a request asked for an upgrade: its framer waits for the answer


@dataclass(slots=True)
class Message:
    """One framed message: exact bytes plus what the pairing needs."""

    raw: bytes
    head_len: int
    ts_first_ns: int
    ts_last_ns: int
    method: str = ""  # requests
    status: int = 0  # responses
    flags: set[Flag] = field(default_factory=set)
    upgrade: bool = False  # request asked for Upgrade / CONNECT


def _parse_head(head: bytes) -> tuple[list[bytes], dict[bytes, list[bytes]]]:
    """Start line and the framing headers (lower-case names) of a message head.

    Only the headers framing depends on are looked up, with ``find`` on the lower-cased
    head, instead of splitting every line: this runs once per message on the proxy's path.
    """
    eol = head.find(b"\n")
    start = head[:eol].rstrip(b"\r").split(b" ", 2)
    low = head.lower()
    hdrs: dict[bytes, list[bytes]] = {}
    for name in _FRAMING:
        pos = low.find(b"\n" + name, eol - 1 if eol > 0 else 0)
        while pos >= 0:
            k = pos + 1 + len(name)
            # allow "Name :" (optional whitespace) but not a longer header name
            while k < len(low) and low[k] in (32, 9):
                k += 1
            if k < len(low) and low[k] == 58:  # ':'
                end = low.find(b"\n", k)
                hdrs.setdefault(name, []).append(head[k + 1 : end if end >= 0 else None].strip())
            pos = low.find(b"\n" + name, pos + 1)
    return start, hdrs


_FRAMING = (b"transfer-encoding", b"content-length", b"upgrade")


class Framer:
    """Cut one direction of a connection into messages.

    ``is_response`` selects response rules; ``request_method`` is asked, when a response head
    arrives, for the method of the request it answers (HEAD and CONNECT change framing).
    ``max_record`` caps how many bytes of one message are kept: beyond it the message is
    still framed but recorded cut, flagged truncated. ``on_message``, when given, receives
    each message the moment it completes (before later bytes of the same chunk are framed,
    which matters when the answer to a pipelined HEAD follows in the same chunk); otherwise
    ``feed`` returns them.

    ``strict`` (the proxy's client side): every head, chunk-size line, chunk end and trailer
    is checked by :mod:`.h1rules` *before* it may be forwarded; bytes accepted for
    forwarding are collected for :meth:`take_forward`, and an incomplete unit is held back
    until it is complete. A refusal sets :attr:`rejected` and the framer stops. Otherwise
    (responses, observers) bytes are not held and what cannot be framed is recorded flagged
    (``gave_up``) and passed on uncounted.

    Every buffer is bounded by ``limits`` (responses: at least 256 KiB heads, 4 KiB chunk
    lines), and buffered bytes are appended in place and searched only where new bytes
    arrived, so a slow or endless unit costs linear time, never quadratic.
    """

    def __init__(
        self,
        *,
        is_response: bool,
        request_method: Callable[[], str] | None = None,
        max_record: int = 256 << 20,
        on_message: Callable[[Message], None] | None = None,
        strict: bool = False,
        limits: Limits = Limits(),
    ) -> None:
        self.is_response = is_response
        self.strict = strict and not is_response
        self.limits = limits
        self._head_limit = limits.max_head if self.strict else max(limits.max_head, MAX_HEAD)
        self._line_limit = limits.max_line if self.strict else max(limits.max_line, 4096)
        self._on_message = on_message
        self._method = request_method or (lambda: "")
        self._max_record = max_record
        self._state = _HEAD
        self._buf = bytearray()  # held bytes of an incomplete head / size line / trailer
        self._line_start = 0  # where the last incomplete line of _buf starts
        self._fwd: list[bytes] = []  # strict: accepted for forwarding, not yet taken
        self._parts: list[bytes] = []
        self._kept = 0
        self._cut = False
        self._remaining = 0
        self._head_len = 0
        self._ts_first = 0
        self._ts_last = 0
        self._cur: Message | None = None
        self._info: RequestHead | None = None
        self.tunnel_bytes = 0
        self.rejected: tuple[int, str] | None = None
        self.gave_up = 0

    @property
    def in_message(self) -> bool:
        return self._cur is not None or (self._state == _HEAD and bool(self._buf.strip()))

    @property
    def tunnelled(self) -> bool:
        return self._state == _TUNNEL

    @property
    def buffered(self) -> int:
        """Bytes held in the framer's buffer (bounded by the limits)."""
        return len(self._buf)

    def take_forward(self) -> bytes:
        """Strict mode: the bytes accepted for forwarding since the last call."""
        fwd = self._fwd
        if not fwd:
            return b""
        self._fwd = []
        return fwd[0] if len(fwd) == 1 else b"".join(fwd)

    # -- control by the pairing ------------------------------------------------------------
    def to_tunnel(self) -> None:
        """The peer switched protocols: stop parsing, count bytes only."""
        if self._buf and self.strict and self.rejected is None:
            self._fwd.append(bytes(self._buf))
        self.tunnel_bytes += len(self._buf)
        self._buf = bytearray()
        self._state = _TUNNEL

    def resume(self, ts_ns: int) -> list[Message]:
        """The upgrade was refused: parse held bytes as HTTP again."""
        if self._state != _WAIT:
            return []
        self._state = _HEAD
        held, self._buf = bytes(self._buf), bytearray()
        return self.feed(held, ts_ns) if held else []

    # -- feeding ---------------------------------------------------------------------------
    def _keep(self, piece: bytes) -> None:
        if self._cut:
            return
        room = self._max_record - self._kept
        if len(piece) > room:
            piece = piece[:room]
            self._cut = True
        self._parts.append(piece)
        self._kept += len(piece)

    def _finish(self, out: list[Message], *extra_flags: Flag) -> None:
        cur = self._cur
        assert cur is not None
        cur.raw = b"".join(self._parts)
        cur.head_len = min(self._head_len, len(cur.raw))
        cur.ts_first_ns = self._ts_first
        cur.ts_last_ns = self._ts_last
        if self._cut:
            cur.flags.add(Flag.RESPONSE_TRUNCATED if self.is_response else Flag.REQUEST_TRUNCATED)
        cur.flags.update(extra_flags)
        self._cur = None
        self._parts = []
        self._kept = 0
        self._cut = False
        if self._on_message is not None:
            self._on_message(cur)
        else:
            out.append(cur)

    def _hold(self, data: bytes, pos: int, out: list[Message]) -> None:
        """Keep ``data[pos:]`` (an incomplete unit) until more arrives, within the limits."""
        self._buf = bytearray(memoryview(data)[pos:])
        self._line_start = 0
        self._over_limit(0, out)

    def _over_limit(self, old_len: int, out: list[Message]) -> bool:
        """Check the held bytes against the limits (only where new bytes arrived); refuse
        or give up when one is passed. True if the framer stopped."""
        buf = self._buf
        st = self._state
        if st == _WAIT:
            if len(buf) > self._head_limit:
                if self.strict:
                    self._reject("upgrade_data_too_large", out)
                else:
                    self.to_tunnel()
                return True
            return False
        if st in (_CHUNK_SIZE, _CHUNK_END):
            if len(buf) > self._line_limit:
                self._stop("chunk_line_too_long", out)
                return True
            return False
        k = buf.rfind(b"\n", max(old_len - 1, 0))
        if k >= 0:
            self._line_start = k + 1
        head = st == _HEAD
        if len(buf) - self._line_start > self._line_limit:
            if not head:
                self._stop("trailer_line_too_long", out)
            elif self._line_start == 0:
                self._stop("request_line_too_long", out)
            else:
                self._stop("header_line_too_long", out)
            return True
        if len(buf) > self._head_limit:
            self._stop("headers_too_large" if head else "trailers_too_large", out)
            return True
        return False

    def _complete(self, old_len: int) -> bool:
        """Does the held buffer now hold a whole unit for the current state? (Searched only
        from where new bytes arrived.)"""
        buf = self._buf
        st = self._state
        if st == _WAIT:
            return False
        if st == _CHUNK_SIZE:
            return buf.find(b"\n", old_len) >= 0
        if st == _CHUNK_END:
            return len(buf) >= 2 or buf[:1] == b"\n"
        if st == _TRAILER and (buf.startswith(b"\r\n") or buf.startswith(b"\n")):
            return True
        return find_blank_line(buf, max(old_len - 2, 0)) >= 0

    def feed(self, data: bytes, ts_ns: int) -> list[Message]:
        """Consume ``data`` (seen at ``ts_ns``); return the messages it completed."""
        out: list[Message] = []
        if self.rejected is not None:
            return out
        if data and self._cur is not None:
            self._ts_last = ts_ns
        if self._buf and self._state in _HOLDING:
            old = len(self._buf)
            self._buf += data
            if self._over_limit(old, out) or not self._complete(old):
                return out
            data, self._buf = bytes(self._buf), bytearray()
        self._run(data, ts_ns, out)
        return out

    def _run(self, data: bytes, ts_ns: int, out: list[Message]) -> None:
        pos = 0
        n = len(data)
        while pos < n:
            st = self._state
            if st == _TUNNEL:
                self.tunnel_bytes += n - pos
                pos = n
                break
            if st == _REJECTED:
                return
            if st == _WAIT:
                self._hold(data, pos, out)
                break
            if st in (_BODY, _CHUNK_DATA):
                take = min(self._remaining, n - pos)
                self._keep(data[pos : pos + take] if take < n else data)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    if st == _BODY:
                        self._end_message(out)
                    else:
                        self._state = _CHUNK_END
                continue
            if st == _CLOSE:
                self._keep(data[pos:])
                pos = n
                break
            if st == _CHUNK_END:
                if data.startswith(b"\r\n", pos):
                    k = 2
                elif data[pos] == 10:
                    k = 1
                elif data[pos] == 13 and pos + 1 == n:
                    self._hold(data, pos, out)
                    break
                else:
                    self._stop("bad_chunk_end", out, data[pos : pos + 2])
                    break
                self._keep(data[pos : pos + k])
                pos += k
                self._state = _CHUNK_SIZE
                continue
            if st == _HEAD:
                if self._cur is None:
                    # tolerate stray CRLFs between messages (RFC 9112 2.2)
                    while pos < n and data[pos] in (13, 10):
                        pos += 1
                    if pos >= n:
                        break
                    self._ts_first = ts_ns
                    self._ts_last = ts_ns
                    self._cur = Message(b"", 0, ts_ns, ts_ns)
                end = find_blank_line(data, pos)
                if end < 0:
                    self._hold(data, pos, out)
                    break
                head = data[pos:end]
                info: RequestHead | None = None
                if self.strict:
                    checked = check_request_head(head, self.limits)
                    if isinstance(checked, str):
                        self._reject(checked, out)
                        break
                    info = checked
                elif len(head) > self._head_limit:
                    self._give_up(head, out)
                    continue
                pos = end
                self._keep(head)
                self._head_len = len(head)
                self._on_head(head, out, info)
                continue
            if st == _CHUNK_SIZE:
                eol = data.find(b"\n", pos)
                if eol < 0:
                    self._hold(data, pos, out)
                    break
                line = data[pos : eol + 1]
                if len(line) > self._line_limit + 2:
                    self._stop("chunk_line_too_long", out, line[: self._line_limit])
                    break
                size = check_chunk_line(line) if self.strict else _lenient_chunk_size(line)
                if isinstance(size, str):
                    self._stop(size, out, line)
                    break
                pos = eol + 1
                self._keep(line)
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._remaining = size
                    self._state = _CHUNK_DATA
                continue
            if st == _TRAILER:
                if data.startswith(b"\r\n", pos) or data.startswith(b"\n", pos):
                    k = 2 if data[pos] == 13 else 1
                    self._keep(data[pos : pos + k])
                    pos += k
                    self._end_message(out)
                    continue
                end = find_blank_line(data, pos)
                if end < 0:
                    self._hold(data, pos, out)
                    break
                block = data[pos:end]
                if self.strict:
                    reason = check_trailer(block, self.limits)
                    if reason is not None:
                        self._reject(reason, out)
                        break
                elif len(block) > self._head_limit:
                    self._give_up(block, out)
                    continue
                self._keep(block)
                pos = end
                self._end_message(out)
                continue
        if self.strict and pos:  # up to where a unit is held back or was refused
            self._fwd.append(data if pos == n else data[:pos])

    def _stop(self, reason: str, out: list[Message], rest: bytes = b"") -> None:
        """A unit broke the rules or a limit: refuse (strict) or give up (observing)."""
        if self.strict:
            self._reject(reason, out)
        else:
            self._give_up(rest if rest else bytes(self._buf), out)

    def _reject(self, reason: str, out: list[Message]) -> None:
        """Strict: refuse the rest of the connection. What of this message was already
        forwarded (its head and some body) is recorded as far as it went, flagged."""
        self.rejected = (REASONS[reason], reason)
        self._buf = bytearray()
        self._state = _REJECTED
        if self._cur is not None:
            if self._parts:
                self._finish(out, Flag.REQUEST_TRUNCATED, Flag.PARSE_ERROR)
            self._cur = None
            self._parts = []
            self._kept = 0
            self._cut = False

    def _give_up(self, rest: bytes, out: list[Message]) -> None:
        """Not framable HTTP: record what we have as a parse error, then pass bytes on."""
        self.gave_up += 1
        self._buf = bytearray()
        if self._cur is None:
            self._cur = Message(b"", 0, self._ts_first, self._ts_last)
        self._keep(rest)
        self._head_len = self._head_len or len(rest)
        self._finish(out, Flag.PARSE_ERROR)
        self._state = _TUNNEL

    def _on_head(self, head: bytes, out: list[Message], info: RequestHead | None) -> None:
        cur = self._cur
        assert cur is not None
        if info is not None:
            chunked, length = info.chunked, info.length
            cur.method = info.method
            cur.upgrade = info.upgrade
            if not chunked and length is None:
                self._end_message(out)
                return
        else:
            start, hdrs = _parse_head(head)
            te = b",".join(hdrs.get(b"transfer-encoding", [])).lower()
            chunked = te.rstrip().endswith(b"chunked")
            cl_vals = hdrs.get(b"content-length")
            length = None
            if cl_vals and not te:
                try:
                    length = int(cl_vals[0].split(b",")[0])
                except ValueError:
                    length = None
                    cur.flags.add(Flag.PARSE_ERROR)
                if length is not None and length < 0:
                    length = None
                    cur.flags.add(Flag.PARSE_ERROR)
            if self.is_response:
                try:
                    status = int(start[1]) if len(start) > 1 else 0
                except ValueError:
                    status = 0
                    cur.flags.add(Flag.PARSE_ERROR)
                cur.status = status
                method = self._method().upper()
                if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
                    self._end_message(out)
                    return
                if method == "CONNECT" and 200 <= status < 300:
                    self._end_message(out)
                    return
            else:
                cur.method = start[0].decode("latin-1") if start else ""
                upgrade = cur.method.upper() == "CONNECT" or b"upgrade" in hdrs
                cur.upgrade = upgrade
                if not chunked and length is None:
                    self._end_message(out)
                    return
        if chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            if length == 0:
                self._end_message(out)
                return
            self._remaining = length
            self._state = _BODY
        else:
            self._state = _CLOSE

    def _end_message(self, out: list[Message]) -> None:
        cur = self._cur
        assert cur is not None
        self._finish(out)
        if not self.is_response and cur.upgrade:
            self._state = _WAIT
        elif self._state != _TUNNEL:
            self._state = _HEAD

    def eof(self, ts_ns: int) -> list[Message]:
        """The direction ended: close-delimited bodies complete, anything else is cut.

        Strict: held bytes were never forwarded, so they are not recorded either; a message
        of which nothing was forwarded is not recorded at all."""
        out: list[Message] = []
        if self._state == _CLOSE and self._cur is not None:
            self._ts_last = ts_ns if not self._parts else self._ts_last
            self._finish(out, Flag.CLOSE_DELIMITED)
        elif self._cur is not None:
            if self._state == _HEAD and self._buf and not self.strict:
                self._keep(bytes(self._buf))
                self._head_len = len(self._buf)
            if self._parts or not self.strict:
                self._finish(
                    out, Flag.RESPONSE_TRUNCATED if self.is_response else Flag.REQUEST_TRUNCATED
                )
            self._cur = None
        self._buf = bytearray()
        if self._state != _REJECTED:
            self._state = _TUNNEL
        return out


def _lenient_chunk_size(line: bytes) -> int | str:
    """Observing: whatever hex number starts the line (extensions and spaces allowed)."""
    try:
        size = int(line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        return "bad_chunk_size"
    return size if size >= 0 else "bad_chunk_size"
