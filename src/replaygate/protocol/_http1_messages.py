"""Start lines and heads, both directions: where each request and response begins and ends,
how responses pair with requests, and the switch to a tunnel (CONNECT, Upgrade). Part of
:class:`~replaygate.protocol.http1.HTTP1StreamParser`; see :mod:`replaygate.protocol.http1`
for the rules.
"""

from __future__ import annotations

from ..model import Flag, Request, Response
from . import _http1_grammar as g
from ._http1_edges import Edges
from ._http1_state import (
    CHUNK_SIZE,
    CLOSE,
    HEAD,
    PAUSED,
    RESYNC,
    SIZED,
    TUNNEL,
    Entry,
)

__all__ = ["Messages"]


class Messages(Edges):
    """Heads and message boundaries of both sides."""

    # -- client side ------------------------------------------------------------------------
    def _step_client(self) -> bool:
        c = self._c
        st = c.state
        if c.pos >= len(c.buf) or st >= PAUSED:
            if st == PAUSED and c.avail > self.config.max_paused_bytes and c.entry is None:
                self._pause_overflow()
                return True
            if st == RESYNC and c.avail:
                return self._resync(c, client=True)
            return False
        if st == HEAD:
            return self._client_head()
        return self._body(c, client=True)

    def _client_head(self) -> bool:
        c = self._c
        buf, pos = c.buf, c.pos
        if buf[pos] in b"\r\n":
            m0 = g.BLANK_LINES.match(buf, pos)
            assert m0 is not None
            c.pos = m0.end()
            return True
        m = g.REQUEST_LINE.match(buf, pos)
        malformed = False
        if m is None:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if c.avail <= self.config.max_line_bytes and (
                    g.is_request_prefix(buf, pos) or g.MALFORMED_PREFIX.match(buf, pos)
                ):
                    return False  # wait for the rest of the line
                return self._to_resync(c)
            m = g.MALFORMED_REQUEST_LINE.match(buf, pos)
            if m is None:
                m9 = g.REQUEST_LINE_09.match(buf, pos)
                if m9 is not None and c.pending is None:
                    self._new_request(m9.group(1), m9.end() - pos, g.NO_FRAMING, http09=True)
                    return True
                return self._to_resync(c)
            malformed = True  # still plainly a request line: kept, flagged
        elif m.group(3) == b"2":  # "PRI * HTTP/2.0": an HTTP/2 connection, not ours to parse
            self._tunnel()
            return True
        line_end = m.end()
        here = c.base + pos
        end = g.find_head_end(
            buf, max(line_end - 1, c.scan - here + pos if c.scan_at == here else 0)
        )
        if end < 0 or end - pos > self.config.max_head_bytes:
            if end >= 0 or c.avail > self.config.max_head_bytes:
                self.stats.parse_errors += 1
                c.pending = Flag.PARSE_ERROR
                size = self.config.max_head_bytes + 1  # cut where a stream fed in pieces would
                self._new_request(m.group(1), size, g.NO_FRAMING, cut=True)
                return True
            c.scan_at = here
            c.scan = c.base + max(len(buf) - 2, line_end - 1)
            return False
        framing = g.framing_headers(buf, line_end, end)
        if malformed:
            self.stats.malformed_request_lines += 1
        self._new_request(m.group(1), end - pos, framing, malformed=malformed)
        return True

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
        c = self._c
        c.begin(c.ts_at(c.base + c.pos))
        e = Entry(self._seq, method)
        e.ts_first = c.ts_first
        self.stats.requests += 1
        e.http09 = http09
        e.head = method == b"HEAD"
        e.upgrade = framing.upgrade
        e.expect_continue = framing.expect_continue
        if http09:
            c.msg_flags.add(Flag.HTTP09)
        if malformed:
            c.msg_flags.add(Flag.MALFORMED_REQUEST_LINE)
        c.started = True
        c.entry = e
        c.take(head_len)
        c.head_len = head_len
        self._order.append(e)
        self._awaiting.append(e)
        if cut:
            self._end_request()
            c.state = RESYNC
            return
        if framing.transfer_encoding:
            if framing.chunked:
                c.state = CHUNK_SIZE
                return
            # a request body cannot be close-delimited (RFC 9112 6.3): framing is unknown
            self.stats.parse_errors += 1
            c.msg_flags.add(Flag.PARSE_ERROR)
        elif framing.length_invalid:
            self.stats.parse_errors += 1
            c.msg_flags.add(Flag.PARSE_ERROR)
        elif framing.content_length:
            c.state = SIZED
            c.remaining = framing.content_length
            return
        self._end_request()

    def _end_request(self) -> None:
        """The request being read is complete."""
        c = self._c
        e = c.entry
        assert e is not None
        raw = c.raw()
        e.request = Request(
            raw, ts_first_ns=c.ts_first, ts_last_ns=c.ts_last(), head_len=min(c.head_len, len(raw))
        )
        e.flags |= c.msg_flags
        c.entry = None
        if c.state != RESYNC:
            c.state = HEAD
        if e.resp_done:
            if e.switched:
                self._tunnel()
        elif (e.connect or e.upgrade) and c.state == HEAD:
            c.state = PAUSED
            c.entry = None

    def _pause_overflow(self) -> None:
        """So many client bytes after CONNECT/Upgrade with no answer: it is a tunnel."""
        for e in self._awaiting:
            if e.connect or e.upgrade:
                e.flags.add(Flag.CONNECT if e.connect else Flag.UPGRADE)
                break
        self._tunnel()

    def _tunnel(self) -> None:
        """Stop parsing both directions; count what is left as tunnel bytes. What was left
        is kept in :attr:`tunnel_start` (client, server) for whoever speaks the new protocol
        (the assembler hands an ``Upgrade: h2c`` connection to the HTTP/2 parser)."""
        if self.tunnel_start is None and not self._tunnel_taken:
            c, s = self._c, self._s
            self.tunnel_start = (bytes(c.buf[c.pos :]), bytes(s.buf[s.pos :]))
        for side in (self._c, self._s):
            self.stats.tunnel_bytes += side.drop_all()
            side.state = TUNNEL

    # -- server side ------------------------------------------------------------------------
    def _step_server(self) -> bool:
        s = self._s
        st = s.state
        if s.pos >= len(s.buf) or st >= PAUSED:
            if st == RESYNC and s.avail:
                return self._resync(s, client=False)
            return False
        if st == HEAD:
            return self._server_head()
        return self._body(s, client=False)

    def _server_head(self) -> bool:
        s, c = self._s, self._c
        # A response with no request: wait if the client is mid-request, else orphan.
        if (
            not self._awaiting
            and not s.eof
            and self._hold
            and (
                c.avail
                and not c.eof
                and c.state in (HEAD, RESYNC)
                and s.avail <= self.config.max_held_response_bytes
            )
        ):
            return False
        buf, pos = s.buf, s.pos
        e = self._awaiting[0] if self._awaiting else None
        before = None
        if e is not None and s.ts_at(s.base + pos) < e.ts_first:
            # This response began before the request it would pair with: the capture missed
            # its request (e.g. a join mid-upload), so it is an orphan placed before that one.
            before, e = e, None
        if e is not None and e.http09 and not g.is_status_prefix(buf, pos):
            self._new_response(e, 0, status=0, http09=True)
            return True
        if buf[pos] in b"\r\n":  # stray line ends between (or before) responses
            m0 = g.BLANK_LINES.match(buf, pos)
            assert m0 is not None
            s.pos = m0.end()
            return True
        m = g.STATUS_LINE.match(buf, pos)
        if m is None:
            nl = buf.find(b"\n", pos)
            if nl < 0 and s.avail <= self.config.max_line_bytes and g.is_status_prefix(buf, pos):
                return False
            return self._to_resync(s)
        line_end = m.end()
        here = s.base + pos
        end = g.find_head_end(
            buf, max(line_end - 1, s.scan - here + pos if s.scan_at == here else 0)
        )
        if end < 0 or end - pos > self.config.max_head_bytes:
            if end >= 0 or s.avail > self.config.max_head_bytes:
                self.stats.parse_errors += 1
                s.pending = Flag.PARSE_ERROR
                size = self.config.max_head_bytes + 1  # cut where a stream fed in pieces would
                self._new_response(e, size, status=int(m.group(3)), cut=True, before=before)
                return True
            s.scan_at = here
            s.scan = s.base + max(len(buf) - 2, line_end - 1)
            return False
        framing = g.framing_headers(buf, line_end, end)
        self._new_response(e, end - pos, status=int(m.group(3)), framing=framing, before=before)
        return True

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
        s = self._s
        ts = s.ts_at(s.base + s.pos)
        if e is None:
            e = Entry(self._seq, b"")
            e.ts_first = ts
            e.request = Request(b"", ts_first_ns=ts, ts_last_ns=ts, head_len=0)
            e.flags.add(Flag.ORPHAN_RESPONSE)
            if before is not None and before in self._order:
                self._order.insert(self._order.index(before), e)
                self._awaiting.appendleft(e)
            else:
                self._order.append(e)
                self._awaiting.append(e)
        s.begin(ts)
        s.entry = e
        s.started = True
        s.take(head_len)
        s.head_len = head_len
        s.interim = 100 <= status < 200 and status != 101
        if s.interim:
            self.stats.interim_responses += 1
        else:
            self.stats.responses += 1
        if http09:
            s.msg_flags.add(Flag.HTTP09)
            s.state = CLOSE
            return
        if cut or framing is None:
            s.state = RESYNC
            self._end_response()
            return
        if status == 101:
            e.switched = True
            s.msg_flags.add(Flag.UPGRADE)
        elif e.connect and 200 <= status < 300:
            e.switched = True
            s.msg_flags.add(Flag.CONNECT)
        elif s.interim or status in (204, 304) or e.head:
            pass
        elif framing.transfer_encoding:
            if framing.chunked:
                s.state = CHUNK_SIZE
                return
            s.msg_flags.add(Flag.CLOSE_DELIMITED)
            s.state = CLOSE
            return
        elif framing.length_invalid:
            self.stats.parse_errors += 1
            s.msg_flags.add(Flag.PARSE_ERROR)
            s.msg_flags.add(Flag.CLOSE_DELIMITED)
            s.state = CLOSE
            return
        elif framing.content_length is not None:
            if framing.content_length:
                s.state = SIZED
                s.remaining = framing.content_length
                return
        else:
            s.msg_flags.add(Flag.CLOSE_DELIMITED)
            s.state = CLOSE
            return
        self._end_response()

    def _end_response(self) -> None:
        """The response being read is complete: interim ones wait for more, finals pair."""
        s, c = self._s, self._c
        e = s.entry
        assert e is not None
        raw = s.raw()
        resp = Response(
            raw, ts_first_ns=s.ts_first, ts_last_ns=s.ts_last(), head_len=min(s.head_len, len(raw))
        )
        s.entry = None
        if s.state != RESYNC:
            s.state = HEAD
        if s.interim:
            e.interim.append(resp)
            e.flags |= s.msg_flags
            return
        e.response = resp
        e.flags |= s.msg_flags
        e.resp_done = True
        if self._awaiting and self._awaiting[0] is e:
            self._awaiting.popleft()
        if e.switched:
            if e.request is not None:
                self._tunnel()
            else:  # the request is still arriving; the server already speaks another protocol
                self.stats.tunnel_bytes += s.drop_all()
                s.state = TUNNEL
            return
        if (
            c.state == PAUSED
            and c.entry is None
            and not any(x.connect or x.upgrade for x in self._awaiting if x.request is not None)
        ):
            c.state = HEAD
