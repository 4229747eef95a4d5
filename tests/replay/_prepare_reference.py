"""A reference for the replay client's request preparation: ``prepare_request`` as it was
before it skipped searches that cannot find anything (a property test holds the two equal)."""

from __future__ import annotations

from replaygate.replay.client import _fix_content_length


def prepare_request_before(
    raw: bytes, head_len: int, host: bytes | None, prefix: bytes = b""
) -> bytes:
    """``prepare_request`` as it was before its searches were cut down."""
    head = raw if head_len >= len(raw) else raw[:head_len]
    low = head.lower()
    changed = False
    eol = head.find(b"\n")
    if (
        eol >= 7
        # the line ends with "2\r" or "2" (50: "2", 13: "\r"): one byte rules most lines out
        and (head[eol - 1] == 50 or (head[eol - 1] == 13 and head[eol - 2] == 50))
        and (head[eol - 8 : eol] == b" HTTP/2\r" or head[eol - 7 : eol] == b" HTTP/2")
    ):
        # an HTTP/2 recording (protocol/h2msg) is sent as HTTP/1.1: the text already is
        cut = head.rfind(b" HTTP/2", 0, eol)
        head = head[:cut] + b" HTTP/1.1" + head[cut + 7 :]
        low = head.lower()
        changed = True
    if host is not None:
        i = low.find(b"\nhost:")
        if i >= 0:
            j = head.find(b"\n", i + 1)
            if j < 0:
                j = len(head)
            end = j - 1 if head[j - 1] == 13 else j  # 13: "\r" (j > i >= 0)
            vstart = i + 6
            while vstart < end and head[vstart] in (32, 9):
                vstart += 1
            if head[vstart:end] != host:
                head = head[: i + 6] + b" " + host + head[end:]
                changed = True
        elif b"http/1.1\r\n" in low[:8192] or b"http/1.1\n" in low[:8192]:
            eol = head.find(b"\n")
            if eol >= 0:
                head = head[: eol + 1] + b"Host: " + host + b"\r\n" + head[eol + 1 :]
                changed = True
    sp = head.find(b" ")
    # absolute-form (captured in front of a proxy): the authority would override Host, so
    # send origin-form to the target (a target starting with "/", the usual, is not one)
    if (
        host is not None
        and sp >= 0
        and (sp + 1 == len(head) or head[sp + 1] != 47)  # 47: "/"
        and head[sp + 1 : sp + 9].lower().startswith((b"http://", b"https://"))
    ):
        start = head.find(b"://", sp) + 3
        ends = [i for i in (head.find(b" ", start), head.find(b"\r", start)) if i >= 0]
        nl = head.find(b"\n", start)
        end = min([*ends, nl if nl >= 0 else len(head)])
        slash = head.find(b"/", start, end)
        qm = head.find(b"?", start, end)
        cut = min(x for x in (slash, qm, end) if x >= 0)
        rest = head[cut:end] if cut < end else b""
        if not rest.startswith(b"/"):
            rest = b"/" + rest
        head = head[: sp + 1] + rest + head[end:]
        changed = True
    if prefix and sp >= 0 and head[sp + 1 : sp + 2] == b"/":  # (head[: sp + 1] is as found)
        head = head[: sp + 1] + prefix + head[sp + 1 :]
        changed = True
    body_len = len(raw) - head_len
    if low.find(b"\ncontent-length:") >= 0 or (body_len and low.find(b"\ntransfer-encoding:") < 0):
        head, fixed = _fix_content_length(head, body_len)
        changed = changed or fixed
    if not changed:
        return raw
    return head + raw[head_len:] if head_len < len(raw) else head
