"""Field names that mean "secret" (``password``, ``*token``, ``api_key``...): matching a
name (:class:`FieldMatcher`) and finding ``name=value`` pairs in free text (the ``field``
patterns of :class:`~._detectors.TextScanner`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["FIELD_NEEDS", "FieldMatcher", "field_patterns", "field_word", "normalize_field"]


#: what :func:`normalize_field` drops (every character but letters and digits)
_SEPARATORS = re.compile(r"[\W_]+")


def normalize_field(name: str) -> str:
    """``X-Access_Token`` -> ``xaccesstoken``: how field names are compared."""
    return "".join(c for c in name.lower() if c.isalnum())


class FieldMatcher:
    """Which field names mean "secret", by normalised name (``X-Access_Token`` ->
    ``xaccesstoken``). A pattern is a name (exact), ``*name`` (ends with), ``name*``
    (starts with) or ``*name*`` (contains): ``*token`` matches ``csrf_token`` but not
    ``max_tokens``."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p for p in patterns if normalize_field(p))
        alts = []
        for p in self.patterns:
            core = re.escape(normalize_field(p))
            alts.append(
                (".*" if p.startswith("*") else "") + core + (".*" if p.endswith("*") else "")
            )
        self._rx = re.compile("(?:" + "|".join(alts) + ")") if alts else None
        pieces = {max(re.split(r"[^a-z0-9]+", p.lower()), key=len) for p in self.patterns} - {""}
        self._words = re.compile("|".join(sorted(map(re.escape, pieces)))) if pieces else None
        #: the answer of :meth:`matches` for the names seen so far (a bounded cache, which
        #: hot loops read directly)
        self.known: dict[str, bool] = {}

    def matches(self, name: str) -> bool:
        hit = self.known.get(name)
        if hit is None:
            n = normalize_field(name)
            hit = bool(n) and self._rx is not None and self._rx.fullmatch(n) is not None
            if len(self.known) < 4096:
                self.known[name] = hit
        return hit

    def mentioned(self, text: str) -> bool:
        """Could ``text`` contain one of these names (a cheap, loose pre-check)? Names match
        normalised (``p assword``, ``PASS.WORD``): the text is looked at without its
        separators too."""
        if self._words is None:
            return False
        low = text.lower()
        return self._words.search(low) is not None or (
            self._words.search(_SEPARATORS.sub("", low)) is not None
        )

    def extended(self, more: Iterable[str]) -> FieldMatcher:
        return FieldMatcher((*self.patterns, *more))


def field_word(pattern: str) -> str:
    """The longest literal piece of a field pattern: a cheap ``in`` test before its regex."""
    return max(re.split(r"[^a-z0-9]+", pattern.lower()), key=len)


#: a literal every match of a (non key=value) field pattern holds, in the lower-cased text
FIELD_NEEDS = {"field_part": "name=", "field_html": "name=", "field_xml": "</"}


def field_patterns(names: Iterable[str]) -> list[tuple[str, str]]:
    """Named fields in free text (logs, YAML, HTML, XML, echoed requests):

    * ``password=...``, ``"api_key": "..."``, ``token: ...``
    * a multipart part ``name="password"`` followed by its content
    * an HTML input ``name="password" ... value="..."`` and an XML element ``<password>``
    """

    def alt(n: str) -> str:
        return re.sub(r"(?:\\-|_)", "[-_]?", re.escape(n.strip("*").lower()))

    pats = [n for n in names if normalize_field(n)]
    if not pats:
        return []
    alts = sorted({alt(n) for n in pats}, key=len, reverse=True)
    name = r"[\w-]{0,40}?(?:" + "|".join(alts) + r")"
    # key=value, one regex per name so that it starts with a literal (``re`` then scans
    # for it quickly; an alternation of names is tried at every position, 100x slower);
    # exact names need a boundary before them, prefix patterns (``password*``) allow a tail
    out: list[tuple[str, str]] = []
    for n in sorted(pats, key=len, reverse=True):
        a = alt(n)
        head = "" if n.startswith("*") else r"(?<![\w-])"
        if head and a.isalnum():
            # the same boundary tested after the literal name (``pin(?<![\w-]pin)``): the
            # pattern then starts with a literal that ``re`` finds quickly, where a leading
            # look-behind is tried at every position (10x slower; same matches)
            a, head = f"{a}(?<![\\w-]{a})", ""
        tail = r"[\w-]{0,40}" if n.endswith("*") else ""
        out.append(
            (
                "kv:" + field_word(n),
                head + a + tail + r"(?:\\{0,7}[\"'])?[ \t]*[:=][ \t]*(?:\\{0,7}[\"'])?"
                r"(?P<field_v>(?:(?:bearer|basic|token|digest|negotiate)[ \t]+)?"
                r"[^\"'&\s<>,;{}\[\]\\]{1,4096})",
            )
        )
    return [
        *out,
        (
            "field_part",
            r"\bname=[\"']?" + name + r"[\"']?[^\r\n]{0,200}(?:\r?\n[^\r\n]{1,200}){0,8}"
            r"\r?\n\r?\n(?P<field_part_v>[^\r\n]{1,4096})",
        ),
        (
            "field_html",
            r"\bname=[\"']" + name + r"[\"'][^>]{0,200}?\bvalue=[\"']"
            r"(?P<field_html_v>[^\"'<>]{1,4096})",
        ),
        (
            "field_xml",
            r"<(?P<field_xml_n>" + name + r")>(?P<field_xml_v>[^<]{1,4096})</(?P=field_xml_n)>",
        ),
    ]
