"""Partitions by user (``?key=user``): one user's traffic lands in one partition even across
reconnects, so a worker's order gate sees all of it."""

from __future__ import annotations

import asyncio
import base64
import itertools

import nats

from replaygate.jetstream import NatsSink
from replaygate.jetstream._partition import Partitioner
from replaygate.jetstream.codec import decode_exchange, partition_of
from replaygate.jetstream.url import parse_stream_url
from replaygate.model import ConnectionId, Exchange
from replaygate.pipeline import Counters
from replaygate.testing import make_exchange
from replaygate.testing.nats import NatsServer

_ports = itertools.count(20_000)


def _conn() -> ConnectionId:
    return ConnectionId("10.0.0.1", next(_ports), "10.0.0.2", 80)


def _basic(user: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:pw".encode()).decode())


def _users(n: int) -> dict[str, list[Exchange]]:
    """Per user: the account created without credentials, requests authenticated on the same
    connection, then on two reconnects; a cookie user: login on one connection answered with
    a session cookie, then requests carrying it on others."""
    out: dict[str, list[Exchange]] = {}
    for i in range(n):
        u = f"user{i}"
        first, again, third = _conn(), _conn(), _conn()
        exs = [make_exchange("PUT", f"/accounts/{u}", status=201, conn=first)]
        exs += [make_exchange("POST", "/buckets", request_headers=[_basic(u)], conn=first)]
        for c in (again, third):
            exs += [
                make_exchange("GET", f"/buckets/{j}", request_headers=[_basic(u)], conn=c)
                for j in range(3)
            ]
        out[u] = exs
        sid = f"{i:04d}" + "s" * 20
        login = make_exchange(
            "POST", "/login", response_headers=[("Set-Cookie", f"sid={sid}; Path=/")], conn=_conn()
        )
        later = [
            make_exchange("GET", "/me", request_headers=[("Cookie", f"lang=en; sid={sid}")], conn=c)
            for c in (_conn(), _conn())
        ]
        out[f"cookie{i}"] = [login, *later]
    return out


def _interleaved(users: dict[str, list[Exchange]]) -> list[Exchange]:
    rows = list(itertools.zip_longest(*users.values()))
    return [ex for row in rows for ex in row if ex is not None]


def test_by_connection_a_reconnecting_user_spans_partitions() -> None:
    users = _users(20)
    spread = [u for u, exs in users.items() if len({partition_of(e, 16) for e in exs}) > 1]
    assert spread  # the default key: why ?key=user exists
    p = Partitioner(16)  # key=connection: the same partitions as before
    assert all(p(e) == partition_of(e, 16) for e in _interleaved(users))


def test_by_user_one_partition_per_user() -> None:
    users = _users(40)
    p = Partitioner(16, "user")
    got: dict[str, set[int]] = {u: set() for u in users}
    owner = {e.id: u for u, exs in users.items() for e in exs}
    for e in _interleaved(users):
        got[owner[e.id]].add(p(e))
    assert all(len(parts) == 1 for parts in got.values()), got
    assert len(set().union(*got.values())) > 4  # users still spread over the partitions
    assert p.conflicts == 0


def test_session_key_spec_and_conflicts_counted() -> None:
    p = Partitioner(8, "header:X-User")
    shared = _conn()  # one connection (a load balancer) carrying two users
    parts = {}
    for u in ("ann", "bob"):
        parts[u] = p(make_exchange("GET", "/", request_headers=[("X-User", u)], conn=_conn()))
    again = {
        u: p(make_exchange("GET", "/x", request_headers=[("X-User", u)], conn=shared))
        for u in ("ann", "bob")
    }
    assert again == parts  # the user wins over the connection
    assert p.conflicts == (1 if parts["ann"] != parts["bob"] else 0)


def test_bounded_memory() -> None:
    p = Partitioner(4, "user", max_keys=100)
    for exs in _users(200).values():
        for e in exs:
            p(e)
    assert len(p._part) <= 100


def test_sink_publishes_each_user_to_one_subject(nats_server: NatsServer) -> None:
    url = nats_server.url + "/TP?partitions=8&key=user"
    users = _users(12)
    counters = Counters()
    sink = NatsSink(url, counters=counters)
    for e in _interleaved(users):
        sink.write(e)
    shared = _conn()  # then the known users on one connection: conflicts, counted
    named = [u for u in users if u.startswith("user")]
    for u in named:
        sink.write(make_exchange("GET", "/z", request_headers=[_basic(u)], conn=shared))
    sink.close()
    clash = sink.partitioner.conflicts
    assert clash >= 1  # crc32 is fixed: these 12 users do not all hash to one partition
    assert counters.notes.get("stream_partition_conflicts", 0) == clash
    total = sum(len(v) for v in users.values()) + len(named)
    assert sink.published == total
    subjects = asyncio.run(_subjects(parse_stream_url(url).stream, nats_server.url, total))
    owner = {e.id: u for u, exs in users.items() for e in exs}
    by_user: dict[str, set[str]] = {}
    for ex_id, subj in subjects.items():
        if ex_id not in owner:
            continue  # the ones on the shared connection
        by_user.setdefault(owner[ex_id], set()).add(subj)
    assert set(by_user) == set(users)
    assert all(len(s) == 1 for s in by_user.values()), by_user


async def _subjects(stream: str, server: str, n: int) -> dict[str, str]:
    nc = await nats.connect(server)
    try:
        js = nc.jetstream()
        out = {}
        for seq in range(1, n + 1):
            msg = await js.get_msg(stream, seq)
            out[decode_exchange(msg.data or b"").id] = msg.subject
        return out
    finally:
        await nc.close()
