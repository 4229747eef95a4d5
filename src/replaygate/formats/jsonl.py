"""JSON Lines: one JSON object per exchange, for jq, DuckDB and pandas users.

Each line holds the :meth:`Exchange.summary` keys (the ``inspect --json`` contract: ``id``,
``ts_ns``, ``method``, ``target``, ``host``, ``version``, ``status``, ``request_body_len``,
``response_body_len``, ``latency_ns``, ``complete``, ``flags``) and, so that nothing is lost,
``request`` / ``response`` / ``replayed`` objects with the parsed ``headers`` (a list of
``[name, value]``), ``body_text`` (the decoded body when it is UTF-8 text up to 64 KiB, else
null), timestamps and the exact wire bytes as base64 (``raw_b64``), plus ``conn``,
``session``, ``seq``, ``meta``, ``interim`` and the replay fields. Reading our own files back
rebuilds every exchange exactly (raw bytes are the source of truth; the summary keys are
derived and ignored on input).

Example: ``jq -r 'select(.status >= 500) | .target' traffic.jsonl``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from ..errors import FormatError, InputError
from ..model import ConnectionId, Exchange, Flag, HTTPMessage, Request, Response
from . import ReadOptions, WriteOptions, note_cut
from ._limits import bounded_lines, writing

__all__ = ["Writer", "exchange_from_dict", "exchange_to_dict", "parse_lines", "read"]

FORMAT_VERSION = 1


BODY_TEXT_MAX = 64 * 1024


def _body_text(m: HTTPMessage) -> str | None:
    """The decoded body as text, for jq/DuckDB users (None: empty, binary or large)."""
    if not len(m.body_raw) or len(m.body_raw) > BODY_TEXT_MAX:
        return None
    body = m.decoded_body()
    if len(body) > BODY_TEXT_MAX:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _msg(m: HTTPMessage) -> dict[str, Any]:
    return {
        "ts_first_ns": m.ts_first_ns,
        "ts_last_ns": m.ts_last_ns,
        "head_len": m.head_len,
        "headers": [[k, v] for k, v in m.headers],
        "body_text": _body_text(m),
        "raw_b64": base64.b64encode(m.raw).decode("ascii"),
    }


def exchange_to_dict(ex: Exchange) -> dict[str, Any]:
    """The JSON object for one exchange (summary keys first)."""
    d = ex.summary()
    d["rg_v"] = FORMAT_VERSION
    d["conn"] = str(ex.conn) if ex.conn is not None else None
    d["session"] = ex.session
    d["seq"] = ex.seq
    d["meta"] = dict(ex.meta)
    d["request"] = _msg(ex.request)
    d["response"] = _msg(ex.response) if ex.response is not None else None
    d["interim"] = [_msg(m) for m in ex.interim]
    d["replayed"] = _msg(ex.replayed) if ex.replayed is not None else None
    d["replay_ts_ns"] = ex.replay_ts_ns
    d["replay_latency_ns"] = ex.replay_latency_ns
    d["replay_error"] = ex.replay_error
    if ex.replayed is not None:
        d["replayed_status"] = ex.replayed.status
    return d


class _Bad(ValueError):
    pass


def _int(d: dict[str, Any], key: str, default: int | None = 0) -> int | None:
    v = d.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(f'"{key}" is not an integer')
    return v


def _message(d: Any, cls: type[HTTPMessage], key: str) -> HTTPMessage:
    if not isinstance(d, dict):
        raise _Bad(f'"{key}" is not an object')
    raw_txt = d.get("raw_b64")
    if not isinstance(raw_txt, str):
        raise _Bad(f'"{key}.raw_b64" is missing')
    try:
        raw = base64.b64decode(raw_txt, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad(f'"{key}.raw_b64" is not valid base64') from None
    head_len = _int(d, "head_len", None)
    if head_len is not None and not 0 <= head_len <= len(raw):
        head_len = None
    return cls(
        raw,
        ts_first_ns=_int(d, "ts_first_ns") or 0,
        ts_last_ns=_int(d, "ts_last_ns") or 0,
        head_len=head_len,
    )


def exchange_from_dict(d: Any) -> Exchange:
    """Inverse of :func:`exchange_to_dict`; raises ValueError on objects we did not write."""
    if not isinstance(d, dict):
        raise _Bad("line is not a JSON object")
    ex_id = d.get("id")
    if not isinstance(ex_id, str) or not ex_id:
        raise _Bad('"id" is missing')
    req = _message(d.get("request"), Request, "request")
    assert isinstance(req, Request)
    ex = Exchange(id=ex_id, request=req)
    if d.get("response") is not None:
        resp = _message(d["response"], Response, "response")
        assert isinstance(resp, Response)
        ex.response = resp
    if d.get("replayed") is not None:
        rep = _message(d["replayed"], Response, "replayed")
        assert isinstance(rep, Response)
        ex.replayed = rep
    interim = d.get("interim") or []
    if not isinstance(interim, list):
        raise _Bad('"interim" is not a list')
    for i, m in enumerate(interim):
        im = _message(m, Response, f"interim[{i}]")
        assert isinstance(im, Response)
        ex.interim.append(im)
    conn = d.get("conn")
    if isinstance(conn, str):
        try:
            ex.conn = ConnectionId.parse(conn)
        except ValueError:
            raise _Bad(f'"conn" is not an address pair ({len(conn)} chars)') from None
    if isinstance(d.get("session"), str):
        ex.session = d["session"]
    ex.seq = _int(d, "seq") or 0
    flags = d.get("flags") or []
    if not isinstance(flags, list):
        raise _Bad('"flags" is not a list')
    for f in flags:
        try:
            ex.flags.add(Flag(f))
        except ValueError:
            raise _Bad(f"unknown flag ({len(str(f))} chars)") from None
    meta = d.get("meta") or {}
    if not isinstance(meta, dict):
        raise _Bad('"meta" is not an object')
    ex.meta = {str(k): str(v) for k, v in meta.items()}
    ex.replay_ts_ns = _int(d, "replay_ts_ns", None)
    ex.replay_latency_ns = _int(d, "replay_latency_ns", None)
    err = d.get("replay_error")
    ex.replay_error = err if isinstance(err, str) else None
    return ex


def parse_lines(
    lines: Iterable[bytes], options: ReadOptions | None = None, *, path: str = "<jsonl>"
) -> Iterator[Exchange]:
    """Exchanges from JSON lines. A bad line is a FormatError naming its line number, except a
    cut last line (no newline: a crash while writing), which is counted and reported."""
    c = (options or ReadOptions()).counters
    offset = 0
    for lineno, line in enumerate(lines, 1):
        start = offset
        offset += len(line)
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            ex = exchange_from_dict(obj)
        except (orjson.JSONDecodeError, _Bad) as e:
            if not line.endswith(b"\n"):
                note_cut(
                    c,
                    path,
                    start,
                    f"the last line ({lineno}) is cut; every line before it was read",
                )
                return
            what = "invalid JSON" if isinstance(e, orjson.JSONDecodeError) else str(e)
            if not isinstance(e, orjson.JSONDecodeError):
                what = f"not a replaygate JSON Lines record ({what})"
            raise FormatError(f"line {lineno}: {what}", path=path, offset=start) from None
        yield ex


def read(path: str, options: ReadOptions) -> Iterator[Exchange]:
    try:
        f: IO[bytes] = (
            gzip.open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115 - closed by _read
            if path.endswith(".gz")
            else open(path, "rb")  # noqa: SIM115 - closed by _read
        )
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    return _read(f, path, options)


def _read(f: IO[bytes], path: str, options: ReadOptions) -> Iterator[Exchange]:
    with f:
        lines = bounded_lines(f, options.max_record_size, path, "JSON Lines record", b"{")
        n = 0
        try:
            for ex in parse_lines(lines, options, path=path):
                n += 1
                yield ex
        except (EOFError, OSError, zlib.error) as e:  # a .gz cut short or damaged
            if isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError):
                raise
            if not n and not isinstance(e, EOFError):
                raise FormatError(f"not a gzip stream: {e}", path=path) from None
            note_cut(
                options.counters,
                path,
                None,
                f"gzip stream is cut or damaged after {n} records ({e})",
            )


class Writer:
    """One JSON object per line (orjson); flushed at close."""

    def __init__(self, path: str, options: WriteOptions | None = None) -> None:
        self.path = path
        mode = "ab" if options is not None and options.append else "wb"
        try:
            if path.endswith(".gz"):  # appending adds a gzip member: still one valid stream
                self._f: IO[bytes] = gzip.open(path, mode, compresslevel=6)  # type: ignore[assignment]  # noqa: SIM115
            else:
                self._f = open(path, mode)  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror}", path=path) from None
        self.records = 0

    def write(self, ex: Exchange) -> None:
        with writing(self.path):
            self._f.write(orjson.dumps(exchange_to_dict(ex)) + b"\n")
        self.records += 1

    def flush(self) -> None:
        with writing(self.path):
            self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            with writing(self.path):
                self._f.close()
