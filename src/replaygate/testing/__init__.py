"""Factories and fakes for users' tests and our own (like httpx's MockTransport).

``make_exchange`` builds a realistic exchange in one line; ``MemorySink`` collects what a
pipeline writes; ``FakeClock`` is a clock tests can move by hand.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import ConnectionId, Exchange, Flag, Request, Response, new_exchange_id

__all__ = ["FakeClock", "MemorySink", "make_exchange", "make_request", "make_response"]


def make_request(
    method: str = "GET",
    target: str = "/",
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    host: str | None = "example.test",
    version: str = "HTTP/1.1",
    ts_ns: int = 1_700_000_000_000_000_000,
) -> Request:
    """A request with Host and Content-Length filled in when not given."""
    hs = list(headers)
    names = {k.lower() for k, _ in hs}
    if host is not None and "host" not in names:
        hs.insert(0, ("Host", host))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hs.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    hb = head.encode("latin-1")
    return Request(hb + body, ts_first_ns=ts_ns, ts_last_ns=ts_ns, head_len=len(hb))


def make_response(
    status: int = 200,
    body: bytes = b"",
    *,
    headers: Iterable[tuple[str, str]] = (),
    reason: str | None = None,
    version: str = "HTTP/1.1",
    ts_ns: int = 1_700_000_000_001_000_000,
) -> Response:
    """A response with Content-Length filled in when not given."""
    from http import HTTPStatus

    if reason is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
    hs = list(headers)
    names = {k.lower() for k, _ in hs}
    if "content-length" not in names and "transfer-encoding" not in names:
        hs.append(("Content-Length", str(len(body))))
    head = f"{version} {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    hb = head.encode("latin-1")
    return Response(hb + body, ts_first_ns=ts_ns, ts_last_ns=ts_ns, head_len=len(hb))


def make_exchange(
    method: str = "GET",
    target: str = "/",
    *,
    status: int | None = 200,
    request_body: bytes = b"",
    response_body: bytes = b"",
    request_headers: Iterable[tuple[str, str]] = (),
    response_headers: Iterable[tuple[str, str]] = (),
    replayed_status: int | None = None,
    replayed_body: bytes = b"",
    replayed_headers: Iterable[tuple[str, str]] = (),
    ts_ns: int = 1_700_000_000_000_000_000,
    latency_ns: int = 1_000_000,
    replay_latency_ns: int | None = None,
    conn: ConnectionId | None = None,
    session: str | None = None,
    id: str | None = None,
) -> Exchange:
    """An exchange with a request, an original response (unless ``status`` is None) and a
    replayed response (when ``replayed_status`` is given)."""
    req = make_request(method, target, headers=request_headers, body=request_body, ts_ns=ts_ns)
    ex = Exchange(id=id or new_exchange_id(), request=req, conn=conn, session=session)
    if status is not None:
        ex.response = make_response(
            status, response_body, headers=response_headers, ts_ns=ts_ns + latency_ns
        )
    else:
        ex.flags.add(Flag.NO_RESPONSE)
    if replayed_status is not None:
        ex.replayed = make_response(
            replayed_status, replayed_body, headers=replayed_headers, ts_ns=ts_ns
        )
        ex.replay_latency_ns = replay_latency_ns if replay_latency_ns is not None else latency_ns
        ex.replay_ts_ns = ts_ns
    return ex


class MemorySink:
    """A sink that keeps everything in a list."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.closed = False

    def write(self, ex: Exchange) -> None:
        self.exchanges.append(ex)

    def close(self) -> None:
        self.closed = True


class FakeClock:
    """A clock in seconds that only moves when told to: a
    :class:`~replaygate._clock.Clock` (``monotonic()``, ``time()``, ``sleep()``), and also
    callable (``clock()`` is ``monotonic()``) where a component takes a bare function.

    ``sleep(s)`` moves the clock by ``s`` at once (and lets other tasks run) and remembers
    it in ``sleeps``; ``time()`` is ``epoch + now``."""

    def __init__(self, start: float = 0.0, *, epoch: float = 1_700_000_000.0) -> None:
        self.now = start
        self.epoch = epoch
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.epoch + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        import asyncio

        self.sleeps.append(seconds)
        if seconds > 0:
            self.now += seconds
        await asyncio.sleep(0)
