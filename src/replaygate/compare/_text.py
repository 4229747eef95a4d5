"""Text bodies by line and CSV bodies by cell, each difference at its own path.

Lines: ``line[12]`` is line 12 of the original (after aligning both texts with a line diff, so
an inserted line is one ``extra`` difference, not a change on every later line). CSV: the first
row is the header and columns are keyed by it, rows are folded like JSON array items:
``csv[*].total`` is "the total column", so a volatile column is noise once while a changed price
column still counts. Rows are aligned the same way lines are.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Callable, Hashable, Sequence

__all__ = ["align", "diff_csv", "diff_lines"]

MAX_LINES = 5000
MAX_ROWS = 5000

Emit = Callable[[str, str, object, object], bool]
Tokens = Callable[[str, str], bool]
Opcode = tuple[str, int, int, int, int]
ALIGN_CELLS = 250_000  # items x items beyond which the middle is paired in order, not aligned


def align(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[Opcode]:
    """``SequenceMatcher`` opcodes with a bounded cost: the common head and tail are cut off
    first (most changes are local), and a middle too large to align cheaply is one
    ``replace`` block (the caller pairs its items in order)."""
    n, m = len(a), len(b)
    lo = 0
    while lo < n and lo < m and a[lo] == b[lo]:
        lo += 1
    hi = 0
    while hi < n - lo and hi < m - lo and a[n - 1 - hi] == b[m - 1 - hi]:
        hi += 1
    out: list[Opcode] = []
    if lo:
        out.append(("equal", 0, lo, 0, lo))
    ma, mb = a[lo : n - hi], b[lo : m - hi]
    if ma or mb:
        if len(ma) * len(mb) <= ALIGN_CELLS:
            sm = difflib.SequenceMatcher(None, ma, mb)  # autojunk: repeated items stay cheap
            out.extend(
                (op, i1 + lo, i2 + lo, j1 + lo, j2 + lo) for op, i1, i2, j1, j2 in sm.get_opcodes()
            )
        else:
            out.append(("replace", lo, n - hi, lo, m - hi))
    if hi:
        out.append(("equal", n - hi, n, m - hi, m))
    return out


def diff_lines(ta: str, tb: str, emit: Emit, tokens: Tokens, prefix: str = "line") -> None:
    la = ta.splitlines()[:MAX_LINES]
    lb = tb.splitlines()[:MAX_LINES]
    if la == lb:
        if ta != tb:  # line ends or the final newline only
            emit(f"{prefix}[{len(la)}]", "changed", ta[-20:], tb[-20:])
        return
    for op, i1, i2, j1, j2 in align(la, lb):
        if op == "equal":
            continue
        n = min(i2 - i1, j2 - j1)
        for k in range(n):
            x, y = la[i1 + k], lb[j1 + k]
            if x == y:
                continue
            kind = "tokens" if tokens(x, y) else "changed"
            if not emit(f"{prefix}[{i1 + k + 1}]", kind, x, y):
                return
        for k in range(i1 + n, i2):
            if not emit(f"{prefix}[{k + 1}]", "missing", la[k], None):
                return
        for k in range(j1 + n, j2):
            # an added line is placed after the original line it follows
            if not emit(f"{prefix}[{i2 + 1}]", "extra", None, lb[k]):
                return


def parse_csv(text: str) -> list[list[str]] | None:
    """Rows of a CSV body, or None when it is not CSV (ragged beyond repair, NUL bytes)."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:
        return None
    return rows[: MAX_ROWS + 1]


def diff_csv(ta: str, tb: str, emit: Emit, tokens: Tokens) -> bool:
    """False when either side is not CSV (the caller compares lines instead)."""
    ra = parse_csv(ta)
    rb = parse_csv(tb)
    if not ra or not rb:
        return False
    ha, hb = ra[0], rb[0]
    cols_a = {c: i for i, c in reversed(list(enumerate(ha)))}
    cols_b = {c: i for i, c in reversed(list(enumerate(hb)))}
    for c in ha:
        if c not in cols_b and not emit(f"csv[*].{_col(c)}", "missing", c, None):
            return True
    for c in hb:
        if c not in cols_a and not emit(f"csv[*].{_col(c)}", "extra", None, c):
            return True
    reordered = [c for c in ha if c in cols_b] != [c for c in hb if c in cols_a]
    if reordered and not emit("csv.header", "order", ",".join(ha), ",".join(hb)):
        return True
    shared = [c for c in ha if c in cols_b]
    da = [tuple(_cell(r, cols_a[c]) for c in shared) for r in ra[1:]]
    db = [tuple(_cell(r, cols_b[c]) for c in shared) for r in rb[1:]]
    if len(da) != len(db) and not emit("csv", "length", len(da), len(db)):
        return True
    for op, i1, i2, j1, j2 in align(da, db):
        if op == "equal":
            continue
        n = min(i2 - i1, j2 - j1)
        for k in range(n):
            x, y = da[i1 + k], db[j1 + k]
            for c, vx, vy in zip(shared, x, y, strict=True):
                if vx != vy:
                    kind = "tokens" if tokens(vx, vy) else "changed"
                    if not emit(f"csv[*].{_col(c)}", kind, vx, vy):
                        return True
        for k in range(i1 + n, i2):
            if not emit("csv[*]", "missing", ",".join(da[k]), None):
                return True
        for k in range(j1 + n, j2):
            if not emit("csv[*]", "extra", None, ",".join(db[k])):
                return True
    return True


def _cell(row: list[str], i: int) -> str:
    return row[i] if i < len(row) else ""


def _col(name: str) -> str:
    name = name.strip()
    if name and all(ch.isalnum() or ch in "_-" for ch in name):
        return name
    return '"' + name.replace('"', '\\"') + '"'
