#!/usr/bin/env python3
"""Echo middleware (GoReplay protocol) in Python: decode, log, re-encode, write back.

Every stdin line is one hex-encoded message, ``"<type> <id> <ts> <latency>\\n" + HTTP bytes``.
The message is split into its metadata and payload, logged on stderr (stdout carries the
protocol) and written back unchanged, which keeps it. Like GoReplay's example, stdout is not
flushed after each line, so replies arrive in blocks: replaygate copes with that.

    replaygate convert in.gor out.gor --middleware "python3 examples/middleware/echo.py"
"""

import binascii
import sys

KINDS = {b"1": "Request", b"2": "Original Response", b"3": "Replayed Response"}


def log(msg: object) -> None:
    sys.stderr.write(f"{msg}\n")
    sys.stderr.flush()


def main() -> None:
    for raw_line in sys.stdin.buffer:
        line = raw_line.rstrip()
        if not line:
            continue
        decoded = binascii.unhexlify(line)
        meta, _, payload = decoded.partition(b"\n")
        kind = meta.split(b" ", 1)[0]
        log("===================================")
        log(f"Request type: {KINDS.get(kind, 'Unknown')}")
        log(f"Payload: {len(payload)} bytes, header line {meta.decode('latin-1')!r}")
        encoded = binascii.hexlify(meta + b"\n" + payload)
        sys.stdout.buffer.write(encoded + b"\n")


if __name__ == "__main__":
    main()
