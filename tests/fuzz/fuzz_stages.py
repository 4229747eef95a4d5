"""Fuzz targets for the pipeline stages: flag values, requests through filters/rewrites, and
what a middleware may write back.

``--middleware`` and ``--plugin`` are never fuzzed (they run commands and import code).
"""

from __future__ import annotations

from collections.abc import Callable

from replaygate.cli._options import stages_from_options
from replaygate.errors import ConfigError
from replaygate.model import Exchange, Request, Response
from replaygate.stages._mwproto import decode_message, encode_message, honest_framing
from replaygate.stages.filter import FilterConfig, FilterStage
from replaygate.stages.rewrite import RewriteConfig, RewriteStage
from replaygate.stages.sample import SampleStage

__all__ = ["SEEDS", "TARGETS"]

_KEYS = (
    "allow_url",
    "deny_url",
    "allow_header",
    "deny_header",
    "allow_basic_auth",
    "rewrite_url",
    "rewrite_header",
    "set_header",
    "set_param",
    "remove_header",
)

_REQUEST = (
    b"GET /a/b?x=1&uid=7 HTTP/1.1\r\nHost: example.test\r\nX-User: u1\r\nCookie: sid=9\r\n\r\n"
)


def fuzz_stage_options(data: bytes) -> None:
    """Arbitrary flag values: only ConfigError, and the stages built must run."""
    fields = data.decode("latin-1").split("\x00")
    options: dict[str, object] = {}
    for i, value in enumerate(fields[: len(_KEYS)]):
        options[_KEYS[i]] = (value,)
    if len(fields) > len(_KEYS):
        options["sample"] = fields[len(_KEYS)]
    if len(fields) > len(_KEYS) + 1:
        options["sample_by"] = fields[len(_KEYS) + 1]
    try:
        stages = stages_from_options(options)
    except ConfigError:
        return
    items = [Exchange(id="f", request=Request(_REQUEST))]
    for st in stages:
        items = [o for ex in items for o in st.process(ex)]
    for ex in items:
        assert isinstance(ex.request, Request)
        ex.request.headers  # noqa: B018 - the rebuilt head must parse


_FILTER = FilterStage(
    FilterConfig(
        allow_url=["^/"],
        deny_url=["admin"],
        allow_header=["Host: ."],
        allow_basic_auth=["."],
        url_match="full",
    )
)
_REWRITE = RewriteStage(
    RewriteConfig(
        rewrite_url=["^/(\\w*)(.*):/v2/$1$2"],
        rewrite_header=["Host: ^(.*)$,staging-$1"],
        set_header=["X-Env: staging"],
        remove_header=["Cookie"],
        set_param=["k=v w"],
    )
)
_SAMPLE = SampleStage("50%", "cookie:sid")


def fuzz_stage_request(data: bytes) -> None:
    """Arbitrary request bytes through filter, sampling and every rewrite."""
    ex = Exchange(id="r", request=Request(data))
    _FILTER.reason(ex)
    list(_SAMPLE.process(ex))
    (out,) = list(_REWRITE.process(ex))
    out.request.headers  # noqa: B018


def fuzz_middleware_reply(data: bytes) -> None:
    """What a middleware writes back: bad lines are skipped, good ones become messages with
    honest framing."""
    for line in data.split(b"\n"):
        try:
            typ, _id, _ts, _lat, raw = decode_message(line)
        except ValueError:
            continue
        msg = honest_framing(Request(raw) if typ == 1 else Response(raw))
        msg.body()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "stage_options": fuzz_stage_options,
    "stage_request": fuzz_stage_request,
    "middleware_reply": fuzz_middleware_reply,
}

SEEDS: dict[str, list[bytes]] = {
    "stage_options": [
        b"^/api\x00health\x00X-A: 1\x00X-B: 2\x00^admin\x00/v1:/v2\x00Host: a,b\x00X: 1\x00k=v\x00Cookie\x0025%\x00header:X",
        b"(\x00\x00\x00",
    ],
    "stage_request": [_REQUEST, b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"],
    "middleware_reply": [
        encode_message(1, "id1", 1, -1, _REQUEST),
        encode_message(2, "id1", 2, 5, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nabc"),
        b"not hex\n31",
    ],
}
