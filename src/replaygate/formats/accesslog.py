"""Access logs as a traffic source: nginx/Apache combined, AWS ALB and classic ELB.

A log line keeps the request line, the status and the size of the reply, never bodies or
most headers. Only ``GET`` and ``HEAD`` can therefore be replayed faithfully; every other
method, every unparsable line and every empty request line (``""``, written for requests
that never became HTTP) is counted in ``counters.dropped`` by reason, with the line numbers
of the first few in ``counters.notes``. Nothing is dropped silently.

The requests built are HTTP/1.1 with ``Host`` (from the vhost prefix, the ALB/ELB URL or
``options.extra["host"]``), ``User-Agent`` and ``Referer`` when logged. The logged status and
size go to ``meta["status"]`` and ``meta["bytes"]``; there is no response message (the log
has no response bytes), so exchanges carry :data:`Flag.NO_RESPONSE`.

Formats (``ReadOptions.log_format``; detected per line when ``None``):

* ``nginx`` / ``apache``: ``[vhost[:port] ]client ident user [time] "request" status bytes
  ["referer" "user-agent" ...]``; client may be a list (``a, b, c``) or a quoted list.
* ``alb``: ``type time elb client:port target:port t1 t2 t3 elb_status target_status
  received sent "request" "user-agent" ...``
* ``elb``: ``time elb client:port backend:port t1 t2 t3 elb_status backend_status received
  sent "request" "user-agent" ...``
"""

from __future__ import annotations

import gzip
import ipaddress
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

from ..errors import ConfigError, FormatError, InputError
from ..model import Exchange, Flag, stable_exchange_id
from . import ReadOptions, note_cut
from ._http1 import build_request
from ._limits import LOG_MAX_LINE, bounded_lines

__all__ = ["FORMATS", "LogLine", "parse_line", "read"]

FORMATS = ("nginx", "apache", "alb", "elb")
REPLAYABLE = frozenset({"GET", "HEAD"})
MAX_NOTES = 5

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+')
_CLF_TIME = re.compile(
    rb"\[(\d{1,2})/(\w{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))? ?([+-]\d{4})?\]"
)
_CLF_TAIL = re.compile(rb'\s+"((?:[^"\\]|\\.)*)"\s+(\d{3}|-)\s+(\d+|-)(.*)$')
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        (
            b"jan",
            b"feb",
            b"mar",
            b"apr",
            b"may",
            b"jun",
            b"jul",
            b"aug",
            b"sep",
            b"oct",
            b"nov",
            b"dec",
        )
    )
}
_ALB_TYPES = frozenset({b"http", b"https", b"h2", b"grpcs", b"ws", b"wss"})
_ISO = re.compile(rb"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?$")


@dataclass(slots=True)
class LogLine:
    """What one access-log line says about one request."""

    method: str
    target: str
    version: str
    status: int | None
    bytes: int | None
    ts_ns: int
    host: str | None = None
    client: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    scheme: str | None = None
    format: str = "nginx"


