"""The one-pass prefilter of the detectors: could a text hold any finding at all?

Every detector has a necessary literal (``eyJ`` for a JWT, ``@`` for an e-mail, four digits
for a card...); one hyperscan database holds them all, the field words (ignoring case) and a
base64 run, so one pass answers for every detector. Without hyperscan the same test is made
of substring searches and small regexes. It only gates :meth:`~._detectors.TextScanner.findings`:
results are the same with or without it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["NEEDS", "MessageQuick", "Quick"]

#: what every match of a detector contains (a necessary condition, stricter than the trigger
#: where the trigger is loose): the one-pass prefilter of :class:`Quick`
NEEDS: dict[str, tuple[str, ...]] = {
    "private_key": ("PRIVATE KEY",),
    "jwt": ("eyJ",),
    "bearer": ("earer", "EARER"),
    "basic": ("asic", "ASIC"),
    "aws_access_key": (r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|NVA|PKA)",),
    "aws_secret_key": ("ecret", "ECRET"),
    "github_token": (r"gh[pousr]_", "github_pat_"),
    "stripe_key": ("_live_", "_test_"),
    "slack_token": ("xox",),
    "iban": (r"[A-Z][A-Z][0-9][0-9]",),
    "card": (r"[0-9]{4}[ -]?[0-9]{4}",),
    "phone": (r"\+[1-9]", r"\([0-9]{3}\)"),
    "ipv4": (r"[0-9]\.[0-9]",),
    "ipv6": ("::", r"[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:"),
    "email": ("@", "%40"),
}
_B64_NEED = r"[A-Za-z0-9+/_-]{16}"
#: the UTF-8 of the only characters whose ``str.lower()`` holds ASCII letters (U+0130 and
#: the Kelvin sign): a field word could hide behind them (``TO\u212aEN``)
_LOWER_TO_ASCII = (r"\xC4\xB0", r"\xE2\x84\xAA")


class Quick:
    """Could a text hold any finding at all? One pass over the text for every detector's
    necessary literal, every field word (ignoring case) and base64 runs, with hyperscan
    (a multi-pattern engine: ~5 us for 2 KB, vs ~240 us for the same alternation in ``re``);
    without hyperscan, the same test made of substring searches and small regexes.

    It only gates :meth:`TextScanner.findings`: a "maybe" runs the detectors as before,
    so results are the same with or without it."""

    def __init__(self, detectors: Iterable[str], words: Iterable[str], b64: bool = True) -> None:
        needs = [(d, p) for d in detectors for p in NEEDS.get(d, ())]
        if b64:
            needs.append(("base64", _B64_NEED))
        cs = [p for _d, p in needs]
        self.words = sorted(set(words))
        #: what each pattern id stands for: a detector, "base64", or "words"
        self._tags = [d for d, _p in needs] + ["words"] * len(self.words)
        #: the field word of each pattern id ("" for the others)
        self._word_of = [""] * len(needs) + self.words
        self._local = threading.local()
        self._db, self._hs = _hs_database(tuple(cs), tuple(self.words))
        self._split_words = (
            re.compile(b"|".join(_word_pattern(w) for w in self.words).decode())
            if self.words
            else None
        )
        self._lits = [p for p in cs if re.escape(p) == p]
        self._rxs = [re.compile(p, re.ASCII) for p in cs if re.escape(p) != p]

    def __call__(self, text: str) -> bool:
        if self._db is None:
            return self._python(text)
        return self.scan(text.encode("utf-8", "surrogatepass")) or (
            not text.isascii() and self._words_in(text.lower())
        )

    def scan(self, data: bytes) -> bool:
        """The same test on bytes (UTF-8 or latin-1 text: every pattern is ASCII). Field
        words are matched ignoring ASCII case; callers with non-ASCII text also check
        ``text.lower()`` (``str.lower`` maps a few non-ASCII letters to ASCII ones)."""
        if self._db is None:
            return self._python(data.decode("latin-1"))
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        try:
            self._db.scan(data, match_event_handler=_stop, scratch=scratch)
        except self._hs.ScanTerminated:
            return True
        return False

    def which(self, text: str) -> set[str] | None:
        """Which detectors (and ``words``, ``base64``) could match in ``text``: the detectors
        left out cannot (their necessary literal is absent). None without hyperscan."""
        both = self.which_words(text)
        return None if both is None else both[0]

    def which_words(self, text: str) -> tuple[set[str], set[str] | None] | None:
        """:meth:`which`, and the field words in ``text`` (``w in text.lower()``) from the
        same pass when ``text`` is ASCII (None otherwise). None without hyperscan."""
        if self._db is None:
            return None
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        ids: list[int] = []
        self._db.scan(
            text.encode("utf-8", "surrogatepass"),
            match_event_handler=lambda i, *_a: ids.append(i),
            scratch=scratch,
        )
        tags = {self._tags[i] for i in ids}
        if text.isascii():  # caseless ASCII matches: the words of ``text.lower()``
            word_of = self._word_of
            return tags, {word_of[i] for i in ids if word_of[i]}
        if "words" not in tags and self._words_in(text.lower()):
            tags.add("words")
        return tags, None

    def _words_in(self, low: str) -> bool:
        if any(w in low for w in self.words):
            return True
        rx = self._split_words  # the words written with separators, as hyperscan finds them
        return rx is not None and rx.search(low) is not None

    def _python(self, text: str) -> bool:
        if any(lit in text for lit in self._lits) or any(r.search(text) for r in self._rxs):
            return True
        return self._words_in(text.lower())


class MessageQuick:
    """The masking fast path's one pass over a message body (decoded) and, after it, the
    request target: every detector's necessary literal and every field word (ignoring
    ASCII case), with where each ends, and whether any base64 run of 16+ characters
    occurs (the caller writes the target with ``/`` as a space: there a run is a segment
    that could be base64, as ``TextScanner.clean`` tests it).

    :meth:`scan` gives up (None) at a base64 run anywhere or at a literal or a field word in
    the body: such a message takes the whole masking path. Otherwise it returns what the
    target holds, for the caller to clear. Every match is reported (no single-match flag):
    a word in the target does not hide the same word later. Needs hyperscan
    (``available``)."""

    def __init__(self, detectors: Iterable[str], words: Iterable[str]) -> None:
        needs = [p for d in detectors for p in NEEDS.get(d, ())] + list(_LOWER_TO_ASCII)
        self.words = sorted(set(words))
        self._n_needs = len(needs)
        self._n_words = len(needs) + len(self.words)
        self._word_of = [""] * len(needs) + self.words
        self._db, self._hs = _hs_message_database(tuple(needs), tuple(self.words))
        self._local = threading.local()

    @property
    def available(self) -> bool:
        return self._db is not None

    def scan(self, data: bytes, split: int) -> tuple[bool, set[str]] | None:
        """``data``: the body, then (from ``split``) the target. None when there is a
        base64 run, or a literal or field word before ``split``; else (a detector literal
        in the target?, the field words in the target)."""
        if self._db is None:
            return None
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        hits: list[int] = []
        try:
            self._db.scan(data, _on_hit, 0, (hits, self._n_words, split), scratch)
        except self._hs.ScanTerminated:
            return None
        if not hits:
            return False, set()
        n = self._n_needs
        return any(i < n for i in hits), {self._word_of[i] for i in hits if i >= n}


def _on_hit(i: int, _from: int, to: int, _flags: int, ctx: tuple[list[int], int, int]) -> bool:
    """A :meth:`MessageQuick.scan` match: stop at a base64 run, or at a literal or a word in
    the body (the message is not clean); note one in the target."""
    hits, n_words, split = ctx
    if i >= n_words or to <= split:
        return True
    hits.append(i)
    return False


@functools.lru_cache(maxsize=32)
def _hs_message_database(needs: tuple[str, ...], words: tuple[str, ...]) -> tuple[Any, Any]:
    """The database of :class:`MessageQuick` (ids: needs, words, then a base64 run), or
    (None, None) without hyperscan."""
    try:
        import hyperscan

        db = hyperscan.Database()
        exprs = [p.encode() for p in needs] + [_word_pattern(w) for w in words]
        exprs.append(_B64_NEED.encode())
        flags = [0] * len(needs) + [hyperscan.HS_FLAG_CASELESS] * len(words)
        flags.append(hyperscan.HS_FLAG_SINGLEMATCH)
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
    except Exception:  # no wheel for this platform: no fast path
        return None, None
    return db, hyperscan


@functools.lru_cache(maxsize=32)  # a stage per run, but tests and scan build many
def _hs_database(cs: tuple[str, ...], words: tuple[str, ...]) -> tuple[Any, Any]:
    """A compiled hyperscan database (and the module), or (None, None) without hyperscan."""
    try:
        import hyperscan

        db = hyperscan.Database()
        exprs = [p.encode() for p in cs] + [_word_pattern(w) for w in words]
        caseless = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_CASELESS
        flags = [hyperscan.HS_FLAG_SINGLEMATCH] * len(cs) + [caseless] * len(words)
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
    except Exception:  # no wheel for this platform: the pure-Python test
        return None, None
    return db, hyperscan


def _word_pattern(word: str) -> bytes:
    """A field word as the prefilters look for it: its letters and digits in order with any
    separators between them, since field names are compared without them (``pass_word``,
    ``P.A.S.S.W.O.R.D`` and ``pass word`` name ``password``: :func:`normalize_field`)."""
    # the separators names are written with (a run of any other character between two
    # letters is left to the walk's own test of every key: FieldMatcher.mentioned); not
    # across a quote, which would find words made of neighbouring keys
    return "[-_. ]?".join(re.escape(c) for c in word).encode()


def _stop(*_args: object) -> bool:
    return True  # the first match answers the question: stop the scan
