"""Sans-I/O traffic assembler: TCP segments of many connections in, HTTP exchanges out.

One :class:`TrafficAssembler` serves pcap files and live capture alike. Per connection it keeps
two :class:`~replaygate.protocol.tcp.StreamReassembler` and one
:class:`~replaygate.protocol.http1.HTTP1StreamParser`, decides which side is the client, and
closes the connection on FIN from both sides, on RST, on idle expiry or when ``max_flows`` is
reached (oldest idle first). Everything that ends badly is counted in :class:`AssemblerStats`.

Which side is the client, in order of trust: who sent the SYN (or the SYN-ACK); the configured
``server_ports``; which side's first bytes are a request line or a status line (or a TLS
ClientHello or ServerHello); well-known HTTP ports; the lower port number.

A connection seen without its SYN is counted in ``flows_midstream``; its exchanges are flagged
``MIDSTREAM`` only when bytes had to be skipped to find the first message (a join that lands
on a message boundary loses nothing). TLS, SSH and HTTP/2 connections are recognised by their
first bytes and only counted (``non_http_flows``/``non_http_bytes``; TLS ones also in
``tls_flows``), as are connections whose parser found no HTTP/1 message in their first MiB.

With ``AssemblerConfig.tls`` (a key log), a connection whose first bytes are a TLS record
goes through a :class:`~replaygate.protocol.tls.TLSConnection` first: its decrypted
application data feeds the same HTTP/1 parser, and its exchanges carry ``meta["scheme"] =
"https"``, the SNI, version, cipher suite and ALPN (``tls.*``). Sessions that cannot be
decrypted are counted by reason in ``stats.tls`` (``tls_<reason>`` in :meth:`as_dict`).
Records waiting for a key that a live capture has not read yet are retried by
:meth:`TrafficAssembler.retry_tls` and given up after ``TLSConfig.key_wait_s``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from ..model import ConnectionId, Exchange, Flag
from . import _http1_grammar as g
from ._assembler_config import AssemblerConfig, AssemblerStats
from .http1 import HTTP1StreamParser
from .http2 import HTTP2Parser, looks_like_preface, looks_like_settings
from .segment import TcpSegment
from .tcp import DATA, EOF, GAP, Event, StreamReassembler
from .tls import Plain, TLSConnection, TLSSessionCache, looks_like_tls

__all__ = ["AssemblerConfig", "AssemblerStats", "TrafficAssembler"]

_WELL_KNOWN = frozenset(
    {80, 81, 591, 3000, 3128, 5000, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 9000, 9090}
)
# First bytes that are certainly not HTTP/1 from a client: TLS records, SSH, HTTP/2 preface.
_NOT_HTTP = (b"\x16\x03", b"\x80", b"SSH-")
# A connection whose parser skipped this much without finding any message stops being parsed.
_GIVE_UP_BYTES = 1 << 20


_Endpoint = tuple[str, int]
_Key = tuple[_Endpoint, _Endpoint, tuple[int, ...]]


class _Flow:
    __slots__ = (
        "client",
        "client_isn",
        "conn",
        "first_ts",
        "key",
        "last_ts",
        "non_http",
        "parser",
        "rs_client",
        "rs_server",
        "syn_seen",
        "tls",
    )

    def __init__(self, key: _Key, client: _Endpoint, server: _Endpoint, ts: int) -> None:
        self.key = key
        self.client = client
        self.conn = ConnectionId(client[0], client[1], server[0], server[1])
        self.first_ts = ts
        self.last_ts = ts
        self.rs_client: StreamReassembler | None = None
        self.rs_server: StreamReassembler | None = None
        self.parser: HTTP1StreamParser | HTTP2Parser | None = None
        self.non_http = False
        self.syn_seen = False
        self.client_isn: int | None = None
        self.tls: TLSConnection | None = None


class TrafficAssembler:
    """Feed TCP segments in capture order; get the exchanges that completed."""

    ack_fast_path = True  # tests compare against the general path
    data_fast_path = True  # (both)

    def __init__(self, config: AssemblerConfig | None = None) -> None:
        self.config = config or AssemblerConfig()
        self.stats = AssemblerStats()
        self._flows: OrderedDict[_Key, _Flow] = OrderedDict()
        # recently closed, for late segments: key -> (last capture time, client ISN or -1)
        self._closed: OrderedDict[_Key, tuple[int, int]] = OrderedDict()
        self._idle_ns = int(self.config.idle_timeout_s * 1e9)
        self._next_check = 0
        self._last_key: _Key | None = None
        self._tls_cache = TLSSessionCache()
        self._tls_waiting: dict[_Key, _Flow] = {}
        # connections that ended while their records wait for a key (live: the client has
        # not written its key log line yet), by id: closed, finished when keys come or time
        # runs out
        self._tls_closing: dict[int, tuple[_Flow, bool]] = {}
        self._final = False

    # -- public API -------------------------------------------------------------------------
    def feed(self, seg: TcpSegment) -> list[Exchange]:
        """One captured segment; returns exchanges completed by it (or by idle expiry)."""
        st = self.stats
        st.segments += 1
        st.payload_bytes += len(seg.payload)
        a: _Endpoint = (seg.src, seg.sport)
        b: _Endpoint = (seg.dst, seg.dport)
        key: _Key = (a, b, seg.vlan) if a < b else (b, a, seg.vlan)
        out: list[Exchange] = []
        flows = self._flows
        if seg.ts_ns >= self._next_check:  # idle expiry by capture time, checked at most 1/s
            self._next_check = seg.ts_ns + min(self._idle_ns, 1_000_000_000)
            if flows and next(iter(flows.values())).last_ts < seg.ts_ns - self._idle_ns:
                out += self.expire(seg.ts_ns)
        flow = flows.get(key)
        flags = seg.flags
        if flags == 0x10 and flow is not None and not seg.payload and self.ack_fast_path:
            # A bare ACK of a tracked connection (every other packet on a keep-alive link):
            # nothing to reassemble unless the peer holds out-of-order bytes it acknowledges,
            # or this side has not been seen yet (its first segment sets its sequence base).
            rs, peer = (
                (flow.rs_client, flow.rs_server)
                if a == flow.client
                else (flow.rs_server, flow.rs_client)
            )
            if rs is not None and peer is not None and rs.started and not peer.held_bytes:
                rs.stats.segments += 1
                if key != self._last_key:
                    flows.move_to_end(key)
                    self._last_key = key
                flow.last_ts = seg.ts_ns
                return out
        syn = bool(flags & 0x02)
        if (
            flow is not None
            and syn
            and not flags & 0x10
            and flow.client == a
            and flow.client_isn is not None
            and flow.client_isn != seg.seq
        ):
            out += self._close(flow)  # port reuse: a new connection on the same 4-tuple
            flow = None
        if flow is None:
            if not seg.payload and not syn:
                return out  # a bare ACK/FIN/RST of a connection we do not track
            gone = self._closed.get(key)
            if gone is not None and (not syn or (flags & 0x10) or gone[1] == seg.seq):
                # a late segment of a closed connection, or its SYN (or SYN-ACK)
                # retransmitted: the same ISN is the same connection, not a new one
                st.late_segments += 1
                st.retransmitted_bytes += len(seg.payload)
                return out
            while len(flows) >= self.config.max_flows:
                st.flows_evicted += 1
                out += self._close(next(iter(flows.values())))
            flow = self._new_flow(key, seg, a, b)
        elif key != self._last_key:
            flows.move_to_end(key)
        self._last_key = key
        flow.last_ts = seg.ts_ns
        from_client = a == flow.client
        out += self._segment(flow, seg, from_client, syn)
        return out

    def feed_batch(self, segs: Iterable[TcpSegment]) -> list[Exchange]:
        out: list[Exchange] = []
        for seg in segs:
            out += self.feed(seg)
        return out

    def expire(self, now_ns: int) -> list[Exchange]:
        """Flush connections idle for ``idle_timeout_s`` before ``now_ns`` (capture time)."""
        waiting = self._tls_waiting or self._tls_closing
        out: list[Exchange] = self.retry_tls(now_ns) if waiting else []
        limit = now_ns - self._idle_ns
        flows = self._flows
        while flows:
            flow = next(iter(flows.values()))
            if flow.last_ts >= limit:
                break
            self.stats.flows_expired += 1
            if flow.parser is not None and flow.parser.has_partial:
                self.stats.flows_expired_incomplete += 1
            out += self._close(flow)
        closed = self._closed
        while closed:
            k, (ts, _) = next(iter(closed.items()))
            if ts >= limit:
                break
            del closed[k]
        return out

    def retry_tls(self, now_ns: int) -> list[Exchange]:
        """The key log grew, or time passed (capture time): decrypt the TLS records that
        waited for their key, and give up on those that waited ``key_wait_s``."""
        out: list[Exchange] = []
        for key, flow in list(self._tls_waiting.items()):
            tls = flow.tls
            if tls is None or not tls.waiting:
                del self._tls_waiting[key]
                continue
            out += self._deliver_tls(flow, tls.retry(now_ns))
        for fid, (flow, ended) in list(self._tls_closing.items()):
            tls = flow.tls
            assert tls is not None
            out += self._deliver_tls(flow, tls.retry(now_ns))
            if not tls.waiting:
                del self._tls_closing[fid]
                out += self._finish(flow, ended)
        return out

    def flush(self) -> list[Exchange]:
        """End of input: close every connection, returning everything outstanding."""
        out: list[Exchange] = []
        self._final = True
        try:
            while self._flows:
                out += self._close(next(iter(self._flows.values())))
            while self._tls_closing:
                _, (flow, ended) = self._tls_closing.popitem()
                out += self._finish(flow, ended)
        finally:
            self._final = False
        self._closed.clear()
        return out

    # -- flows ------------------------------------------------------------------------------
    def _new_flow(self, key: _Key, seg: TcpSegment, a: _Endpoint, b: _Endpoint) -> _Flow:
        st = self.stats
        client_is_a = self._client_is_src(seg)
        client, server = (a, b) if client_is_a else (b, a)
        flow = _Flow(key, client, server, seg.ts_ns)
        flow.rs_client = StreamReassembler(self.config.max_buffered_bytes)
        flow.rs_server = StreamReassembler(self.config.max_buffered_bytes)
        self._flows[key] = flow
        st.flows_total += 1
        st.flows_active = len(self._flows)
        if not seg.flags & 0x02:
            st.flows_midstream += 1
        return flow

    def _client_is_src(self, seg: TcpSegment) -> bool:
        flags = seg.flags
        if flags & 0x02:
            return not flags & 0x10  # SYN: the client; SYN-ACK: the server
        ports = self.config.server_ports
        if ports:
            if seg.dport in ports:
                return True
            if seg.sport in ports:
                return False
        p = seg.payload
        if p.startswith(b"HTTP/"):
            return False
        if len(p) > 5 and p[0] == 0x16 and p[1] == 3 and p[5] in (1, 2):
            return p[5] == 1  # a TLS ClientHello (from the client) or ServerHello
        if g.REQUEST_LINE.match(p) is not None:
            return True
        if (seg.dport in _WELL_KNOWN) != (seg.sport in _WELL_KNOWN):
            return seg.dport in _WELL_KNOWN
        return seg.dport <= seg.sport

    def _segment(
        self, flow: _Flow, seg: TcpSegment, from_client: bool, syn: bool
    ) -> list[Exchange]:
        rs = flow.rs_client if from_client else flow.rs_server
        peer = flow.rs_server if from_client else flow.rs_client
        assert rs is not None and peer is not None
        flags = seg.flags
        parser = flow.parser
        if (
            not flags & 0x07  # no SYN, FIN or RST
            and type(parser) is HTTP1StreamParser
            and flow.tls is None
            and not flow.non_http
            and not (flags & 0x10 and peer.held_bytes)
            and self.data_fast_path
            and rs.in_order(seg.seq, seg.payload)
        ):
            # in-order data of an HTTP/1 connection: straight to its parser
            data = seg.payload
            ts = flow.last_ts
            got = parser.client_data(data, ts) if from_client else parser.server_data(data, ts)
            now: HTTP1StreamParser | HTTP2Parser = parser
            if parser.tunnel_start is not None:
                now = self._h2c_upgrade(flow, parser, got, ts) or parser
            if not got and now.exchanges_emitted == 0:
                self._give_up_check(flow, now)
            return self._count(got) if got else got
        out: list[Exchange] = []
        if syn:
            flow.syn_seen = True
            if from_client and not flags & 0x10:
                flow.client_isn = seg.seq
        if flags & 0x10 and peer.held_bytes:
            ev = peer.ack(seg.ack)
            if ev:
                out += self._deliver(flow, not from_client, ev)
        if flags & 0x04:  # RST: the connection is over in both directions
            out += self._deliver(flow, from_client, rs.segment(seg.seq, seg.payload, syn=syn))
            self.stats.flows_reset += 1
            out += self._close(flow, ended=True)
            return out
        ev = rs.segment(seg.seq, seg.payload, syn=syn, fin=bool(flags & 0x01))
        if ev:
            out += self._deliver(flow, from_client, ev)
        if rs.finished and peer.finished and flow.key in self._flows:
            self.stats.flows_closed += 1
            out += self._close(flow, ended=True)
        return out

    def _deliver(self, flow: _Flow, from_client: bool, events: list[Event]) -> list[Exchange]:
        if flow.tls is not None:
            return self._deliver_tls(flow, flow.tls.feed(from_client, events, flow.last_ts))
        if flow.non_http:
            for kind, value in events:
                if kind == DATA:
                    assert isinstance(value, bytes)
                    self.stats.non_http_bytes += len(value)
            return []
        parser = flow.parser
        if parser is None:
            first = next((v for k, v in events if k == DATA), None)
            if isinstance(first, bytes) and looks_like_tls(first, from_client):
                self.stats.tls_flows += 1
                tls_config = self.config.tls
                if tls_config is not None:
                    flow.tls = TLSConnection(
                        tls_config, self.stats.tls, self._tls_cache, parse_http2=True
                    )
                    return self._deliver(flow, from_client, events)
            if from_client and isinstance(first, bytes) and first.startswith(_NOT_HTTP):
                flow.non_http = True
                self.stats.non_http_flows += 1
                return self._deliver(flow, from_client, events)
            if isinstance(first, bytes) and (
                looks_like_preface(first) if from_client else looks_like_settings(first)
            ):
                parser = flow.parser = self._http2(flow, "http")
            else:
                parser = flow.parser = HTTP1StreamParser(
                    flow.conn, config=self.config.parser, id_seed=str(flow.first_ts)
                )
        out: list[Exchange] = []
        ts = flow.last_ts
        if from_client:
            on_data, on_gap, on_eof = parser.client_data, parser.client_gap, parser.client_eof
        else:
            on_data, on_gap, on_eof = parser.server_data, parser.server_gap, parser.server_eof
        for kind, value in events:
            if kind == DATA:
                assert isinstance(value, bytes)
                out += on_data(value, ts)
            elif kind == GAP:
                assert isinstance(value, int)
                out += on_gap(value, ts)
            elif kind == EOF:
                out += on_eof(ts)
            if isinstance(parser, HTTP1StreamParser) and parser.tunnel_start is not None:
                h2 = self._h2c_upgrade(flow, parser, out, ts)
                if h2 is not None:  # the rest of the connection is HTTP/2
                    parser = h2
                    on_data = h2.client_data if from_client else h2.server_data
                    on_gap = h2.client_gap if from_client else h2.server_gap
                    on_eof = h2.client_eof if from_client else h2.server_eof
        if parser.exchanges_emitted == 0 and not out:
            self._give_up_check(flow, parser)
        return self._count(out)

    def _give_up_check(self, flow: _Flow, parser: HTTP1StreamParser | HTTP2Parser) -> None:
        """A parser that skipped so much without finding any message: not HTTP after all."""
        if parser.pending == 0 and parser.stats.skipped_bytes > _GIVE_UP_BYTES:
            flow.non_http = True
            self.stats.non_http_flows += 1

    def _deliver_tls(self, flow: _Flow, items: list[Plain]) -> list[Exchange]:
        """Decrypted events of a TLS connection into its HTTP/1 parser."""
        tls = flow.tls
        assert tls is not None
        if self._flows.get(flow.key) is flow:
            if tls.waiting:
                self._tls_waiting[flow.key] = flow
            else:
                self._tls_waiting.pop(flow.key, None)
        if not items:
            return []
        parser = flow.parser
        if parser is None:
            if tls.http2:  # ALPN h2
                parser = flow.parser = self._http2(flow, None)
            else:
                parser = flow.parser = HTTP1StreamParser(
                    flow.conn, config=self.config.parser, id_seed=str(flow.first_ts)
                )
        out: list[Exchange] = []
        for from_client, kind, value, ts in items:
            if kind == DATA:
                assert isinstance(value, bytes)
                out += (parser.client_data if from_client else parser.server_data)(value, ts)
            elif kind == GAP:
                assert isinstance(value, int)
                out += (parser.client_gap if from_client else parser.server_gap)(value, ts)
            elif kind == EOF:
                out += (parser.client_eof if from_client else parser.server_eof)(ts)
        return self._count(out, flow)

    def _h2c_upgrade(
        self, flow: _Flow, parser: HTTP1StreamParser, out: list[Exchange], ts: int
    ) -> HTTP2Parser | None:
        """``Upgrade: h2c`` answered 101: the upgrade request becomes stream 1 of a new
        HTTP/2 parser (its 101 an interim response), which reads the bytes after the 101."""
        rest = parser.take_tunnel_start()
        assert rest is not None
        up = next(
            (
                e
                for e in out
                if Flag.UPGRADE in e.flags
                and e.response is not None
                and e.response.status == 101
                and "h2c" in [v.lower() for v in e.request.header_values("upgrade")]
                and (e.response.header("upgrade") or "").strip().lower() == "h2c"
            ),
            None,
        )
        if up is None:
            return None
        out.remove(up)
        self._parser_stats(parser)
        self.stats.tunnel_bytes -= len(rest[0]) + len(rest[1])
        h2 = flow.parser = self._http2(flow, up.meta.get("scheme", "http"))
        assert up.response is not None
        h2.upgraded(up.request, up.response)
        self.stats.http2["http2_upgrades"] += 1
        if rest[0]:
            out += h2.client_data(rest[0], ts)
        if rest[1]:
            out += h2.server_data(rest[1], ts)
        return h2

    def _http2(self, flow: _Flow, scheme: str | None) -> HTTP2Parser:
        self.stats.http2_flows += 1
        return HTTP2Parser(flow.conn, id_seed=str(flow.first_ts), scheme=scheme)

    def _close(self, flow: _Flow, *, ended: bool = False) -> list[Exchange]:
        """Flush one connection: remaining bytes, gaps, then the parser's outstanding work.

        ``ended``: the connection really ended (RST, or FIN both ways), so a body delimited by
        the close is complete; otherwise (expiry, eviction, end of input) it is truncated."""
        out: list[Exchange] = []
        if self._flows.pop(flow.key, None) is None:
            return out
        for from_client, rs in ((True, flow.rs_client), (False, flow.rs_server)):
            if rs is not None:
                ev = rs.flush()
                if ev:
                    out += self._deliver(flow, from_client, ev)
                s = rs.stats
                st = self.stats
                st.gaps += s.gaps
                st.gap_bytes += s.gap_bytes
                st.retransmitted_bytes += s.retransmitted_bytes
                st.out_of_order_segments += s.out_of_order_segments
        isn = flow.client_isn if flow.client_isn is not None else -1
        self._closed[flow.key] = (flow.last_ts, isn)
        if len(self._closed) > self.config.max_flows:
            self._closed.popitem(last=False)
        self.stats.flows_active = len(self._flows)
        if flow.tls is not None:
            self._tls_waiting.pop(flow.key, None)
            if flow.tls.waiting and not self._final:
                self._tls_closing[id(flow)] = (flow, ended)
                return out
        return out + self._finish(flow, ended)

    def _finish(self, flow: _Flow, ended: bool) -> list[Exchange]:
        """The second half of closing: the TLS layer's last word, then the parser's."""
        out: list[Exchange] = []
        if flow.tls is not None:
            out += self._deliver_tls(flow, flow.tls.close())
        parser = flow.parser
        if parser is not None:
            if ended and not flow.non_http:
                out += self._count(parser.client_eof(flow.last_ts), flow)
                out += self._count(parser.server_eof(flow.last_ts), flow)
            out += self._count(parser.close(flow.last_ts), flow)
            self._parser_stats(parser)
            ps = parser.stats
            if (
                parser.exchanges_emitted == 0
                and not flow.non_http
                and (ps.skipped_bytes or ps.tunnel_bytes)
            ):
                self.stats.non_http_flows += 1
        return out

    def _parser_stats(self, parser: HTTP1StreamParser | HTTP2Parser) -> None:
        ps = parser.stats
        st = self.stats
        st.skipped_bytes += ps.skipped_bytes
        st.tunnel_bytes += ps.tunnel_bytes
        st.resyncs += ps.resyncs
        st.parse_errors += ps.parse_errors
        st.malformed_request_lines += ps.malformed_request_lines
        if isinstance(parser, HTTP2Parser):
            st.http2.update(parser.counts)

    def _count(self, exchanges: list[Exchange], flow: _Flow | None = None) -> list[Exchange]:
        st = self.stats
        tls_meta = (
            flow.tls.meta() if exchanges and flow is not None and flow.tls is not None else None
        )
        for ex in exchanges:
            if tls_meta is not None:
                ex.meta.update(tls_meta)
            if ex.complete:
                st.exchanges_complete += 1
            else:
                st.exchanges_incomplete += 1
            if Flag.NO_RESPONSE in ex.flags:
                st.requests_without_response += 1
            if Flag.ORPHAN_RESPONSE in ex.flags:
                st.orphan_responses += 1
        return exchanges
