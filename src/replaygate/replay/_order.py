"""Happens-before order from the recording (``--order``), sans-I/O: no clock, no sockets.

The rule (``--order recorded``, the default): if, in the recording, exchange A's response
finished before exchange B's request began (``A.end <= B.start``), B is not sent before A has
finished in the replay. Exchanges that overlapped in the recording may overlap in the replay.
That keeps every dependency the recording can show (ids, cookies, tokens, accounts, whatever
carried it) and the concurrency production had, without knowing the application.

How it stays cheap: exchanges are taken in input order (recordings are written in request
order or in completion order; in both, every A with ``A.end <= B.start`` comes before B). The
gate keeps the exchanges it let go and that have not finished in a min-heap by original end
time. B may go when the smallest original end among them is ``> B.start``: one heap peek per
request, one push and an amortised pop per completion. Finished entries are dropped lazily
and the heap is compacted when they pile up, so memory follows what is in flight.

Exchanges with no recorded end (request-only recordings, ``no_response``) cannot order
anything across sessions: they are ordered within their session (the original connection or
the recorded session), which is what the wire itself guarantees (HTTP/1 sends the next
request on a connection after the previous answer), and later exchanges of that session wait
for them. With neither an end nor a session (GoReplay's request-only files) nothing shows a
dependency and nothing waits: ``--order sessions`` orders such recordings per user.

``--order sessions``: each exchange waits for the previous one of its *user session*, and for
the exchange whose original response issued a value it carries (a cookie, a token, an id the
correlation engine learns). User sessions follow users, not connections: an exchange's keys
(its connection, its credentials: Basic user, bearer token subject, long cookie values, or
``--session-key``) join every session that shares one, so a reconnect never splits a user, and
the request that created the credentials joins the session of the requests that use them.
``--order none``: no waiting at all (the old behaviour).

A request that carries a value learned from a response waits for that response: in
``recorded`` mode because the recording shows the response finished first, in ``sessions``
mode through the issuer table.

The engine calls :meth:`OrderGate.prepare` for the next exchange, :meth:`OrderGate.ready` until
it is true (re-checked when something finishes), :meth:`OrderGate.begin` when it lets it go,
and :meth:`OrderGate.finish` when every copy has an answer *or an error*: a failed or timed
out exchange has finished too, so nothing waits forever.
"""

from __future__ import annotations

import base64
import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

import orjson

from ..errors import ConfigError
from ..model import Exchange, Flag

__all__ = ["ORDERS", "OrderGate", "OrderItem", "carried_values", "user_keys"]

ORDERS = ("none", "sessions", "recorded")

IssuedFn = Callable[[Exchange], Iterable[str]]


class OrderItem:
    """One exchange as the gate sees it: original start/end (ns), what it waits for."""

    __slots__ = ("blocked_at", "deps", "done", "end", "left", "seq", "start")

    def __init__(self, seq: int, start: int, end: int | None) -> None:
        self.seq = seq
        self.start = start
        self.end = end
        self.done = False
        self.deps: list[OrderItem] | None = None  # explicit predecessors (chains, issuers)
        self.left = 1  # copies (targets, baseline) still to answer
        self.blocked_at = 0  # when it was first found not ready (engine clock), 0 = never

    def __repr__(self) -> str:
        return f"<OrderItem {self.seq} {self.start}..{self.end} {'done' if self.done else ''}>"


