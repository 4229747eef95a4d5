"""The order gate (replay/_order.py): tables and a property test on a simulated replay.

The simulation is an event loop with a fake clock: ``--concurrency C`` senders take units in
input order through the gate, each replayed exchange takes a random time (some fail: they
finish too). Checked: no exchange is sent before a recorded predecessor has finished, nothing
deadlocks, and exchanges that overlapped in the recording do overlap.
"""

from __future__ import annotations

import base64
import heapq

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import ConfigError
from replaygate.model import ConnectionId, Exchange
from replaygate.replay._order import OrderGate, carried_values, credential, user_keys
from replaygate.replay.correlation import CorrelationHook
from replaygate.testing import make_exchange

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def _conn(n: int) -> ConnectionId:
    return ConnectionId("10.0.0.1", 40000 + n, "10.0.0.2", 80)


def _ex(start_ms: int, end_ms: int | None, conn: int = 0, **kw: object) -> Exchange:
    if end_ms is None:
        return make_exchange(ts_ns=T0 + start_ms * MS, status=None, conn=_conn(conn), **kw)  # type: ignore[arg-type]
    return make_exchange(
        ts_ns=T0 + start_ms * MS,
        latency_ns=(end_ms - start_ms) * MS,
        conn=_conn(conn),
        **kw,  # type: ignore[arg-type]
    )


def simulate(
    exs: list[Exchange], gate: OrderGate, conc: int, durations: list[int], admit: bool = False
) -> tuple[dict[int, int], dict[int, int], int]:
    """Send times, finish times (fake clock) and the most in flight at once."""
    sends: dict[int, int] = {}
    finishes: dict[int, int] = {}
    inflight: list[tuple[int, int, object]] = []
    held = None
    i = 0
    t = 0
    most = 0
    while i < len(exs) or inflight or held is not None:
        while len(inflight) < conc:
            if held is None:
                if i >= len(exs):
                    break
                held = (i, gate.prepare(exs[i]))
                i += 1
            idx, item = held
            if admit:  # the engine's one-call form
                if not gate.admit(item):
                    break
            else:
                if not gate.ready(item):
                    break
                gate.begin(item)
            sends[idx] = t
            heapq.heappush(inflight, (t + durations[idx % len(durations)], idx, item))
            held = None
        most = max(most, len(inflight))
        assert inflight, "deadlock: a unit waits and nothing is in flight"
        t, idx, item = heapq.heappop(inflight)
        finishes[idx] = t
        gate.finish(item)  # type: ignore[arg-type]
    return sends, finishes, most


def _check_recorded(exs: list[Exchange], sends: dict[int, int], fin: dict[int, int]) -> None:
    for a, ea in enumerate(exs):
        for b, eb in enumerate(exs):
            if a == b:
                continue
            if ea.response is not None:
                # (zero-length exchanges at one instant precede each other: input order wins)
                end_b = eb.response.ts_last_ns if eb.response else eb.request.ts_first_ns
                if ea.response.ts_last_ns <= eb.request.ts_first_ns and (
                    a < b or end_b > ea.request.ts_first_ns
                ):
                    assert sends[b] >= fin[a], (a, b)
            elif ea.conn == eb.conn and a < b:
                assert sends[b] >= fin[a], (a, b, "same connection, no recorded end")


def _end(e: Exchange) -> int:
    return e.response.ts_last_ns if e.response else e.request.ts_first_ns


intervals = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 60), st.integers(0, 3), st.booleans()),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    intervals,
    st.sampled_from(["start", "end"]),
    st.integers(1, 8),
    st.lists(st.integers(1, 50), min_size=1, max_size=10),
    st.booleans(),
    st.booleans(),
)
def test_no_exchange_before_a_predecessor_finished(
    spans: list[tuple[int, int, int, bool]],
    sort_by: str,
    conc: int,
    durations: list[int],
    request_only: bool,
    admit: bool,
) -> None:
    exs = [
        _ex(s, None if (request_only and no_end) else s + d, conn=c) for s, d, c, no_end in spans
    ]
    # recordings are written in request order or in completion order
    if sort_by == "start":
        exs.sort(key=lambda e: (e.request.ts_first_ns, _end(e)))
    else:
        exs.sort(key=lambda e: (_end(e), e.request.ts_first_ns))
    gate = OrderGate("recorded")
    sends, fin, _ = simulate(exs, gate, conc, durations, admit)
    assert len(sends) == len(exs)
    _check_recorded(exs, sends, fin)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 30), st.integers(1, 16))
