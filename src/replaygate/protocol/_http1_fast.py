"""Fast paths of the HTTP/1 parser for the common case of live traffic: a segment that is
exactly one whole, well-formed message arriving while nothing is buffered on its side.

Rule: a fast path either does *everything* the general path would do for that input, with
the same outcome (exchanges, flags, time stamps, counters, side state), or returns False
having changed *nothing*, and the general path runs. So every odd case (a partial head,
pipelining, bodies in several segments, chunked or close-delimited bodies, 1xx/101, CONNECT
and Upgrade, HTTP/0.9, malformed start lines, pending MIDSTREAM/DESYNC flags, a response
that would be an orphan) is decided where it always was. ``tests/protocol/test_http1_fast.py``
feeds the same streams through both paths and compares everything.
"""

from __future__ import annotations

from ..model import Request, Response
from . import _http1_grammar as g
from ._http1_messages import Messages
from ._http1_state import HEAD, PAUSED, Entry, Side

__all__ = ["FastPaths"]

_REQUEST_LINE = g.REQUEST_LINE
_STATUS_LINE = g.STATUS_LINE
_find_head_end = g.find_head_end
_framing_headers = g.framing_headers


def _consume(side: Side, data: bytes, ts: int, head_len: int, body_len: int) -> None:
    """The side state after ``data`` (one whole message) was fed and read, as the general
    path leaves it (``Side.feed`` then ``begin``/``take``/``raw``). Of the time marks only
    the one of ``data`` is kept: nothing older can be asked for once it is all read."""
    base = side.base = side.base + len(side.buf)
    side.buf = data
    side.pos = len(data)
    side.last_ts = ts
    marks = side.marks
    marks.clear()
    marks.append((base, ts))
    side.parts = []
    side.head_len = head_len
    side.ts_first = ts
    side.msg_flags = set()
    side.body_seen = body_len
    side.started = True
    side.entry = None


def _head_end(side: Side, data: bytes, line_end: int, max_head: int) -> int:
    """Where the head of ``data`` (a new message on ``side``, its start line ending at
    ``line_end``) ends, or -1 when it does not end in ``data`` or is longer than
    ``max_head``. The search resumes where the general path's last one on this message
    stopped (``Side.scan``), as that path would."""
    here = side.base + len(side.buf)
    start = line_end - 1
    if side.scan_at == here:
        start = max(start, side.scan - here)
    end = _find_head_end(data, start)
    return -1 if end > max_head else end


class FastPaths(Messages):
    """Whole messages in one segment, both sides."""

    fast_path = True  # tests compare against the general path

    def _fast_request(self, data: bytes, ts: int) -> bool:
        c = self._c
        if c.state != HEAD or c.pos < len(c.buf) or c.pending is not None:
            return False
        m = _REQUEST_LINE.match(data)
        if m is None or m.group(3) == b"2" or data[0] in b"\r\n":
            return False
        line_end = m.end()
        end = _head_end(c, data, line_end, self.config.max_head_bytes)
        if end < 0:
            return False
        n = len(data)
        framing = _framing_headers(data, line_end, end)
        if (
            framing.transfer_encoding
            or framing.length_invalid
            or framing.upgrade
            or framing.expect_continue
            or end + (framing.content_length or 0) != n
        ):
            return False
        method = m.group(1)
        if method == b"CONNECT":
            return False
        _consume(c, data, ts, end, n - end)
        e = Entry(self._seq, method)
        e.ts_first = ts
        e.head = method == b"HEAD"
        e.request = Request(data, ts_first_ns=ts, ts_last_ns=ts, head_len=end)
        self.stats.requests += 1
        self._order.append(e)
        self._awaiting.append(e)
        return True

    def _fast_response(self, data: bytes, ts: int) -> bool:
        s = self._s
        if s.state != HEAD or s.pos < len(s.buf) or s.pending is not None or not self._awaiting:
            return False
        e = self._awaiting[0]
        if (
            e.request is None
            or e.http09
            or e.connect
            or ts < e.ts_first
            or self._c.state == PAUSED
            or data[0] in b"\r\n"
        ):
            return False
        m = _STATUS_LINE.match(data)
        if m is None:
            return False
        status = int(m.group(3))
        if status < 200:
            return False
        line_end = m.end()
        end = _head_end(s, data, line_end, self.config.max_head_bytes)
        if end < 0:
            return False
        n = len(data)
        if status == 204 or status == 304 or e.head:
            if end != n:
                return False
        else:
            framing = _framing_headers(data, line_end, end)
            if (
                framing.transfer_encoding
                or framing.length_invalid
                or framing.content_length is None
                or end + framing.content_length != n
            ):
                return False
        _consume(s, data, ts, end, n - end)
        s.interim = False
        self.stats.responses += 1
        e.response = Response(data, ts_first_ns=ts, ts_last_ns=ts, head_len=end)
        e.resp_done = True
        self._awaiting.popleft()
        return True
