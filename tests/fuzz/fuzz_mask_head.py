"""Fuzz target ``mask_head``: the compiled head masker (``CORE.mask_head``) against the
Python ``Masker.headers``/``target`` on mutated request and response heads: the same bytes
and the same counts, masking twice changes nothing. Without the compiled core both stages
mask alike (nothing to compare, but the heads still go through the whole masking)."""

from __future__ import annotations

from collections.abc import Callable

from replaygate.model import Request, Response
from replaygate.stages.mask import MaskConfig, MaskStage

KEY = b"fuzz-mask-head-key"


def _pair() -> tuple[MaskStage, MaskStage]:
    fast = MaskStage(MaskConfig(), KEY)
    slow = MaskStage(MaskConfig(), KEY)
    slow.masker.head_core = None
    slow.masker.named_core = None
    slow.masker.json_core = None
    return fast, slow


def fuzz_mask_head(data: bytes) -> None:
    """The first byte picks request or response; the rest is the head (a blank line ends it
    when missing)."""
    is_request = not (data[:1] and data[0] & 1)
    head = data[1:]
    if b"\r\n\r\n" not in head:
        head += b"\r\n\r\n"
    cls = Request if is_request else Response
    fast, slow = _pair()
    a = fast.masker.message(cls(head), "request" if is_request else "response")
    b = slow.masker.message(cls(head), "request" if is_request else "response")
    assert a.raw == b.raw, "compiled and Python head masking differ (bytes)"
    assert dict(fast.stats.findings) == dict(slow.stats.findings), "counts differ"
    assert dict(fast.stats.already_masked) == dict(slow.stats.already_masked), "counts differ"
    again = fast.masker.message(cls(a.raw), "request")
    assert again.raw == a.raw, "masking twice changed the head"


TARGETS: dict[str, Callable[[bytes], None]] = {"mask_head": fuzz_mask_head}

SEEDS: dict[str, list[bytes]] = {
    "mask_head": [
        b"\x00GET /api/v1/items/7?page=2&q=shoes&token=t0000000007#id_token=abc HTTP/1.1\r\n"
        b"Host: h\r\nCookie: sid=s000000000007; lang=en\r\nAuthorization: Bearer abcdefghij\r\n"
        b"User-Agent: bench/1.0\r\nReferer: https://app.test/p?api_key=k&x=1\r\n\r\n",
        b"\x01HTTP/1.1 302 Found\r\nSet-Cookie: sid=abc; Path=/; HttpOnly\r\n"
        b"Location: https://app.test/done#access_token=zzz&x=1\r\nX-Api-Key: key-1\r\n\r\n",
        b"\x00POST /u/alice@corp.io/4111111111111111?email=a%40b.io HTTP/1.1\r\n"
        b'Cookie:  sid = "q1" ;theme=dark ; flag\r\nX-Password: hunter2\r\n\r\n',
        b"\x01HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/, b=2; Path=/\r\n"
        b"Set-Cookie: c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT\r\nX-Note: caf\xe9\r\n\r\n",
    ],
}