class OrderGate:
    """Decides when each exchange may be sent. One per replay engine (one event loop)."""

    def __init__(
        self,
        mode: str = "recorded",
        *,
        session_key: str | None = None,
        issued: IssuedFn | None = None,
        max_keys: int = 200_000,
    ) -> None:
        if mode not in ORDERS:
            raise ConfigError(f"--order: expected one of {', '.join(ORDERS)}, got {mode!r}")
        self.mode = mode
        self.session_key = session_key
        self._recorded = mode == "recorded"
        self._sessions_mode = mode == "sessions"
        self._issued = issued if self._sessions_mode else None
        self._heap: list[tuple[int, int, OrderItem]] = []
        self._in_flight = 0
        self._seq = 0
        # --loop: each pass is shifted after everything before it
        self._pass: str | None = None
        self._shift = 0
        self._max_t = 0
        self._max_start = 0
        self.inversions = 0  # input not in a causal order: a predecessor came after
        # recorded mode: sessions whose last exchange has no recorded end
        self._open: dict[object, OrderItem] = {}
        # sessions mode: user sessions (keys joined) and issued values
        self._users = _UserSessions(max_keys)
        self._issuers: OrderedDict[str, tuple[OrderItem, str | None]] = OrderedDict()
        self._max_keys = max_keys

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    # -- the engine's calls ----------------------------------------------------------------
    def prepare(self, ex: Exchange) -> OrderItem:
        """The next exchange in input order (call :meth:`begin` on it before the next one)."""
        start = ex.request.ts_first_ns
        resp = ex.response
        end: int | None = None
        flags = ex.flags
        if resp is not None and not (flags and Flag.NO_RESPONSE in flags):
            e = resp.ts_last_ns
            if e and e >= start:
                end = e
        meta = ex.meta
        if meta:
            p = meta.get("loop")
            if p != self._pass:  # a new --loop pass starts after everything before it
                self._pass = p
                if p is not None:
                    self._shift = self._max_t + 1 - start
        if self._shift:
            start += self._shift
            if end is not None:
                end += self._shift
        self._seq += 1
        item = OrderItem(self._seq, start, end)
        t = end if end is not None else start
        if t > self._max_t:
            self._max_t = t
        if start > self._max_start:
            self._max_start = start
        elif end is not None and end <= self._max_start and start < self._max_start:
            self.inversions += 1  # it should have preceded something already let go
        if self._recorded:
            if self._open or end is None:
                self._chain_open(ex, item)
        elif self._sessions_mode:
            self._chain_user(ex, item)
        return item

    def ready(self, item: OrderItem) -> bool:
        """May ``item`` go now? (Cheap; called again after each completion while it waits.)"""
        deps = item.deps
        while deps:  # None or a list
            if not deps[-1].done:
                return False
            deps.pop()
        if self._recorded:
            heap = self._heap
            while heap:
                top = heap[0]
                if top[2].done:
                    heapq.heappop(heap)
                    continue
                return top[0] > item.start
        return True

    def admit(self, item: OrderItem, copies: int = 1) -> bool:
        """:meth:`ready` then :meth:`begin` in one call (the engine's hot path)."""
        deps = item.deps
        while deps:  # None or a list
            if not deps[-1].done:
                return False
            deps.pop()
        item.left = copies
        if self._recorded:
            heap = self._heap
            while heap:
                top = heap[0]
                if top[2].done:
                    heapq.heappop(heap)
                    continue
                if top[0] <= item.start:
                    return False
                break
            end = item.end
            if end is not None:
                heapq.heappush(heap, (end, item.seq, item))
                self._in_flight += 1
                if len(heap) > 4 * self._in_flight + 1024:
                    self._compact()
        return True

    def _compact(self) -> None:
        """Finished entries piled up under a long one in flight: drop them."""
        self._heap = [h for h in self._heap if not h[2].done]
        heapq.heapify(self._heap)

    def begin(self, item: OrderItem, copies: int = 1) -> None:
        """``item`` is let go; it finishes after ``copies`` calls to :meth:`finish`."""
        item.left = copies
        if self._recorded and item.end is not None:
            heap = self._heap
            heapq.heappush(heap, (item.end, item.seq, item))
            self._in_flight += 1
            if len(heap) > 4 * self._in_flight + 1024:
                self._compact()

    def finish(self, item: OrderItem) -> bool:
        """One copy of ``item`` has its answer (or error); True when the item is finished."""
        item.left -= 1
        if item.left > 0 or item.done:
            return False
        item.done = True
        if self._recorded and item.end is not None:
            self._in_flight -= 1
        return True

    # -- chains ----------------------------------------------------------------------------
    def _chain_open(self, ex: Exchange, item: OrderItem) -> None:
        """recorded mode: order within the session around exchanges with no recorded end."""
        key: object = ex.session or ex.conn
        if key is None:
            return  # no end, no session: nothing shows a dependency (GoReplay's request files)
        prev = self._open.get(key)
        if prev is not None:
            if not prev.done:
                item.deps = [prev]
            if item.end is not None or prev.done:
                del self._open[key]
        if item.end is None:
            self._open[key] = item
            if len(self._open) > self._max_keys:
                for k in [k for k, v in self._open.items() if v.done]:
                    del self._open[k]
                while len(self._open) > self._max_keys:
                    del self._open[next(iter(self._open))]

    def _chain_user(self, ex: Exchange, item: OrderItem) -> None:
        """sessions mode: wait for the user's previous exchange and for the issuers."""
        keys = user_keys(ex, self.session_key)
        joined: list[str] = []  # keys of the issuers' sessions
        issuers = self._issuers
        if issuers:
            for v in carried_values(ex):
                hit = issuers.get(v)
                if hit is not None:
                    it, k = hit
                    if not it.done:
                        _add_dep(item, it)
                    if k is not None:
                        joined.append(k)
        sid, tails = self._users.join(keys, joined)
        for t in tails:
            if not t.done:
                _add_dep(item, t)
        self._users.set_tail(sid, item)
        if self._issued is not None and ex.response is not None:
            for v in self._issued(ex):
                if len(v) < 3:
                    continue
                issuers.pop(v, None)
                issuers[v] = (item, keys[0] if keys else None)
            while len(issuers) > self._max_keys:
                del issuers[next(iter(issuers))]


def _add_dep(item: OrderItem, dep: OrderItem) -> None:
    if item.deps is None:
        item.deps = [dep]
    elif dep not in item.deps:
        item.deps.append(dep)