def test_overlapping_exchanges_overlap(n: int, conc: int) -> None:
    exs = [_ex(i, 1000 + i, conn=i) for i in range(n)]  # all overlap in the recording
    sends, _, most = simulate(exs, OrderGate("recorded"), conc, [100])
    assert most == min(conc, n)
    if n <= conc:
        assert set(sends.values()) == {0}


def test_serial_recording_is_replayed_serially() -> None:
    exs = [_ex(10 * i, 10 * i + 5, conn=i) for i in range(6)]
    sends, fin, most = simulate(exs, OrderGate("recorded"), 8, [7])
    assert most == 1
    for i in range(1, 6):
        assert sends[i] >= fin[i - 1]


def test_order_none_waits_for_nothing() -> None:
    exs = [_ex(10 * i, 10 * i + 5, conn=i) for i in range(6)]
    _, _, most = simulate(exs, OrderGate("none"), 8, [7])
    assert most == 6


def test_watermark_table() -> None:
    """(start, end) pairs, in input order; expected readiness right after each begin."""
    g = OrderGate("recorded")
    a = g.prepare(_ex(0, 10))
    assert g.ready(a)
    g.begin(a)
    b = g.prepare(_ex(5, 20))  # overlaps a: may go
    assert g.ready(b)
    g.begin(b)
    c = g.prepare(_ex(10, 30))  # a ended at 10 <= 10: waits for a, not for b
    assert not g.ready(c)
    g.finish(b)
    assert not g.ready(c)
    g.finish(a)
    assert g.ready(c)


def test_failed_exchange_counts_as_finished_and_copies_count() -> None:
    g = OrderGate("recorded")
    a = g.prepare(_ex(0, 1))
    g.begin(a, copies=2)  # candidate + baseline
    b = g.prepare(_ex(2, 3))
    assert not g.ready(b)
    assert not g.finish(a)  # one copy answered (or failed)
    assert not g.ready(b)
    assert g.finish(a)
    assert g.ready(b)


def test_heap_is_compacted() -> None:
    g = OrderGate("recorded")
    long = g.prepare(_ex(0, 10**9))
    g.begin(long)
    for i in range(5000):
        it = g.prepare(_ex(1 + i, 2 + i, conn=i))
        assert g.ready(it)
        g.begin(it)
        g.finish(it)
    assert len(g._heap) < 2000


def test_loop_passes_follow_each_other() -> None:
    g = OrderGate("recorded")
    a = g.prepare(_ex(0, 10))
    g.begin(a)
    again = _ex(0, 10)
    again.meta["loop"] = "1"
    b = g.prepare(again)
    assert not g.ready(b)  # the second pass starts after the first one ended
    g.finish(a)
    assert g.ready(b)


def test_inversions_are_counted() -> None:
    g = OrderGate("recorded")
    for s, e in ((10, 20), (0, 5)):  # the second should have come first
        it = g.prepare(_ex(s, e))
        g.begin(it)
    assert g.inversions == 1


def test_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="--order"):
        OrderGate("random")


# -- sessions mode -------------------------------------------------------------------------
def _basic(user: str, pw: str = "pw") -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())


