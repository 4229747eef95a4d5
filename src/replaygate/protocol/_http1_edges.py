"""Bodies, and everything that is not a clean message: chunk framing errors, refused
``Expect: 100-continue`` bodies, resynchronisation after junk, capture gaps and ends of
stream. Part of :class:`~replaygate.protocol.http1.HTTP1StreamParser`; see
:mod:`replaygate.protocol.http1` for the rules.
"""

from __future__ import annotations

from ..model import Flag
from . import _http1_grammar as g
from ._http1_state import (
    BODY_STATES,
    CHUNK_CRLF,
    CHUNK_DATA,
    CHUNK_SIZE,
    CLOSE,
    ENDED,
    HEAD,
    PAUSED,
    RESYNC,
    SIZED,
    TRAILERS,
    TUNNEL,
    ParserBase,
    Side,
)

__all__ = ["Edges"]


class Edges(ParserBase):
    """Bodies, gaps, desynchronisation and ends of stream, both sides."""

    # -- bodies (both sides) ----------------------------------------------------------------
    def _body(self, side: Side, *, client: bool) -> bool:
        st = side.state
        if st in (SIZED, CHUNK_DATA):
            if client and side.body_seen == 0 and (refused := self._expect_refused(side)):
                if refused < 0:
                    return False  # wait: the start of a line that may be the next request
                self._end_request()
                return True
            avail = len(side.buf) - side.pos
            n = side.remaining if side.remaining < avail else avail
            side.take(n)
            side.body_seen += n
            side.remaining -= n
            if side.remaining:
                return True
            if st == CHUNK_DATA:
                side.state = CHUNK_CRLF
                return True
            self._end_message(side, client)
            return True
        if st == CLOSE:
            n = side.avail
            side.take(n)
            side.body_seen += n
            return True
        buf, pos = side.buf, side.pos
        if st == CHUNK_CRLF:
            if buf.startswith(b"\r\n", pos):
                side.take(2)
            elif buf.startswith(b"\n", pos):
                side.take(1)
            elif buf.startswith(b"\r", pos) and side.avail == 1:
                return False
            side.state = CHUNK_SIZE
            return True
        if st == CHUNK_SIZE:
            if client and side.body_seen == 0 and (refused := self._expect_refused(side)):
                if refused < 0:
                    return False  # wait: the start of a line that may be the next request
                self._end_request()
                return True
            nl = buf.find(b"\n", pos, pos + 4096)
            if nl < 0:
                if side.avail < 4096:
                    return False
                return self._framing_error(side, client)
            size = g.parse_chunk_size(buf[pos:nl])
            if size is None:
                return self._framing_error(side, client)
            side.take(nl + 1 - pos)
            side.body_seen += 1
            if size:
                side.remaining = size
                side.state = CHUNK_DATA
            else:
                side.state = TRAILERS
            return True
        # TRAILERS
        if buf.startswith(b"\r\n", pos) or buf.startswith(b"\n", pos):
            side.take(2 if buf[pos] == 13 else 1)
            self._end_message(side, client)
            return True
        if side.avail == 1 and buf[pos] == 13:
            return False
        end = g.find_head_end(buf, pos)
        if end < 0:
            if side.avail > self.config.max_head_bytes:
                return self._framing_error(side, client)
            return False
        side.take(end - pos)
        self._end_message(side, client)
        return True

    def _end_message(self, side: Side, client: bool) -> None:
        if client:
            self._end_request()
        else:
            self._end_response()

    def _framing_error(self, side: Side, client: bool) -> bool:
        """Chunk framing is broken: keep what we have, flag it, look for the next message."""
        self.stats.parse_errors += 1
        side.msg_flags.add(Flag.PARSE_ERROR)
        side.state = RESYNC
        self._end_message(side, client)
        return True

    def _expect_refused(self, side: Side) -> int:
        """Expect: 100-continue and the bytes where the body should start are a request line:
        the server refused (417, 401, ...) and the client skipped the body, as it may.

        1: skip the body; -1: undecided (a final answer came and the bytes so far could still
        be a request line: wait for the line to end); 0: the body it is."""
        e = side.entry
        if e is None or not e.expect_continue:
            return 0
        buf, pos = side.buf, side.pos
        if g.REQUEST_LINE.match(buf, pos) is not None:
            return 1
        if (
            e.response is not None
            and not self._client_ending
            and buf.find(b"\n", pos) < 0
            and len(buf) - pos <= self.config.max_line_bytes
            and g.is_request_prefix(buf, pos)
        ):
            return -1
        return 0

    # -- desync, gaps, ends -----------------------------------------------------------------
    def _to_resync(self, side: Side) -> bool:
        side.state = RESYNC
        self.stats.resyncs += 1
        return True

    def _resync(self, side: Side, *, client: bool) -> bool:
        """Skip to the next plausible start line (or keep the last partial line)."""
        buf, pos = side.buf, side.pos
        strict = g.RESYNC_REQUEST if client else g.RESYNC_STATUS
        if strict.match(buf, pos) is None:
            if client:
                m = g.RESYNC_REQUEST_ANY.search(buf, pos)
                m2 = g.RESYNC_REQUEST_NL.search(buf, pos, m.start() if m is not None else len(buf))
                if m2 is not None:
                    m = m2
            else:
                m = g.RESYNC_STATUS_ANY.search(buf, pos)
            if m is None:
                nl = buf.rfind(b"\n", pos)
                keep_from = nl + 1 if nl >= 0 else pos
                if len(buf) - keep_from > self.config.max_line_bytes:
                    keep_from = len(buf)
                side.skip(keep_from - pos, self.stats)
                return False
            side.skip(m.start(1) - pos, self.stats)
        if side.skipped_run and not side.after_gap:
            side.pending = Flag.DESYNC if side.started else Flag.MIDSTREAM
        side.after_gap = False
        side.skipped_run = 0
        side.state = HEAD
        return True

    def _gap(self, side: Side, n: int, *, client: bool) -> None:
        """``n`` bytes lost: flag the message they fell in, skip them inside a sized body, and
        keep pairing right by accounting for a message that started inside the gap."""
        st = side.state
        flag = Flag.REQUEST_GAP if client else Flag.RESPONSE_GAP
        if st in (TUNNEL, ENDED):
            self.stats.tunnel_bytes += n
            return
        side.after_gap = True
        side.skipped_run = 0
        if st == PAUSED:
            self.stats.skipped_bytes += side.drop_all()
            side.state = RESYNC
            return
        if st == CLOSE:
            side.msg_flags.add(flag)
            return
        if (st in (SIZED, CHUNK_DATA)) and n < side.remaining:
            side.msg_flags.add(flag)
            side.remaining -= n
            return
        if st == SIZED:
            over = n - side.remaining
            side.remaining = 0
            side.msg_flags.add(flag)
            self._end_message(side, client)
            if over == 0:
                side.after_gap = False
                return
            if side.state != HEAD:
                return
            # the gap ran past the end of the message: the next one started inside it
            self._lost_start(side, client, flag)
            side.state = RESYNC
            return
        if st in BODY_STATES:
            side.msg_flags.add(flag)
            side.state = RESYNC
            self._end_message(side, client)
            return
        if st == HEAD:
            self._lost_start(side, client, flag)
        side.state = RESYNC
        self.stats.resyncs += 1

    def _lost_start(self, side: Side, client: bool, flag: Flag) -> None:
        """A message began before or inside a gap and will never be whole. Keep whatever of it
        was seen as a flagged message, so the FIFO pairing of later messages stays right."""
        buf, pos = side.buf, side.pos
        if client:
            m = g.REQUEST_LINE.match(buf, pos)
            if side.avail == 0 or m is not None or g.is_request_prefix(buf, pos):
                method = m.group(1) if m is not None else buf[pos : pos + 33].split(b" ", 1)[0]
                side.pending = flag
                self._new_request(method if side.avail else b"", side.avail, g.NO_FRAMING, cut=True)
                return
        elif side.avail == 0:
            if self._awaiting:  # its response started inside the gap
                lost = self._awaiting.popleft()
                lost.flags.add(flag)
                lost.resp_done = True
            return
        elif g.is_status_prefix(buf, pos):
            ms = g.STATUS_LINE.match(buf, pos)
            side.pending = flag
            e = self._awaiting[0] if self._awaiting else None
            status = int(ms.group(3)) if ms is not None else 0
            self._new_response(e, side.avail, status=status, cut=True)
            return
        self.stats.skipped_bytes += side.drop_all()

    def _client_eof(self) -> None:
        c = self._c
        self._client_ending = True  # no more bytes: nothing may wait for the rest of a line
        self._run()
        if c.state == PAUSED:
            c.state = HEAD
            self._run()
        if c.state in BODY_STATES and c.entry is not None:
            e = c.entry
            if not (e.expect_continue and e.response is not None and c.body_seen == 0):
                c.msg_flags.add(Flag.REQUEST_TRUNCATED)
            self._end_request()
        elif c.state == HEAD and c.avail:
            if g.REQUEST_LINE.match(c.buf, c.pos) or (
                c.avail < self.config.max_line_bytes and g.is_request_prefix(c.buf, c.pos)
            ):
                method = c.buf[c.pos :].split(b" ", 1)[0]
                c.pending = Flag.REQUEST_TRUNCATED
                self._new_request(method, c.avail, g.NO_FRAMING, cut=True)
            else:
                c.skip(c.avail, self.stats)
        elif c.state == RESYNC:
            c.skip(c.avail, self.stats)
        if c.state != TUNNEL:
            self.stats.skipped_bytes += c.drop_all()
        else:
            self.stats.tunnel_bytes += c.drop_all()
        c.state = ENDED if c.state != TUNNEL else TUNNEL
        c.eof = True

    def _server_eof(self, seen: bool = True) -> None:
        s = self._s
        s.eof = True  # also releases server bytes held for an incomplete request
        self._run()
        if s.state == CLOSE and s.entry is not None:
            if not seen:  # no FIN or RST: the capture ended, not necessarily the body
                s.msg_flags.add(Flag.RESPONSE_TRUNCATED)
            self._end_response()
        elif s.state in BODY_STATES and s.entry is not None:
            s.msg_flags.add(Flag.RESPONSE_TRUNCATED)
            self._end_response()
        elif s.state == HEAD and s.avail:
            if g.STATUS_LINE.match(s.buf, s.pos) or (
                s.avail < self.config.max_line_bytes and g.is_status_prefix(s.buf, s.pos)
            ):
                s.pending = Flag.RESPONSE_TRUNCATED
                e = self._awaiting[0] if self._awaiting else None
                ms = g.STATUS_LINE.match(s.buf, s.pos)
                status = int(ms.group(3)) if ms is not None else 0
                self._new_response(e, s.avail, status=status, cut=True)
            else:
                s.skip(s.avail, self.stats)
        elif s.state == RESYNC:
            s.skip(s.avail, self.stats)
        if s.state == TUNNEL:
            self.stats.tunnel_bytes += s.drop_all()
        else:
            self.stats.skipped_bytes += s.drop_all()
            s.state = ENDED