class _UserSessions:
    """Keys -> user session ids; sessions that share a key are joined (smaller into larger).
    Bounded: the least recently used sessions are forgotten beyond ``max_keys`` keys."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self._sid_of: dict[str, int] = {}
        self._keys: OrderedDict[int, list[str]] = OrderedDict()  # sid -> keys, LRU order
        self._tail: dict[int, OrderItem] = {}
        self._next = 0
        self._n_keys = 0

    def join(self, keys: list[str], extra: list[str]) -> tuple[int, list[OrderItem]]:
        """The session these keys (and the sessions holding the ``extra`` keys) form now;
        the tails to wait for."""
        sids: list[int] = []
        for k in (*keys, *extra):
            s = self._sid_of.get(k)
            if s is not None and s not in sids:
                sids.append(s)
        if not sids:
            sid = self._next
            self._next += 1
            self._keys[sid] = []
        else:
            sid = max(sids, key=lambda s: len(self._keys[s]))
        tails = [t for s in sids if (t := self._tail.get(s)) is not None]
        own = self._keys[sid]
        for s in sids:
            if s == sid:
                continue
            for k in self._keys.pop(s):
                self._sid_of[k] = sid
                own.append(k)
            self._tail.pop(s, None)
        for k in keys:
            if k not in self._sid_of:
                self._sid_of[k] = sid
                own.append(k)
                self._n_keys += 1
        self._keys.move_to_end(sid)
        while self._n_keys > self.max_keys and len(self._keys) > 1:
            old, ks = self._keys.popitem(last=False)
            for k in ks:
                del self._sid_of[k]
            self._n_keys -= len(ks)
            self._tail.pop(old, None)
        return sid, tails

    def set_tail(self, sid: int, item: OrderItem) -> None:
        if sid in self._keys:
            self._tail[sid] = item


# -- keys and values ------------------------------------------------------------------------
_MIN_COOKIE = 16  # shorter cookie values (lang=en, consent flags) are not user identities


def user_keys(ex: Exchange, spec: str | None = None) -> list[str]:
    """What ties an exchange to a user: its connection (or recorded session), and its
    credentials: ``--session-key`` when given (cookie:NAME, header:NAME, basic, bearer,
    auth), else the Authorization credential and long cookie values."""
    keys: list[str] = []
    if ex.session:
        keys.append(f"s:{ex.session}")
    elif ex.conn is not None:
        keys.append(f"n:{ex.conn}")
    req = ex.request
    if spec is not None:
        kind, _, name = spec.partition(":")
        kind = kind.lower()
        if kind == "header":
            v = req.header(name)
            if v:
                keys.append(f"h:{name.lower()}:{v}")
        elif kind == "cookie":
            for k, v in _cookies(ex):
                if k == name and v:
                    keys.append(f"c:{k}={v}")
        else:
            cred = credential(req.header("authorization"), kind)
            if cred:
                keys.append(cred)
        return keys
    cred = credential(req.header("authorization"), "auth")
    if cred:
        keys.append(cred)
    for k, v in _cookies(ex):
        if len(v) >= _MIN_COOKIE:
            keys.append(f"c:{k}={v}")
    return keys


def credential(value: str | None, kind: str = "auth") -> str | None:
    """``u:USER`` for Basic, ``b:SUBJECT`` (JWT ``sub``) or ``b:TOKEN`` for Bearer; ``kind``
    is ``basic``, ``bearer`` or ``auth`` (either)."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    scheme = scheme.lower()
    rest = rest.strip()
    if not rest:
        return None
    if scheme == "basic" and kind in ("basic", "auth"):
        user = _basic_user(rest)
        return f"u:{user}" if user is not None else None
    if scheme == "bearer" and kind in ("bearer", "auth"):
        sub = _jwt_sub(rest)
        return f"b:{sub}" if sub is not None else f"b:{rest}"
    return None


def _basic_user(b64: str) -> str | None:
    try:
        text = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=False).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, _ = text.partition(":")
    return user if sep and user else None


def _jwt_sub(token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    p = parts[1]
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    sub = doc.get("sub") if isinstance(doc, dict) else None
    return str(sub) if isinstance(sub, str | int) and not isinstance(sub, bool) else None


def _cookies(ex: Exchange) -> Iterator[tuple[str, str]]:
    for cookie in ex.request.header_values("cookie"):
        for part in cookie.split(";"):
            k, sep, v = part.strip().partition("=")
            if sep:
                yield k.strip(), v.strip().strip('"')


def carried_values(ex: Exchange) -> Iterator[str]:
    """Values a request may carry from an earlier response: cookie values, credentials
    (Basic user, bearer token), path segments and query values."""
    req = ex.request
    for _, v in _cookies(ex):
        yield v
    auth = req.header("authorization")
    if auth:
        scheme, _, rest = auth.strip().partition(" ")
        rest = rest.strip()
        if scheme.lower() == "basic":
            user = _basic_user(rest)
            if user:
                yield user
        elif rest:
            yield rest
    path, _, query = req.target.partition("?")
    for seg in path.split("/"):
        if seg:
            yield seg
    if query:
        for pair in query.split("&"):
            _, eq, v = pair.partition("=")
            if eq and v:
                yield v