class LineError(ValueError):
    """A line that cannot be read; ``reason`` is the counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _unquote(tok: bytes) -> str:
    if len(tok) >= 2 and tok[:1] == b'"' and tok[-1:] == b'"':
        tok = tok[1:-1]
    text = tok.decode("utf-8", "replace")
    if "\\" in text:
        text = text.replace('\\"', '"').replace("\\\\", "\\")
        text = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)
    return text


def _dash(s: str) -> str | None:
    return None if s in ("", "-") else s


def _int(tok: bytes) -> int | None:
    return int(tok) if tok.isdigit() else None


def _clf_ts(m: re.Match[bytes]) -> int:
    day, mon, year, hh, mm, ss, frac, tz = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        raise LineError("unparsable_line", f"bad month ({len(mon)} bytes)")
    try:
        dt = datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
    except ValueError as e:
        raise LineError("unparsable_line", f"bad time: {e}") from None
    ns = ((dt - _EPOCH) // timedelta(seconds=1)) * 1_000_000_000
    if frac:
        ns += int((frac + b"000000000")[:9])
    if tz:
        sign = 1 if tz[:1] == b"+" else -1
        ns -= sign * (int(tz[1:3]) * 3600 + int(tz[3:5]) * 60) * 1_000_000_000
    return _in_range(ns)


def _in_range(ns: int) -> int:
    """Timestamps before 1970 or past 2262 (int64 ns) are not traffic: refuse the line."""
    if not 0 <= ns < 1 << 63:
        raise LineError("unparsable_line", "time out of range")
    return ns


def _iso_ts(tok: bytes) -> int:
    try:
        dt = datetime.fromisoformat(tok.decode().replace("Z", "+00:00"))
    except ValueError:
        raise LineError("unparsable_line", f"bad time ({len(tok)} bytes)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _in_range(((dt - _EPOCH) // timedelta(microseconds=1)) * 1000)


def _request_line(text: str) -> tuple[str, str, str]:
    if not text.strip():
        raise LineError("empty_request", "empty request line")
    parts = text.split(" ")
    if len(parts) == 2:
        parts.append("HTTP/1.0")
    elif len(parts) > 3 and parts[-1].upper().startswith("HTTP/"):
        # logged unescaped: "GET /a b HTTP/1.1" was sent as /a%20b (nginx logs it decoded
        # only with some configurations); keep the spaces as %20
        parts = [parts[0], "%20".join(parts[1:-1]), parts[-1]]
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise LineError("bad_request_line", f"bad request line ({len(text)} chars)")
    method, target, version = parts
    if not version.upper().startswith("HTTP/"):
        raise LineError("bad_request_line", f"bad request line ({len(text)} chars)")
    return method, target, version.upper()


def _is_ip(s: str) -> bool:
    s = s.strip('"[],')
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def _clf(line: bytes, fmt: str) -> LogLine:
    m = _CLF_TIME.search(line)
    if m is None:
        raise LineError("unparsable_line", "no [time] field")
    tail = _CLF_TAIL.match(line, m.end())
    if tail is None:
        raise LineError("unparsable_line", 'no "request" status bytes after the time')
    head = _TOKEN.findall(line[: m.start()])
    if len(head) < 3:
        raise LineError("unparsable_line", "missing client/ident/user fields")
    client_toks = head[:-2]  # ident and user are the two fields before the time
    host = None
    first = client_toks[0]
    if len(client_toks) > 1 and not first.startswith(b'"') and not first.endswith(b","):
        name = first.decode("latin-1")
        if not _is_ip(name) and re.fullmatch(r"[A-Za-z0-9.\-_]+(:\d+)?", name):
            host = name
            client_toks = client_toks[1:]
    client = b" ".join(client_toks).decode("latin-1").strip('"')
    method, target, version = _request_line(_unquote(tail.group(1)))
    rest = _TOKEN.findall(tail.group(4))
    referer = _dash(_unquote(rest[0])) if rest and rest[0].startswith(b'"') else None
    ua = _dash(_unquote(rest[1])) if len(rest) > 1 and rest[1].startswith(b'"') else None
    if host is not None and host.endswith((":80", ":443")):
        host = host.rsplit(":", 1)[0]
    return LogLine(
        method,
        target,
        version,
        _int(tail.group(2)),
        _int(tail.group(3)),
        _clf_ts(m),
        host=host,
        client=client,
        user_agent=ua,
        referer=referer,
        format=fmt,
    )


def _aws(line: bytes, fmt: str) -> LogLine:
    toks = _TOKEN.findall(line)
    off = 1 if fmt == "alb" else 0
    need = 13 + off
    if len(toks) < need - 1:
        raise LineError("unparsable_line", f"{fmt} line has {len(toks)} fields, expected {need}+")
    ts = _iso_ts(toks[off])
    if fmt == "alb" and len(toks) > 21 and _ISO.match(toks[21]):
        ts = _iso_ts(toks[21])  # request_creation_time; "time" is when the response went out
    client = toks[off + 2].decode("latin-1")
    status = _int(toks[off + 7])
    sent = _int(toks[off + 10])
    req_tok = toks[off + 11]
    if not req_tok.startswith(b'"'):
        raise LineError("unparsable_line", "request field is not quoted")
    req_text = _unquote(req_tok)
    if req_text.startswith("- "):
        raise LineError("empty_request", "no HTTP request (connection-level entry)")
    method, url, version = _request_line(req_text)
    ua = _dash(_unquote(toks[off + 12])) if len(toks) > off + 12 else None
    scheme, host, target = None, None, url
    if "://" in url[:10]:
        scheme, _, rest = url.partition("://")
        slash = rest.find("/")
        hostport, target = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
        host = hostport
        if (scheme == "http" and host.endswith(":80")) or (
            scheme == "https" and host.endswith(":443")
        ):
            host = host.rsplit(":", 1)[0]
    return LogLine(
        method,
        target,
        version,
        status,
        sent,
        ts,
        host=host,
        client=client.rpartition(":")[0] or client,
        user_agent=ua,
        scheme=scheme,
        format=fmt,
    )


def detect(line: bytes) -> str:
    """Guess the format of one line: ``alb``, ``elb`` or ``nginx`` (combined)."""
    sp = line.find(b" ")
    first = line[:sp] if sp > 0 else line
    if first in _ALB_TYPES:
        sp2 = line.find(b" ", sp + 1)
        if _ISO.match(line[sp + 1 : sp2 if sp2 > 0 else None]):
            return "alb"
    if _ISO.match(first):
        return "elb"
    return "nginx"


def parse_line(line: bytes, log_format: str | None = None) -> LogLine:
    """Parse one line (no newline). Raises :class:`LineError` with a counter reason."""
    line = line.rstrip(b"\r\n")
    if not line.strip():
        raise LineError("blank_line", "blank line")
    fmt = log_format or detect(line)
    if fmt in ("alb", "elb"):
        return _aws(line, fmt)
    return _clf(line, fmt)


def _open(path: str) -> IO[bytes]:
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None


def read(path: str, options: ReadOptions) -> Iterator[Exchange]:
    """GET/HEAD requests of an access log; everything else counted by reason."""
    fmt = options.log_format
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise ConfigError(f"--log-format: unknown {fmt!r} (known: {', '.join(FORMATS)})")
    default_host = options.extra.get("host")
    f = _open(path)
    return _lines(f, path, fmt, default_host, options)


def _lines(
    f: IO[bytes], path: str, fmt: str | None, default_host: str | None, options: ReadOptions
) -> Iterator[Exchange]:
    c = options.counters
    noted: dict[str, int] = {}

    def drop(reason: str, lineno: int, detail: str) -> None:
        c.dropped[f"accesslog_{reason}"] += 1
        n = noted.get(reason, 0)
        if n < MAX_NOTES:
            c.notes[f"{path}:{lineno}: {detail}"] += 1
        noted[reason] = n + 1

    read_any = False
    with f:
        try:
            lines = bounded_lines(f, min(LOG_MAX_LINE, options.max_record_size), path, "log line")
            for lineno, raw in enumerate(lines, 1):
                read_any = True
                if not raw.strip():
                    continue
                try:
                    ll = parse_line(raw, fmt)
                except LineError as e:
                    drop(e.reason, lineno, str(e))
                    continue
                if ll.method.upper() not in REPLAYABLE:
                    drop(
                        "method_not_replayable",
                        lineno,
                        f"{ll.method} cannot be replayed from a log",
                    )
                    continue
                yield _exchange(ll, path, lineno, default_host)
        except (OSError, EOFError, zlib.error) as e:  # a cut or damaged .log.gz
            if isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError):
                raise
            if not read_any and not isinstance(e, EOFError):
                raise FormatError(f"not a gzip stream: {e}", path=path) from None
            note_cut(
                c,
                path,
                None,
                f"compressed stream is cut or damaged ({e}); every line before it was read",
            )


def _exchange(ll: LogLine, path: str, lineno: int, default_host: str | None) -> Exchange:
    headers: list[tuple[str, str]] = []
    if ll.user_agent:
        headers.append(("User-Agent", ll.user_agent))
    if ll.referer:
        headers.append(("Referer", ll.referer))
    version = ll.version if ll.version in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1"
    host = ll.host or default_host
    req = build_request(
        ll.method, ll.target, headers, b"", host=host, version=version, ts_first_ns=ll.ts_ns
    )
    meta = {"source": f"accesslog:{ll.format}", "line": str(lineno)}
    if ll.status is not None:
        meta["status"] = str(ll.status)
    if ll.bytes is not None:
        meta["bytes"] = str(ll.bytes)
    if ll.client:
        meta["client"] = ll.client
    if ll.scheme:
        meta["scheme"] = ll.scheme
    if ll.version not in ("HTTP/1.0", "HTTP/1.1"):
        meta["source_version"] = ll.version
    ex = Exchange(
        id=stable_exchange_id("accesslog", os.path.basename(path), lineno, ll.ts_ns),
        request=req,
        meta=meta,
    )
    ex.flags.add(Flag.NO_RESPONSE)
    return ex
