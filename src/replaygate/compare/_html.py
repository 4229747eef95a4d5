"""HTML bodies compared by structure: every element, attribute and text node has a path.

Paths are XPath-like and name what a person sees in the page source:
``/html/body/div#main/table/tbody/tr[3]/td[2]/text()`` (an element's own text),
``/html/body/form/input[2]/@value`` (an attribute) and ``/html/body/div[3]`` (an element that is
missing or extra). ``#id`` names an element by its id; ``[k]`` counts same-tag siblings and is
written only when there are several. Because each path is its own difference field, noise is
learned per path: a footer saying "queries took 12 ms" is noise at its own path, while a changed
table cell elsewhere in the same page still counts.

Children are aligned before they are compared (a subtree hash finds the unchanged ones, then
same-tag siblings are paired in order), so one inserted row is one ``extra`` element, not a
difference on every later row. The parser is lexbor (``selectolax``): it follows the WHATWG
parsing algorithm like html5lib (same trees on broken markup) at lxml's speed or better; see
``python -m bench html_parsers``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ._text import align

__all__ = ["HtmlNode", "diff_html", "parse_html"]

MAX_ELEMENTS = 20_000  # per page; larger pages are compared by line (bounded cost)
MAX_DEPTH = 200


@dataclass(slots=True)
class HtmlNode:
    tag: str
    attrs: dict[str, str]
    text: str
    children: list[HtmlNode] = field(default_factory=list)
    step: str = ""
    digest: int = 0

    @property
    def signature(self) -> str:
        ident = self.attrs.get("id")
        return self.tag + "#" + ident if ident else self.tag


def _norm_text(s: str) -> str:
    return " ".join(s.split())


def parse_html(text: str) -> HtmlNode | None:
    """The element tree (comments dropped, whitespace collapsed), or None when the page is
    too large or too deep to compare element by element."""
    tree = LexborHTMLParser(text)
    root = tree.root
    if root is None:
        return None
    count = [0]
    out = _build(root, count, 0)
    if out is None:
        return None
    out.step = root.tag or "html"
    _name_children(out)
    return out


def _build(node: LexborNode, count: list[int], depth: int) -> HtmlNode | None:
    count[0] += 1
    if count[0] > MAX_ELEMENTS or depth > MAX_DEPTH:
        return None
    attrs = {str(k): "" if v is None else str(v) for k, v in node.attributes.items()}
    me = HtmlNode(str(node.tag), attrs, _norm_text(node.text(deep=False)))
    for child in node.iter(include_text=False):
        tag = child.tag or ""
        if not tag or tag.startswith(("-", "_", "!")):
            continue
        c = _build(child, count, depth + 1)
        if c is None:
            return None
        me.children.append(c)
    me.digest = hash(
        (me.tag, tuple(sorted(me.attrs.items())), me.text, tuple(c.digest for c in me.children))
    )
    return me


def _name_children(node: HtmlNode) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        per_tag: dict[str, int] = {}
        for c in n.children:
            per_tag[c.tag] = per_tag.get(c.tag, 0) + 1
        seen: dict[str, int] = {}
        for c in n.children:
            ident = c.attrs.get("id")
            seen[c.tag] = seen.get(c.tag, 0) + 1
            if ident and " " not in ident and "/" not in ident:
                c.step = f"{c.tag}#{ident}"
            elif per_tag[c.tag] > 1:
                c.step = f"{c.tag}[{seen[c.tag]}]"
            else:
                c.step = c.tag
            stack.append(c)


# emit(field_path, kind, original, replayed) -> False when enough differences were found
Emit = Callable[[str, str, object, object], bool]


def diff_html(
    a: HtmlNode, b: HtmlNode, emit: Emit, same_but_tokens: Callable[[str, str], bool]
) -> None:
    """Report every difference between two element trees through ``emit``."""
    _diff_node(a, b, "/" + a.step, emit, same_but_tokens)


def _diff_node(
    a: HtmlNode,
    b: HtmlNode,
    path: str,
    emit: Emit,
    tokens: Callable[[str, str], bool],
) -> bool:
    if a.digest == b.digest:
        return True
    if a.text != b.text:
        kind = "tokens" if tokens(a.text, b.text) else "changed"
        if not emit(path + "/text()", kind, a.text, b.text):
            return False
    if a.attrs != b.attrs:
        for name in sorted(a.attrs.keys() | b.attrs.keys()):
            va = a.attrs.get(name)
            vb = b.attrs.get(name)
            if va == vb:
                continue
            p = f"{path}/@{name}"
            if va is None:
                ok = emit(p, "extra", None, vb)
            elif vb is None:
                ok = emit(p, "missing", va, None)
            else:
                ok = emit(p, "tokens" if tokens(va, vb) else "changed", va, vb)
            if not ok:
                return False
    return _diff_children(a, b, path, emit, tokens)


def _diff_children(
    a: HtmlNode, b: HtmlNode, path: str, emit: Emit, tokens: Callable[[str, str], bool]
) -> bool:
    ca, cb = a.children, b.children
    if not ca and not cb:
        return True
    # bounded alignment (see _text.align); what it leaves unaligned is paired by signature
    # below, and identical pairs cost nothing
    for op, i1, i2, j1, j2 in align([c.digest for c in ca], [c.digest for c in cb]):
        if op == "equal":
            continue
        xa, xb = ca[i1:i2], cb[j1:j2]
        pairs, missing, extra = _pair_by_signature(xa, xb)
        for x, y in pairs:
            if not _diff_node(x, y, path + "/" + x.step, emit, tokens):
                return False
        for x in missing:
            if not emit(path + "/" + x.step, "missing", _outline(x), None):
                return False
        for y in extra:
            if not emit(path + "/" + y.step, "extra", None, _outline(y)):
                return False
    return True


def _pair_by_signature(
    xa: list[HtmlNode], xb: list[HtmlNode]
) -> tuple[list[tuple[HtmlNode, HtmlNode]], list[HtmlNode], list[HtmlNode]]:
    """The k-th child with a given tag (and id) on one side pairs with the k-th on the other;
    the rest is missing or extra. Linear, whatever the number of siblings."""
    queues: dict[str, list[HtmlNode]] = {}
    for y in reversed(xb):
        queues.setdefault(y.signature, []).append(y)
    pairs: list[tuple[HtmlNode, HtmlNode]] = []
    missing: list[HtmlNode] = []
    used: set[int] = set()
    for x in xa:
        q = queues.get(x.signature)
        if q:
            y = q.pop()
            pairs.append((x, y))
            used.add(id(y))
        else:
            missing.append(x)
    extra = [y for y in xb if id(y) not in used]
    return pairs, missing, extra


def _outline(n: HtmlNode, limit: int = 200) -> str:
    """A short rendering of an element for samples: ``<tr> 982 Customer 7 …``."""
    parts: list[str] = []
    size = 0
    stack = [n]
    while stack and size < limit:
        x = stack.pop()
        if x.text:
            parts.append(x.text)
            size += len(x.text) + 1
        stack.extend(reversed(x.children))
    attrs = "".join(f' {k}="{v}"' for k, v in list(n.attrs.items())[:3])
    return (f"<{n.tag}{attrs}> " + " ".join(parts))[:limit]
