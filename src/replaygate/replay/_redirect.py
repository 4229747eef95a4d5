"""``--redirects N``: follow 301/302/303/307/308 to the same target only.

Off by default: a release gate usually wants to compare the redirect itself. When on, the
final response is recorded (``meta["redirects"]`` says how many hops). A Location pointing at
another host ends the chain and that redirect is recorded as the answer: replaygate never
sends recorded traffic anywhere but the targets it was given. 303 (and 301/302 after a
POST) switch to GET without a body, as browsers do; 307/308 repeat the method and body.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from ..model import Request

if TYPE_CHECKING:
    from .client import Result
    from .pool import Slot, TargetPool

__all__ = ["REDIRECTS", "follow_redirects", "redirect_request"]

REDIRECTS = frozenset((301, 302, 303, 307, 308))  # the statuses followed
_CODES = REDIRECTS


def _location(res: Result) -> str | None:
    assert res.raw is not None
    from ..model import Response

    return Response(res.raw, head_len=res.head_len).header("location")


def redirect_request(raw: bytes, status: int, location: str, pool: TargetPool) -> bytes | None:
    """The next request of the chain, or None when Location leaves the target."""
    req = Request(raw)
    base = f"{pool.target.scheme}://{pool.target.host_header}{req.path}"
    url = urljoin(base, location.strip())
    u = urlsplit(url)
    allowed = {pool.target.host_header.lower(), f"{pool.target.host}:{pool.target.port}".lower()}
    if req.host:
        allowed.add(req.host.lower())
    if u.scheme not in ("http", "https") or u.netloc.lower() not in allowed:
        return None
    if u.scheme != pool.target.scheme:
        return None
    new_target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    method = req.method
    to_get = (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST")
    if to_get:
        method = "GET"
    drop = {"content-length", "transfer-encoding", "content-type"} if to_get else set()
    headers = [(k, v) for k, v in req.headers if k.lower() not in drop]
    start = f"{method} {new_target} {req.version}"
    head = (start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode(
        "latin-1"
    )
    return head if to_get else head + bytes(req.body_raw)


async def follow_redirects(
    loop: asyncio.AbstractEventLoop,
    pool: TargetPool,
    slot: Slot,
    raw: bytes,
    res: Result,
    max_hops: int,
) -> tuple[Result, int]:
    """Follow up to ``max_hops`` redirects; returns the last result and the hops taken."""
    hops = 0
    while hops < max_hops and res.error is None and res.status in _CODES:
        loc = _location(res)
        if not loc:
            break
        nxt = redirect_request(raw, res.status, loc, pool)
        if nxt is None:
            break
        raw = nxt
        res = await pool.roundtrip(loop, slot, raw, raw.startswith(b"HEAD "))
        hops += 1
    return res, hops