def test_sessions_follow_users_across_reconnects_and_account_creation() -> None:
    hook = CorrelationHook()
    g = OrderGate("sessions", issued=hook.issued_values)
    create = _ex(
        0,
        1,
        conn=1,
        method="PUT",
        target="/accounts/alice",
        response_body=b'{"data": {"id": "alice"}}',
        response_headers=[("Content-Type", "application/json")],
    )
    use = _ex(5, 6, conn=2, target="/buckets", request_headers=[_basic("alice")])
    again = _ex(7, 8, conn=3, target="/buckets/b1", request_headers=[_basic("alice")])
    other = _ex(7, 8, conn=4, target="/buckets", request_headers=[_basic("bob")])
    a = g.prepare(create)
    assert g.ready(a)
    g.begin(a)
    b = g.prepare(use)
    assert not g.ready(b)  # it carries the user the PUT created
    g.finish(a)
    assert g.ready(b)
    g.begin(b)
    c = g.prepare(again)  # another reconnect, same user: after b
    assert not g.ready(c)
    g.finish(b)
    assert g.ready(c)
    g.begin(c)
    d = g.prepare(other)  # another user: independent
    assert g.ready(d)


def test_sessions_cookie_issued_joins_the_login() -> None:
    hook = CorrelationHook()
    g = OrderGate("sessions", issued=hook.issued_values)
    sid = "s3cr3t-session-value-0123456789"
    login = _ex(0, 1, conn=1, method="POST", response_headers=[("Set-Cookie", f"sid={sid}")])
    later = _ex(3, 4, conn=9, request_headers=[("Cookie", f"sid={sid}")])
    a = g.prepare(login)
    g.begin(a)
    b = g.prepare(later)
    assert not g.ready(b)
    g.finish(a)
    assert g.ready(b)


def test_credentials_and_keys() -> None:
    assert credential("Basic " + base64.b64encode(b"alice:pw").decode()) == "u:alice"
    assert credential("Basic " + base64.b64encode(b"alice:pw").decode(), "bearer") is None
    payload = base64.urlsafe_b64encode(b'{"sub": "u42"}').decode().rstrip("=")
    assert credential(f"Bearer x.{payload}.y") == "b:u42"
    assert credential("Bearer opaque-token") == "b:opaque-token"
    assert credential("Basic !!!") is None
    assert credential(None) is None
    ex = _ex(0, 1, request_headers=[("Cookie", "lang=en; sid=0123456789abcdef0123")])
    keys = user_keys(ex)
    assert "c:sid=0123456789abcdef0123" in keys and not any("lang" in k for k in keys)
    assert user_keys(ex, "cookie:lang")[-1] == "c:lang=en"
    ex2 = _ex(0, 1, target="/a/b?x=1&y=zz", request_headers=[_basic("bob")])
    assert {"a", "b", "1", "zz", "bob"} <= set(carried_values(ex2))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=30),
    st.integers(1, 6),
)
def test_sessions_property_each_user_in_order(users: list[tuple[int, int]], conc: int) -> None:
    """Each user's exchanges (any connection) run one after the other, in input order."""
    exs = [
        _ex(i, i + 100, conn=c, request_headers=[_basic(f"user{u}")])
        for i, (u, c) in enumerate(users)
    ]
    sends, fin, _ = simulate(exs, OrderGate("sessions"), conc, [3, 5, 1])
    last: dict[str, int] = {}
    for i, ex in enumerate(exs):
        keys = user_keys(ex)
        for k in keys:
            if k in last:
                assert sends[i] >= fin[last[k]]
        for k in keys:
            last[k] = i


def test_request_only_without_connection_is_not_ordered() -> None:
    """GoReplay's request-only files: no end, no connection: nothing to wait for."""
    g = OrderGate("recorded")
    exs = [make_exchange(ts_ns=T0 + i * MS, status=None) for i in range(3)]
    items = [g.prepare(e) for e in exs[:1]]
    g.begin(items[0])
    for e in exs[1:]:
        it = g.prepare(e)
        assert g.ready(it)
        g.begin(it)


def test_request_only_on_one_connection_is_chained() -> None:
    g = OrderGate("recorded")
    a = g.prepare(_ex(0, None, conn=1))
    g.begin(a)
    b = g.prepare(_ex(5, None, conn=1))
    assert not g.ready(b)
    g.finish(a)
    assert g.ready(b)
