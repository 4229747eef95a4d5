"""Masking data files with the traffic rules: CSV, JSON / JSON Lines and SQL dumps.

Masked traffic is only useful in staging if staging's database holds the same pseudonyms: a
masked request for ``u5f3a9c1e2b@example.com`` must find that user. So data goes through the
same :class:`~._mask_engine.Masker` (same key, rules, detectors, pseudonyms) with **column
names acting as field names**: a value is masked exactly as a JSON value under a key of that
name would be in a request body (``password`` -> secret field, ``email`` -> e-mail detector,
``json_paths`` such as ``$.email`` apply, JSON held in a column is masked inside).

Everything streams: CSV and JSON Lines row by row, JSON arrays element by element, SQL dumps
statement by statement (``INSERT`` from ``pg_dump --inserts`` / ``--column-inserts``,
``mysqldump``, ``sqlite3 .dump``, and PostgreSQL ``COPY ... FROM stdin`` blocks). Memory is
bounded by the largest row / statement. Values that are canonical integers (``1234``, not
``01234``) in CSV and COPY, and unquoted SQL numbers, are masked as numbers, like a JSON number.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, cast

from ..errors import FormatError, InputError
from ._mask_engine import _DROP, Masker
from ._mask_sql import _INT, SqlMasker
from ._mask_values import findings_summary

__all__ = ["DATA_FORMATS", "DataMasker", "DataStats", "data_format", "mask_data_file", "mask_text"]

DATA_FORMATS = ("csv", "tsv", "json", "jsonl", "sql")
_EXT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".sql": "sql",
    ".dump": "sql",
}


def data_format(path: str) -> str:
    """The format of a data file by its extension (``.gz`` allowed after it)."""
    p = path.lower()
    if p.endswith(".gz"):
        p = p[:-3]
    ext = os.path.splitext(p)[1]
    fmt = _EXT.get(ext)
    if fmt is None:
        known = ", ".join(sorted(_EXT))
        raise InputError(
            f"unknown data file extension {ext or '(none)'!r} (known: {known}, +.gz)", path=path
        )
    return fmt


@dataclass
class DataStats:
    """Counts only, never values."""

    rows: int = 0
    changed_rows: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    already_masked: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        n = sum(self.findings.values())
        head = f"mask-data: {n} value{'s' * (n != 1)} masked in {self.changed_rows} of {self.rows}"
        return findings_summary(f"{head} rows", self.findings, self.already_masked)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "changed_rows": self.changed_rows,
            "findings": dict(sorted(self.findings.items())),
            "already_masked": dict(sorted(self.already_masked.items())),
            "notes": dict(self.notes),
        }


def _open(path: str, mode: str, gz: bool | None = None) -> IO[str]:
    if path == "-":
        raise InputError("mask-data reads and writes files, not standard input/output", path=path)
    try:
        if path.lower().endswith(".gz") if gz is None else gz:
            return cast(
                IO[str],
                gzip.open(path, mode + "t", encoding="utf-8", errors="surrogateescape", newline=""),
            )
        return open(path, mode, encoding="utf-8", errors="surrogateescape", newline="")
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None


class DataMasker:
    """Masks data files with one :class:`Masker` (the mask stage's, so counts add up)."""

    def __init__(self, masker: Masker) -> None:
        self.m = masker
        self.stats = DataStats()
        self._changed = False
        masker.record = self._record

    def _record(self, rule: str, loc: object, masked: bool) -> None:
        if rule == "skipped_binary":
            return
        if masked:
            self.stats.already_masked[rule] += 1
        else:
            self.stats.findings[rule] += 1
            self._changed = True

    # -- values ------------------------------------------------------------------------------
    def value(self, column: str, value: Any, where: str) -> Any:
        """One value under ``column``, masked as a JSON value under a key of that name
        (``_DROP`` when the action drops it)."""
        if value is None or isinstance(value, bool):
            return value
        m = self.m
        fields = m.rules.fields
        path: list[str | int] = [column] if column else []
        secret = m._secret_key(column, path, fields) if column else ""
        new, _changed = m._walk(value, path, where, fields, secret)
        return new

    def text_cell(self, column: str, text: str, where: str) -> str | None:
        """A cell that is text on disk (CSV, COPY): canonical integers count as numbers."""
        v: Any = int(text) if _INT.fullmatch(text) else text
        new = self.value(column, v, where)
        if new is _DROP:
            return None
        return new if isinstance(new, str) else str(new)

    def _row_done(self) -> None:
        self.stats.rows += 1
        if self._changed:
            self.stats.changed_rows += 1
        self._changed = False

    # -- files ---------------------------------------------------------------------------------
    def run(self, src: str, dst: str, fmt: str | None = None) -> DataStats:
        fmt = fmt or data_format(src)
        if fmt not in DATA_FORMATS:
            raise InputError(f"--format: {fmt!r} is not one of {', '.join(DATA_FORMATS)}")
        inp = _open(src, "r")
        tmp = f"{dst}.part{os.getpid()}"  # renamed when complete: no half-masked output
        try:
            out = _open(tmp, "w", gz=dst.lower().endswith(".gz"))
            try:
                {
                    "csv": lambda: self.csv(inp, out, src, ","),
                    "tsv": lambda: self.csv(inp, out, src, "\t"),
                    "jsonl": lambda: self.jsonl(inp, out, src),
                    "json": lambda: self.json(inp, out, src),
                    "sql": lambda: SqlMasker(self, src).run(inp, out),
                }[fmt]()
            finally:
                out.close()
            os.replace(tmp, dst)
        except UnicodeDecodeError as e:
            raise FormatError(f"not UTF-8 text ({e.reason})", path=src) from None
        except (gzip.BadGzipFile, EOFError, zlib.error):
            raise FormatError("damaged or truncated gzip data", path=src) from None
        except InputError as e:
            if e.path == tmp:
                raise InputError(e.message, path=dst) from None
            raise
        except OSError as e:
            raise InputError(f"cannot read or write ({e.strerror})", path=dst) from None
        finally:
            inp.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.stats

    def csv(self, inp: IO[str], out: IO[str], path: str, delimiter: str) -> None:
        first = inp.readline()
        if not first:
            return
        term = "\r\n" if first.endswith("\r\n") else "\n"
        reader = csv.reader(itertools.chain([first], inp), delimiter=delimiter, strict=True)
        writer = csv.writer(out, delimiter=delimiter, lineterminator=term)
        try:
            header = next(reader)
            writer.writerow(header)
            names = [h.strip() for h in header]
            for row in reader:
                new = [
                    self.text_cell(names[i] if i < len(names) else "", v, "data") or "" if v else v
                    for i, v in enumerate(row)
                ]
                writer.writerow(new)
                self._row_done()
        except csv.Error as e:
            raise FormatError(f"line {reader.line_num}: bad CSV ({e})", path=path) from None

    def jsonl(self, inp: IO[str], out: IO[str], path: str) -> None:
        for lineno, line in enumerate(inp, 1):
            body = line.rstrip("\r\n")
            if not body.strip():
                out.write(line)
                continue
            out.write(self._json_record(body, path, f"line {lineno}") + line[len(body) :])

    def _json_record(self, text: str, path: str, where: str) -> str:
        r = self.m.json_doc(text, "data")
        if r is False:
            raise FormatError(f"{where}: not JSON", path=path)
        self._row_done()
        return text if r is True else str(r)

    def json(self, inp: IO[str], out: IO[str], path: str) -> None:
        """A top-level array is streamed element by element; any other document is masked
        whole (its size bounds memory)."""
        head = inp.read(1 << 16)
        stripped = head.lstrip()
        if not stripped.startswith("["):
            doc = head + inp.read()
            if doc.strip():
                out.write(self._json_record(doc.strip(), path, "document"))
                out.write("\n")
            return
        out.write("[")
        n = 0
        for start, elem in _json_elements(head, inp, path):
            out.write(",\n" if n else "\n")
            out.write(self._json_record(elem, path, f"element {n} (offset {start})"))
            n += 1
        out.write("\n]\n" if n else "]\n")


_JSON_TOK = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]|[^\[\]{}",]+')


def _json_elements(head: str, inp: IO[str], path: str) -> Iterator[tuple[int, str]]:
    """The elements of a top-level JSON array, as text, read chunk by chunk."""
    buf = head
    base = 0  # offset of buf[0] in the file (characters)
    pos = buf.index("[") + 1
    depth = 1
    start = pos
    eof = False
    while True:
        m = _JSON_TOK.match(buf, pos)
        if m is None or (m.end() == len(buf) and not eof):
            if eof:
                if buf[pos:].strip():
                    raise FormatError("unterminated JSON string", path=path, offset=base + pos)
                raise FormatError("the JSON array is not closed", path=path, offset=base + pos)
            more = inp.read(1 << 16)
            if not more:
                eof = True
            buf = buf[start:] + more
            base += start
            pos -= start
            start = 0
            continue
        tok = m.group()
        pos = m.end()
        if tok in ("[", "{"):
            depth += 1
        elif tok in ("]", "}"):
            depth -= 1
            if depth == 0:
                elem = buf[start : m.start()].strip()
                if elem:
                    yield base + start, elem
                if buf[pos:].strip() or inp.read(1).strip():
                    raise FormatError("text after the JSON array", path=path, offset=base + pos)
                return
        elif tok == "," and depth == 1:
            elem = buf[start : m.start()].strip()
            if not elem:
                raise FormatError("empty element in the JSON array", path=path, offset=base + start)
            yield base + start, elem
            start = pos


def mask_data_file(
    src: str,
    dst: str,
    *,
    fmt: str | None = None,
    mask_config: str | None = None,
    key_file: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> DataStats:
    """Mask ``src`` into ``dst`` with the ``--mask`` profile (or ``--mask-config`` / the
    ``[mask]`` section of ``config``) and the key of traffic masking."""
    from .mask import MaskStage, mask_stage_from_options

    fmt = fmt or data_format(src)
    if os.path.abspath(src) == os.path.abspath(dst):
        raise InputError("-o: the output must not be the input file", path=dst)
    stage = mask_stage_from_options(
        enabled=True, config_path=mask_config, key_file=key_file, config=config
    )
    assert isinstance(stage, MaskStage)
    return DataMasker(stage.masker).run(src, dst, fmt)


#: for tests and callers that hold text in memory
def mask_text(dm: DataMasker, text: str, fmt: str) -> str:
    inp, out = io.StringIO(text), io.StringIO()
    run: Callable[[], None] = {
        "csv": lambda: dm.csv(inp, out, "<text>", ","),
        "tsv": lambda: dm.csv(inp, out, "<text>", "\t"),
        "jsonl": lambda: dm.jsonl(inp, out, "<text>"),
        "json": lambda: dm.json(inp, out, "<text>"),
        "sql": lambda: SqlMasker(dm, "<text>").run(inp, out),
    }[fmt]
    run()
    return out.getvalue()
