"""Volatile tokens in text: ids, timestamps, nonces and signed values, by shape and entropy.

A page rendered twice differs in its CSRF token, session or nonce values, request ids and
"generated at" times even when nothing changed. Such *tokens* are compared apart from the text
around them (kind ``tokens``, noise once learned or seen on the baseline copy), so that any
other change still counts as a changed line.

Recognised by shape: UUIDs, ISO dates/times, ``HH:MM:SS``, epoch-like numbers (10-19 digits),
hex ids (16+ hex digits), JWTs and signed ``value.timestamp.signature`` /
``value:timestamp:signature`` forms (itsdangerous, Flask sessions, Django signing, signed
cookies), the whole form at once since its timestamp part changes too.

Recognised by entropy: a run of 16+ base64/base64url characters that is not a word. Random
text mixes character classes (upper, lower, digit) far more often than identifiers do
(``getElementsByTagName`` switches case 8 times in 20 characters, a random base64 string
about 10 times with half as many vowels), so a run counts when its class switches and its
Shannon entropy are those of random data. This does not need a digit: a base64 token with no
digit (about 1 in 40 of 22-character tokens) is still a token.

For two texts that differ, :func:`only_tokens_differ` also accepts pairs of equally long runs
that differ in most positions: a regenerated random value of the same shape, which a changed
word never is.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter

__all__ = ["TOKEN_RE", "find_tokens", "is_random_token", "mask_tokens", "only_tokens_differ"]

# shapes recognised whatever their content
_SHAPES = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b"
)
# candidate runs: signed forms (segments joined by "." or ":"), plain base64/base64url runs,
# long numbers
_SIGNED = r"(?:[A-Za-z0-9_\-]+[.:]){1,3}[A-Za-z0-9_\-]{16,}"  # the signature comes last
_RUN = r"[A-Za-z0-9_\-+/]{16,}={0,2}"
TOKEN_RE = re.compile(rf"(?<![A-Za-z0-9_\-])(?:{_SHAPES}|{_SIGNED}|{_RUN}|\d{{10,}})")

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DIGIT = re.compile(r"\d")
# English letter frequencies (%): words and identifiers use e, t, a, o... and mostly lower
# case; random base64 letters are uniform over 52
_FREQ = dict(
    zip(
        "etaoinshrdlcumwfgypbvkjxqz",
        (
            12.7,
            9.1,
            8.2,
            7.5,
            7.0,
            6.7,
            6.3,
            6.1,
            6.0,
            4.3,
            4.0,
            2.8,
            2.8,
            2.4,
            2.4,
            2.2,
            2.0,
            2.0,
            1.9,
            1.5,
            1.0,
            0.8,
            0.15,
            0.15,
            0.10,
            0.07,
        ),
        strict=True,
    )
)
_LETTER_LLR = {c: math.log2(f / 100.0 * 26) for c, f in _FREQ.items()}
_UPPER_LLR = math.log2(0.15 / 0.5)
_LOWER_LLR = math.log2(0.85 / 0.5)
_MIN_RUN = 16


def _cls(ch: str) -> int:
    if ch.isdigit():
        return 0
    if ch.isupper():
        return 1
    if ch.islower():
        return 2
    return 3


def _wordlike(s: str, case: bool = True) -> float:
    """Bits per letter by which English-like identifier text explains ``s`` better than
    uniform random letters (positive: word-like; random base64 letters score about -0.6).
    Case counts too (identifiers are mostly lower case), an acronym's letters after its
    first one excepted."""
    total = 0.0
    n = 0
    prev_upper = False
    for c in s:
        lc = c.lower()
        llr = _LETTER_LLR.get(lc)
        if llr is None:
            prev_upper = False
            continue
        if case:
            upper = c != lc
            if not (upper and prev_upper):
                llr += _UPPER_LLR if upper else _LOWER_LLR
            prev_upper = upper
        total += llr
        n += 1
    return total / n if n else 0.0


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


@functools.lru_cache(maxsize=1 << 16)
def is_random_token(s: str) -> bool:
    """Whether one run of base64/base64url/hex characters looks random (not a word).
    Cached: two renders of a page share almost every run."""
    s = s.rstrip("=")
    n = len(s)
    if n < _MIN_RUN:
        return n >= 10 and s.isdigit()
    if s.isdigit():
        return True
    has_digit = _DIGIT.search(s) is not None
    if has_digit and _HEX.match(s):
        return True
    upper = s != s.lower()
    lower = s != s.upper()
    if not (upper and lower) and (not has_digit or "/" in s):
        return False  # one-case words, slugs and paths
    classes = [_cls(c) for c in s]
    switches = sum(1 for a, b in itertools.pairwise(classes) if a != b) / (n - 1)
    # random data over k symbols keeps close to log2(min(n, k)) bits per character
    h = _entropy(s)
    if upper and lower:  # mixed case: base64 / base62
        if has_digit:
            return h >= 0.8 * math.log2(min(n, 40)) and switches >= 0.3
        return _wordlike(s) < 0.0
    digits = classes.count(0)  # base36 / base32 / ids
    return (
        n >= 20
        and 3 <= digits <= n - 3
        and switches >= 0.2
        and h >= 0.75 * math.log2(min(n, 30))
        and _wordlike(s, case=False) < 0.25
    )


def _is_token(t: str) -> bool:
    if "." in t or ":" in t:
        # a signed form counts when one of its segments is random (the signature)
        parts = re.split(r"[.:]", t)
        return len(parts) >= 2 and any(is_random_token(p) for p in parts)
    return is_random_token(t)


def _token_spans(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for m in TOKEN_RE.finditer(text):
        t = m.group(0)
        if _looks_shaped(t) or _is_token(t):
            out.append(m.span())
        elif "." in t or ":" in t:
            # not a signed form: its segments may still be tokens (an id in a dotted name)
            base = m.start()
            for p in re.finditer(r"[A-Za-z0-9_\-]+", t):
                if is_random_token(p.group(0)):
                    out.append((base + p.start(), base + p.end()))
    return out


_SHAPE_RE = re.compile(rf"^(?:{_SHAPES})$")


def _looks_shaped(t: str) -> bool:
    return bool(_SHAPE_RE.match(t))


def find_tokens(text: str) -> list[str]:
    """The volatile tokens in ``text``, in order."""
    return [text[a:b] for a, b in _token_spans(text)]


def mask_tokens(text: str, mask: str = "\x00") -> str:
    """``text`` with every volatile token replaced by ``mask``."""
    spans = _token_spans(text)
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for a, b in spans:
        parts.append(text[pos:a])
        parts.append(mask)
        pos = b
    parts.append(text[pos:])
    return "".join(parts)


_B64 = re.compile(r"^[A-Za-z0-9_\-+/]+$")
_PIECES = re.compile(r"[A-Za-z0-9_\-+/=]+|[^A-Za-z0-9_\-+/=]+")


def _random_pair(x: str, y: str) -> bool:
    """Two runs that are both regenerated random values: same length (padding aside), 16+
    characters, differing in at least 3 of 4 positions."""
    x, y = x.rstrip("="), y.rstrip("=")
    if len(x) != len(y) or len(x) < _MIN_RUN:
        return False
    if not (_B64.match(x) and _B64.match(y)):
        return False
    same = sum(1 for a, b in zip(x, y, strict=True) if a == b)
    return same <= len(x) // 4


def only_tokens_differ(a: str, b: str) -> bool:
    """Whether texts ``a`` and ``b`` differ only in volatile tokens (see module docstring)."""
    if a == b:
        return True
    if mask_tokens(a) == mask_tokens(b):
        return True
    pa = _PIECES.findall(a)
    pb = _PIECES.findall(b)
    if len(pa) != len(pb):
        return False
    for x, y in zip(pa, pb, strict=True):
        if x == y:
            continue
        if _random_pair(x, y) or (is_random_token(x) and is_random_token(y)):
            continue
        if mask_tokens(x) == mask_tokens(y):
            continue
        return False
    return True
