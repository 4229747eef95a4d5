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
_INT = re.compile(r"-?(?:0|[1-9]\d{0,18})")


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
        per = ", ".join(f"{k}={v}" for k, v in sorted(self.findings.items()))
        out = f"mask-data: {n} value{'s' * (n != 1)} masked in {self.changed_rows} of {self.rows} rows"
        if per:
            out += f" ({per})"
        done = sum(self.already_masked.values())
        if done:
            out += f", {done} already masked"
        return out

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


# -- SQL -----------------------------------------------------------------------------------------

_IDENT = r'(?:"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[A-Za-z_][\w$]*)'
_INSERT = re.compile(
    r"\s*(?:INSERT|REPLACE)\b(?:\s+(?:OR\s+\w+|IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY))*"
    rf"\s+INTO\s+(?P<table>{_IDENT}(?:\s*\.\s*{_IDENT})*)\s*(?:\((?P<cols>[^)]*)\))?"
    r"\s*VALUES\s*",
    re.IGNORECASE,
)
_CREATE = re.compile(
    r"\s*CREATE\s+(?:(?:GLOBAL\s+|LOCAL\s+)?(?:TEMP|TEMPORARY)\s+|UNLOGGED\s+)?TABLE\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?P<table>{_IDENT}(?:\s*\.\s*{_IDENT})*)\s*\(",
    re.IGNORECASE,
)
_COPY = re.compile(
    rf"\s*COPY\s+(?P<table>{_IDENT}(?:\s*\.\s*{_IDENT})*)\s*(?:\((?P<cols>[^)]*)\))?"
    r"\s*FROM\s+stdin\b",
    re.IGNORECASE,
)
_IDENT_RX = re.compile(_IDENT)
_NOT_COLUMN = {
    "constraint",
    "primary",
    "unique",
    "foreign",
    "check",
    "key",
    "index",
    "fulltext",
    "spatial",
    "exclude",
    "like",
    "period",
}
#: outside a string: what can start or end something
_LEX_OUT = re.compile(r"['\"`;]|--|/\*|\b[Ee](?=')")
_STR_STD = re.compile(r"'")
_STR_BS = re.compile(r"\\.|'", re.DOTALL)
_VAL_STD = re.compile(
    r"(?P<s>(?P<pre>[Ee]|[Nn]|[XxBb]|_\w+)?'(?:[^']|'')*')"
    r"|(?P<n>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<p>[(),;])|(?P<w>[A-Za-z_][\w$]*|::|\S)|(?P<ws>\s+)"
)
_VAL_BS = re.compile(
    r"(?P<s>(?P<pre>[Ee]|[Nn]|[XxBb]|_\w+)?'(?:[^'\\]|\\.|'')*')"
    r"|(?P<n>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<p>[(),;])|(?P<w>[A-Za-z_][\w$]*|::|\S)|(?P<ws>\s+)",
    re.DOTALL,
)
_BS_OUT = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "Z": "\x1a"}
_COPY_IN = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_COPY_ESC = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.DOTALL)


def _unident(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1].replace('""', '"')
    if len(s) >= 2 and (s[0], s[-1]) in (("`", "`"), ("[", "]")):
        return s[1:-1]
    return s


def _table_key(text: str) -> str:
    parts = [_unident(p.group()) for p in _IDENT_RX.finditer(text)]
    return parts[-1].lower() if parts else text.strip().lower()


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    out, depth, cur, i, quote = [], 0, [], 0, ""
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
            cur.append(c)
        elif c == "(":
            depth += 1
            cur.append(c)
        elif c == ")":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


