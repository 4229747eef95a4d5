"""Masking SQL dumps statement by statement, with the column names as field names.

``INSERT`` statements from ``pg_dump --inserts`` / ``--column-inserts``, ``mysqldump`` and
``sqlite3 .dump``, and PostgreSQL ``COPY ... FROM stdin`` blocks; ``CREATE TABLE`` gives the
column names of ``INSERT`` statements that name none. Each value goes through the
:class:`~._mask_data.DataMasker` (the same pseudonyms as traffic); string literals anywhere
else are scanned as text. Memory is bounded by the largest statement.
"""

from __future__ import annotations

import re
from typing import IO, TYPE_CHECKING, Any

from ..errors import FormatError
from ._mask_json import _DROP

if TYPE_CHECKING:
    from ._mask_data import DataMasker

__all__ = ["SqlMasker"]

#: a canonical integer (``1234``, not ``01234``): masked as a number, like a JSON one
_INT = re.compile(r"-?(?:0|[1-9]\d{0,18})")

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
