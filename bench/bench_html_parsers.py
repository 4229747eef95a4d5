"""HTML parser choice for structural body diffs: selectolax (lexbor), lxml, html5lib.

Each parser parses real-looking pages (a 500-row data table like datasette's, an article with
navigation, a form page with a CSRF token, and a broken page with unclosed tags) and walks
the tree the way ``compare.diff`` does (tag, attributes, own text of every element). Ratios are
against selectolax measured in the same run; the element counts show whether the parsers
agree on the tree (html5lib is the WHATWG reference algorithm).

    python -m bench html_parsers [--rounds 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable


def _table_page(rows: int) -> str:
    body = "".join(
        f'<tr><td class="col-id"><a href="/db/orders/{i}">{i}</a></td><td class="col-name">'
        f'Customer {i % 97}</td><td class="col-total">{i * 3.25:.2f}</td>'
        f'<td class="col-date">2026-11-{i % 28 + 1:02d}</td></tr>'
        for i in range(rows)
    )
    return (
        '<!DOCTYPE html><html><head><title>orders</title><link rel="stylesheet" href="/-/app.css">'
        "<script>var x = 1 < 2;</script></head><body><header><nav><a href='/'>home</a></nav>"
        f'</header><section class="content"><h1>orders</h1><table class="rows-and-columns">'
        f"<thead><tr><th>id</th><th>name</th><th>total</th><th>date</th></tr></thead><tbody>{body}"
        "</tbody></table></section><footer>Powered by Datasette · Queries took 12.345ms</footer>"
        "</body></html>"
    )


def _article() -> str:
    paras = "".join(
        f"<p>Paragraph {i} with <b>bold</b>, <i>italic</i> and a <a href='/x/{i}'>link</a>.</p>"
        for i in range(80)
    )
    nav = "".join(f"<li><a href='/section/{i}'>Section {i}</a></li>" for i in range(40))
    return f"<html><body><nav><ul>{nav}</ul></nav><article><h1>Title</h1>{paras}</article></body></html>"


def _form() -> str:
    inputs = "".join(
        f'<label for="f{i}">Field {i}</label><input id="f{i}" name="f{i}" type="text" value="v{i}">'
        for i in range(30)
    )
    return (
        '<html><body><form method="post" action="/login"><input type="hidden" name="csrftoken" '
        f'value="IjE3MDAwMDAwMDAi.ZXhhbXBsZQ.c2lnbmF0dXJlLXZhbHVl">{inputs}'
        "<button type=submit>Log in</button></form></body></html>"
    )


def _broken() -> str:
    return "<html><body>" + "<div><p>unclosed <b>bold <i>both</div>" * 200 + "<table><td>x</table>"


PAGES = {
    "table-500-rows": _table_page(500),
    "article": _article(),
    "form": _form(),
    "broken-markup": _broken(),
}


def _walk_selectolax(text: str) -> int:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(text)
    n = 0
    root = tree.root
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if node.tag and not node.tag.startswith("-"):
            n += 1
            _ = node.attributes
            _ = node.text(deep=False)
        stack.extend(node.iter(include_text=False))
    return n


def _walk_lxml(text: str) -> int:
    import lxml.html

    root = lxml.html.document_fromstring(text)
    n = 0
    for el in root.iter():
        if isinstance(el.tag, str):
            n += 1
            _ = dict(el.attrib)
            _ = (el.text or "") + "".join(c.tail or "" for c in el)
    return n


def _walk_html5lib(text: str) -> int:
    import html5lib

    root = html5lib.parse(text, namespaceHTMLElements=False)
    n = 0
    for el in root.iter():
        if isinstance(el.tag, str):
            n += 1
            _ = dict(el.attrib)
            _ = (el.text or "") + "".join(c.tail or "" for c in el)
    return n


PARSERS: dict[str, tuple[str, Callable[[str], int]]] = {
    "selectolax": ("selectolax", _walk_selectolax),
    "lxml": ("lxml", _walk_lxml),
    "html5lib": ("html5lib", _walk_html5lib),
}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench html_parsers")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args(argv)
    have = {k: v for k, v in PARSERS.items() if importlib.util.find_spec(v[0]) is not None}
    missing = sorted(set(PARSERS) - set(have))
    if missing:
        print(f"not installed (skipped): {', '.join(missing)}")
    for page, text in PAGES.items():
        times: dict[str, float] = {}
        counts: dict[str, int] = {}
        for name, (_mod, walk) in have.items():
            counts[name] = walk(text)
            t0 = time.perf_counter()
            for _ in range(args.rounds):
                walk(text)
            times[name] = (time.perf_counter() - t0) / args.rounds
        ref = times.get("selectolax") or next(iter(times.values()))
        print(f"{page} ({len(text) // 1024} KiB):")
        for name, t in times.items():
            print(f"  {name:10s} {t * 1000:8.2f} ms/page  x{t / ref:5.1f}  elements {counts[name]}")
    return 0