class SqlMasker:
    """Statement by statement: ``INSERT`` values masked by column, ``COPY`` rows masked by
    column, ``CREATE TABLE`` read for column names; string literals anywhere else are
    scanned as text. MySQL dumps (backslash escapes in strings) are recognised by their
    backquoted names / version comments."""

    def __init__(self, dm: DataMasker, path: str) -> None:
        self.dm = dm
        self.path = path
        self.columns: dict[str, list[str]] = {}
        self.backslash = False
        self.unknown_tables: set[str] = set()

    # -- splitting ------------------------------------------------------------------------------
    def run(self, inp: IO[str], out: IO[str]) -> None:
        buf: list[str] = []
        state = ""  # "" outside, "'" / '"' / "`" in a quoted run, "/*" in a comment
        bs_lit = False  # in an E'...' literal (backslash escapes)
        offset = 0
        start = 0
        copy: tuple[str, list[str]] | None = None
        for line in inp:
            line_off = offset
            offset += len(line.encode("utf-8", "surrogateescape"))
            if copy is not None:
                if line.rstrip("\r\n") == "\\.":
                    copy = None
                    out.write(line)
                else:
                    out.write(self._copy_row(line, *copy))
                continue
            if not buf and not state:
                s = line.lstrip()
                if not s or s.startswith("--"):
                    if not self.backslash and ("MySQL dump" in s or "MariaDB dump" in s):
                        self.backslash = True
                    out.write(line)
                    continue
                if s.startswith("/*!") and not self.backslash:
                    self.backslash = True  # mysqldump version comments
                start = line_off
            rest = line
            while rest:
                state, bs_lit, end = self._lex(rest, state, bs_lit)
                if end < 0:
                    buf.append(rest)
                    break
                buf.append(rest[:end])
                stmt = "".join(buf)
                buf = []
                out.write(self._statement(stmt, start))
                m = _COPY.match(stmt)
                if m is not None:
                    copy = (
                        _table_key(m.group("table")),
                        self._cols(m.group("table"), m.group("cols")),
                    )
                rest = rest[end:]
                if copy is not None:  # the data starts on the next line
                    out.write(rest)
                    break
                if not rest.strip():
                    out.write(rest)
                    break
                start = line_off
        if copy is not None:
            raise FormatError(
                "COPY data is not closed by a \\. line", path=self.path, offset=offset
            )
        if buf:
            tail = "".join(buf)
            if state in ("'", '"', "`", "/*"):
                raise FormatError(
                    "the dump ends inside a quoted string or comment", path=self.path, offset=start
                )
            if tail.strip():  # a last statement without ';'
                out.write(self._statement(tail, start))
            else:
                out.write(tail)

    def _lex(self, text: str, state: str, bs_lit: bool) -> tuple[str, bool, int]:
        """Follow quotes and comments through ``text``; (state, E-literal?, index after the
        ending ``;`` or -1)."""
        i = 0
        n = len(text)
        while i < n:
            if state == "":
                m = _LEX_OUT.search(text, i)
                if m is None:
                    return "", False, -1
                t = m.group()
                i = m.end()
                if t == ";":
                    return "", False, i
                if t == "--":
                    nl = text.find("\n", i)
                    if nl < 0:
                        return "", False, -1
                    i = nl + 1
                elif t == "/*":
                    state = "/*"
                elif t in ("E", "e"):
                    bs_lit = True
                else:
                    state = t
                    if t == "'" and not bs_lit:
                        bs_lit = self.backslash
            elif state == "/*":
                j = text.find("*/", i)
                if j < 0:
                    return state, bs_lit, -1
                i = j + 2
                state = ""
            elif state == "'":
                rx = _STR_BS if bs_lit else _STR_STD
                while True:
                    m = rx.search(text, i)
                    if m is None:
                        return state, bs_lit, -1
                    i = m.end()
                    if m.group() == "'":
                        break
                state, bs_lit = "", False
            else:
                j = text.find(state, i)
                if j < 0:
                    return state, bs_lit, -1
                i = j + 1
                state = ""
        return state, bs_lit, -1

    # -- statements -----------------------------------------------------------------------------
    def _cols(self, table: str, cols: str | None) -> list[str]:
        if cols is not None:
            return [_unident(c) for c in _split_top(cols)]
        key = _table_key(table)
        known = self.columns.get(key)
        if known is None:
            if key not in self.unknown_tables:
                self.unknown_tables.add(key)
                self.dm.stats.notes[
                    f"table {key}: no column names (no CREATE TABLE, no column list): "
                    "detectors only"
                ] += 1
            return []
        return known

    def _statement(self, stmt: str, offset: int) -> str:
        if "`" in stmt[:200] and not self.backslash:
            self.backslash = True  # backquoted names: a MySQL dump
        m = _INSERT.match(stmt)
        if m is not None:
            cols = self._cols(m.group("table"), m.group("cols"))
            return stmt[: m.end()] + self._values(stmt[m.end() :], cols, offset)
        c = _CREATE.match(stmt)
        if c is not None:
            body = stmt[c.end() :]
            close = body.rfind(")")
            names = []
            for item in _split_top(body[: close if close >= 0 else len(body)]):
                first = _IDENT_RX.search(item)
                if first is None or item.strip() == "":
                    continue
                name = _unident(first.group())
                if name.lower() in _NOT_COLUMN and not first.group().startswith(('"', "`", "[")):
                    continue
                names.append(name)
            self.columns[_table_key(c.group("table"))] = names
        return self._literals(stmt, offset)

    def _literals(self, stmt: str, offset: int) -> str:
        """Any other statement: its string literals scanned as text."""
        return self._values(stmt, None, offset)

    def _values(self, text: str, cols: list[str] | None, offset: int) -> str:
        """Mask the literals of ``VALUES (...), (...)`` by column (``cols`` None: every
        literal as text, anywhere)."""
        rx = _VAL_BS if self.backslash else _VAL_STD
        out: list[str] = []
        pos = 0
        depth = 0
        col = 0
        first_done = False  # the first literal of a column inside a function call masked
        dm = self.dm
        changed = False
        for m in rx.finditer(text):
            kind = m.lastgroup
            tok = m.group()
            if kind == "ws":
                continue
            if kind == "p":
                if tok == "(":
                    depth += 1
                    if depth == 1:
                        col, first_done = 0, False
                elif tok == ")":
                    depth -= 1
                    if depth == 0 and cols is not None:
                        dm._row_done()
                elif tok == "," and depth == 1:
                    col, first_done = col + 1, False
                continue
            name = cols[col] if cols and col < len(cols) else ""
            if kind == "s":
                pre = (m.group("pre") or "").lower()
                if (
                    pre in ("x", "b")
                    or (depth > 1 and first_done)
                    or (cols is not None and depth == 0)
                ):
                    continue
                first_done = True
                bs = self.backslash or pre == "e"
                inner = tok[len(pre) + 1 : -1]
                value = _unescape(inner, bs)
                where = "data"
                new: Any
                if cols is None:
                    new = dm.m.text(value, where)
                    new = value if new is None else new
                else:
                    new = dm.value(name, value, where)
                if new is _DROP:
                    rep = "NULL"
                elif new == value:
                    continue
                else:
                    rep = tok[: len(pre)] + "'" + _escape(str(new), bs) + "'"
            elif kind == "n" and cols is not None and depth == 1:
                num: Any
                try:
                    num = int(tok) if _INT.fullmatch(tok) else float(tok)
                except ValueError:
                    continue
                new = dm.value(name, num, "data")
                if new is _DROP:
                    rep = "NULL"
                elif new == num and type(new) is type(num):
                    continue
                elif isinstance(new, int):
                    rep = str(new)
                else:
                    rep = "'" + _escape(str(new), self.backslash) + "'"
            else:
                continue
            out.append(text[pos : m.start()])
            out.append(rep)
            pos = m.end()
            changed = True
        if not changed:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _copy_row(self, line: str, table: str, cols: list[str]) -> str:
        body = line.rstrip("\r\n")
        end = line[len(body) :]
        cells = body.split("\t")
        out = []
        for i, raw in enumerate(cells):
            if raw == "\\N":
                out.append(raw)
                continue
            value = _COPY_ESC.sub(_copy_unescape, raw) if "\\" in raw else raw
            new = self.dm.text_cell(cols[i] if i < len(cols) else "", value, "data")
            if new is None:
                out.append("\\N")
            elif new == value:
                out.append(raw)
            else:
                out.append(_copy_escape(new))
        self.dm._row_done()
        return "\t".join(out) + end


def _unescape(inner: str, backslash: bool) -> str:
    if backslash and "\\" in inner:
        inner = re.sub(
            r"\\(.)", lambda m: _BS_OUT.get(m.group(1), m.group(1)), inner, flags=re.DOTALL
        )
    return inner.replace("''", "'")


def _escape(value: str, backslash: bool) -> str:
    if backslash:
        value = value.replace("\\", "\\\\").replace("\0", "\\0")
    return value.replace("'", "''")


def _copy_unescape(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        return chr(int(m.group(1), 8))
    if m.group(2) is not None:
        return chr(int(m.group(2), 16))
    c = m.group(3)
    return _COPY_IN.get(c, c)


def _copy_escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


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
