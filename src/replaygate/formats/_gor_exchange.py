"""Exchanges to ``.gor`` records and back: which records carry an exchange, what the
header fields and our ``rg.*`` metadata mean for each writer, and the one-pass encoder the
writers use (:func:`exchange_bytes`). The record layer is :mod:`._gor_records`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from ..model import (
    ConnectionId,
    Exchange,
    Flag,
    HTTPMessage,
    Request,
    Response,
    new_exchange_id,
)
from ._gor_compat import META_VERSION as _META_VERSION
from ._gor_compat import upgrade
from ._gor_records import SEPARATOR, GorRecord, _quote, _record_id

META_VERSION = str(_META_VERSION)


def _int_field(extra: dict[str, str], key: str) -> int:
    """An integer metadata field; 0 when absent or not a plain decimal number."""
    v = extra.get(key, "")
    return int(v) if v.isascii() and v.isdigit() else 0


_CONNS: dict[str, ConnectionId | None] = {}


def _conn(text: str) -> ConnectionId | None:
    """ConnectionId.parse, memoised: keep-alive connections carry many exchanges."""
    c = _CONNS.get(text, False)
    if c is False:
        try:
            c = ConnectionId.parse(text)
        except ValueError:
            c = None
        if len(_CONNS) > 10_000:
            _CONNS.clear()
        _CONNS[text] = c
    assert c is None or isinstance(c, ConnectionId)
    return c


def _head(rec: GorRecord) -> int | None:
    """Responses that do not start with a status line (HTTP/0.9 replies) have no head."""
    return None if rec.payload[:5] == b"HTTP/" else 0


def _exchange_from_records(req: GorRecord, others: list[GorRecord]) -> Exchange:
    """Build an exchange from its records.

    Latencies mean different things depending on who wrote the file: replaygate and GoReplay
    before 1.3 write ``-1`` for requests and, for responses, request start -> response end;
    GoReplay 1.3+ (``input_raw.go``) writes for *every* message its own duration
    (``End - Start``). A request with a latency and without our ``rg.v`` marks the latter.
    """
    e = req.extra
    version = e.get("v")
    if version is not None and version != META_VERSION:
        upgrade(e, [r.extra for r in others])
    per_message = req.latency_ns is not None and version is None
    last = _int_field(e, "tl") if e else 0
    if not last and per_message and req.latency_ns is not None:
        last = req.ts_ns + req.latency_ns
    request = Request(req.payload, ts_first_ns=req.ts_ns, ts_last_ns=last or req.ts_ns)
    ex = Exchange(id=req.id, request=request)
    if e:  # replaygate's metadata (GoReplay's own files have none)
        if "conn" in e:
            ex.conn = _conn(e["conn"])
        if "sess" in e:
            ex.session = e["sess"]
        ex.seq = _int_field(e, "seq")
        if e.get("flags"):
            for f in e["flags"].split(","):
                try:
                    ex.flags.add(Flag(f))
                except ValueError:
                    ex.meta.setdefault("unknown_flags", "")
                    ex.meta["unknown_flags"] += f + ","
        if len(e) > 1:  # only rg.v: nothing more to look at
            for k, v in e.items():
                if k.startswith("m."):
                    ex.meta[k[2:]] = v
    for r in others:
        if r.type == 2:
            # GoReplay stores response start time and latency; last byte = start + latency
            # when we wrote it, GoReplay's own files have latency = request->response time.
            first = _int_field(r.extra, "tf") or r.ts_ns
            if r.latency_ns is None:
                last = r.ts_ns
            elif per_message or req.ts_ns + r.latency_ns < first:
                last = first + r.latency_ns  # the response's own duration
            else:
                last = req.ts_ns + r.latency_ns
            resp = Response(r.payload, ts_first_ns=first, ts_last_ns=last, head_len=_head(r))
            if r.extra.get("interim") == "1":
                ex.interim.append(resp)
            else:
                ex.response = resp
        elif r.type == 3:
            ex.replayed = Response(
                r.payload, ts_first_ns=r.ts_ns, ts_last_ns=r.ts_ns, head_len=_head(r)
            )
            ex.replay_ts_ns = r.ts_ns
            ex.replay_latency_ns = r.latency_ns
            if r.extra.get("err"):
                ex.replay_error = r.extra["err"]
                if not r.payload:
                    ex.replayed = None
    return ex


def exchange_records(ex: Exchange) -> list[GorRecord]:
    """The records that represent ``ex`` in a ``.gor`` file."""
    extra: dict[str, str] = {"v": META_VERSION}
    if ex.conn is not None:
        extra["conn"] = str(ex.conn)
    if ex.session is not None:
        extra["sess"] = ex.session
    if ex.seq:
        extra["seq"] = str(ex.seq)
    if ex.flags:
        extra["flags"] = ",".join(sorted(str(f) for f in ex.flags))
    if ex.request.ts_last_ns and ex.request.ts_last_ns != ex.request.ts_first_ns:
        extra["tl"] = str(ex.request.ts_last_ns)
    for k, v in ex.meta.items():
        extra["m." + k] = v
    recs = [GorRecord(1, ex.id, ex.request.ts_first_ns, None, ex.request.raw, extra)]
    for im in ex.interim:
        recs.append(
            GorRecord(2, ex.id, im.ts_first_ns, _lat(ex.request, im), im.raw, {"interim": "1"})
        )
    if ex.response is not None:
        r = ex.response
        rx = {"tf": str(r.ts_first_ns)} if r.ts_first_ns else {}
        recs.append(
            GorRecord(2, ex.id, r.ts_first_ns or r.ts_last_ns, _lat(ex.request, r), r.raw, rx)
        )
    if ex.replayed is not None or ex.replay_error is not None:
        payload = ex.replayed.raw if ex.replayed is not None else b""
        ts = ex.replay_ts_ns or (ex.replayed.ts_first_ns if ex.replayed is not None else 0)
        rx3 = {"err": ex.replay_error} if ex.replay_error else {}
        recs.append(GorRecord(3, ex.id, ts, ex.replay_latency_ns, payload, rx3))
    return recs


def exchange_bytes(ex: Exchange, *, metadata: bool = True) -> bytes:
    """``ex`` as ``.gor`` bytes: exactly ``b"".join(map(encode_record, exchange_records(ex)))``
    (records without their extras when ``metadata`` is false), built in one pass."""
    return b"".join(_exchange_parts(ex, metadata))


def _exchange_parts(ex: Exchange, metadata: bool) -> list[bytes]:
    """Header line, payload and separator of each record of ``ex``, in order (3 per record).

    The same records and fields as :func:`exchange_records` + :func:`encode_record`, without
    building a :class:`GorRecord` and an extras dict per record; the golden and property
    tests in ``tests/formats/test_gor.py`` hold the two paths to the same bytes."""
    rid = _record_id(ex.id)
    req = ex.request
    head = f"1 {rid} {req.ts_first_ns} -1"
    if metadata:
        head += " rg.v=" + META_VERSION
        if ex.conn is not None:
            head += " rg.conn=" + _conn_field(ex.conn)
        if ex.session is not None:
            head += " rg.sess=" + _quote(ex.session)
        if ex.seq:
            head += f" rg.seq={ex.seq}"
        if ex.flags:
            head += " rg.flags=" + _quote(",".join(sorted(str(f) for f in ex.flags)))
        if req.ts_last_ns and req.ts_last_ns != req.ts_first_ns:
            head += f" rg.tl={req.ts_last_ns}"
        for k, v in ex.meta.items():
            head += f" rg.m.{k}={_quote(v)}"
    parts = [(head + "\n").encode("utf-8", "surrogatepass"), req.raw, SEPARATOR]
    for im in ex.interim:
        lat = _lat(req, im)
        head = f"2 {rid} {im.ts_first_ns} {-1 if lat is None else lat}"
        head += " rg.interim=1\n" if metadata else "\n"
        parts += (head.encode("utf-8", "surrogatepass"), im.raw, SEPARATOR)
    r = ex.response
    if r is not None:
        lat = _lat(req, r)
        head = f"2 {rid} {r.ts_first_ns or r.ts_last_ns} {-1 if lat is None else lat}"
        if metadata and r.ts_first_ns:
            head += f" rg.tf={r.ts_first_ns}"
        parts += ((head + "\n").encode("utf-8", "surrogatepass"), r.raw, SEPARATOR)
    if ex.replayed is not None or ex.replay_error is not None:
        rp = ex.replayed
        ts = ex.replay_ts_ns or (rp.ts_first_ns if rp is not None else 0)
        lat = ex.replay_latency_ns
        head = f"3 {rid} {ts} {-1 if lat is None or lat < 0 else lat}"
        if metadata and ex.replay_error:
            head += " rg.err=" + _quote(ex.replay_error)
        parts += (
            (head + "\n").encode("utf-8", "surrogatepass"),
            rp.raw if rp is not None else b"",
            SEPARATOR,
        )
    return parts


WholeEncoder = Callable[[bytes, int, int, bytes, int, int], list[bytes]]


def whole_encoder(
    conn: ConnectionId | None, meta: Mapping[str, str], metadata: bool = True
) -> WholeEncoder:
    """An encoder for the common exchange of one connection: a request and its final
    response, no interim responses, no flags, no session, the connection's ``meta``.

    ``encode(req_raw, req_first_ns, req_last_ns, resp_raw, resp_ns, seq)`` gives exactly
    :func:`_exchange_parts` of that exchange (with a fresh id; the response's first and last
    byte both at ``resp_ns``); what does not change within a connection is encoded once
    here. The proxy's loop encodes this way without building an :class:`Exchange`; a
    property test holds it to :func:`_exchange_parts`."""
    conn_part = ""
    tail = "\n"
    if metadata:
        conn_part = " rg.v=" + META_VERSION
        if conn is not None:
            conn_part += " rg.conn=" + _conn_field(conn)
        tail = "".join(f" rg.m.{k}={_quote(v)}" for k, v in meta.items()) + "\n"
    sep = SEPARATOR

    def encode(
        req_raw: bytes, req_first: int, req_last: int, resp_raw: bytes, resp_ns: int, seq: int
    ) -> list[bytes]:
        rid = new_exchange_id()  # 40 hex digits: nothing for _record_id to replace
        head = f"1 {rid} {req_first} -1{conn_part}"
        if metadata:
            if seq:
                head += f" rg.seq={seq}"
            if req_last and req_last != req_first:
                head += f" rg.tl={req_last}"
        lat = resp_ns - req_first if req_first and resp_ns else -1
        r = str(resp_ns)  # written twice: converted once
        if metadata and resp_ns:
            head2 = f"2 {rid} {r} {lat if lat >= 0 else -1} rg.tf={r}\n"
        else:
            head2 = f"2 {rid} {r} {lat if lat >= 0 else -1}\n"
        return [
            (head + tail).encode("utf-8", "surrogatepass"),
            req_raw,
            sep,
            head2.encode(),
            resp_raw,
            sep,
        ]

    return encode


@lru_cache(maxsize=4096)  # one connection carries many exchanges
def _conn_field(conn: ConnectionId) -> str:
    return _quote(str(conn))


def _lat(req: HTTPMessage, resp: HTTPMessage) -> int | None:
    if not req.ts_first_ns or not resp.ts_last_ns:
        return None
    lat = resp.ts_last_ns - req.ts_first_ns
    return lat if lat >= 0 else None
