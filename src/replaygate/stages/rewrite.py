"""Request rewrites: URL regex, header regex, set/remove header, set query parameter.

Applied in this order (GoReplay's order where it has the option): set-param, rewrite-url,
rewrite-header, set-header, remove-header. URL rules are tried in order and the *first* rule
whose regex matches the target (``path?query``) rewrites it (GoReplay stops there too);
every header rule applies. Replacements accept Go's syntax (``$1``, ``${1}``, ``${name}``,
``$$``) so GoReplay command lines work unchanged, and Python's (``\\1``, ``\\g<name>``).

Every change rebuilds the request from new bytes with :meth:`~replaygate.model.HTTPMessage.
with_head`, sets :attr:`~replaygate.model.Flag.MODIFIED` and leaves the body and its framing
untouched; the rules that fired are listed in ``meta["rewrite"]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from ..errors import ConfigError
from ..model import Exchange, Flag, Request
from ..pipeline import Counters
from .filter import _method_target, compile_regex, split_origin, strings

__all__ = [
    "RewriteConfig",
    "RewriteStage",
    "edit_request",
    "expand_template",
    "parse_replacement",
    "set_query_param",
    "split_unescaped",
]


@dataclass
class RewriteConfig:
    """The ``[rewrite]`` section of replaygate.toml."""

    rewrite_url: list[str] = field(default_factory=list)
    rewrite_header: list[str] = field(default_factory=list)
    set_header: list[str] | dict[str, str] = field(default_factory=list)
    remove_header: list[str] = field(default_factory=list)
    set_param: list[str] | dict[str, str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(
            self.rewrite_url
            or self.rewrite_header
            or self.set_header
            or self.remove_header
            or self.set_param
        )


def split_unescaped(text: str, sep: str) -> tuple[str, str] | None:
    """Split at the first ``sep`` not escaped by a backslash; ``\\<sep>`` in the left part
    becomes ``<sep>`` (so ``{1\\,3}`` is still a quantifier)."""
    m = re.search(r"(?<!\\)" + re.escape(sep), text)
    if m is None:
        return None
    return text[: m.start()].replace("\\" + sep, sep), text[m.end() :]


_TOKEN = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)|\\g<(\w+)>|\\(\d+)|\\\\")


def parse_replacement(text: str) -> list[str | tuple[str | int]]:
    """Parse a replacement into literal strings and ``(group,)`` references."""
    out: list[str | tuple[str | int]] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        tok = m.group(0)
        if tok == "$$":
            out.append("$")
        elif tok == "\\\\":
            out.append("\\")
        else:
            ref = m.group(1) or m.group(2) or m.group(3) or m.group(4)
            out.append((int(ref),) if ref.isdigit() else (ref,))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def expand_template(parts: list[str | tuple[str | int]]) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` callback; unknown groups expand to "" (Go's rule)."""

    def repl(m: re.Match[str]) -> str:
        chunks: list[str] = []
        for p in parts:
            if isinstance(p, str):
                chunks.append(p)
                continue
            try:
                chunks.append(m.group(p[0]) or "")
            except IndexError:  # unknown group name or number
                chunks.append("")
        return "".join(chunks)

    return repl


def _as_pairs(value: list[str] | dict[str, str], *, flag: str, sep: str) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [(str(k), str(v)) for k, v in value.items()]
    pairs: list[tuple[str, str]] = []
    for text in strings(value, flag=flag):
        name, s, v = str(text).partition(sep)
        name = name.strip()
        if not s or not name:
            want = "'Name: value'" if sep == ":" else "'name=value'"
            raise ConfigError(f"{flag}: expected {want}, got {text!r}")
        pairs.append((name, v.strip() if sep == ":" else v))
    return pairs


class RewriteStage:
    """Apply the configured rewrites to every request (see module doc)."""

    name = "rewrite"

    def __init__(self, config: RewriteConfig, counters: Counters | None = None) -> None:
        self.counters = counters or Counters()
        self._url: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = []
        for text in strings(config.rewrite_url, flag="--rewrite-url"):
            parts = split_unescaped(text, ":")
            if parts is None:
                raise ConfigError(f"--rewrite-url: expected 'REGEX:REPLACEMENT', got {text!r}")
            rx = compile_regex(parts[0], flag="--rewrite-url")
            if any(c in parts[1] for c in " \t\r\n"):
                raise ConfigError(
                    f"--rewrite-url: the replacement must not contain spaces: {text!r}"
                )
            self._url.append((rx, expand_template(parse_replacement(parts[1]))))
        self._hdr: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]] = []
        for text in strings(config.rewrite_header, flag="--rewrite-header"):
            name, sep, rest = text.partition(":")
            halves = split_unescaped(rest.strip(), ",")
            if not sep or not name.strip() or halves is None:
                raise ConfigError(
                    f"--rewrite-header: expected 'Name: REGEX,REPLACEMENT', got {text!r}"
                )
            rx = compile_regex(halves[0], flag="--rewrite-header")
            if "\r" in halves[1] or "\n" in halves[1]:
                raise ConfigError(f"--rewrite-header: line breaks in the replacement: {text!r}")
            repl = expand_template(parse_replacement(halves[1]))
            self._hdr.append((name.strip().lower(), rx, repl))
        self._set = _as_pairs(config.set_header, flag="--set-header", sep=":")
        for n, _ in self._set:
            if any(c in n for c in " \t\r\n") or any(c in v for _, v in self._set for c in "\r\n"):
                raise ConfigError(f"--set-header: bad header name or value for {n!r}")
        removed = strings(config.remove_header, flag="--remove-header")
        self._remove = {n.strip().lower() for n in removed if n.strip()}
        framing = {"content-length", "transfer-encoding"}
        for flag, names in (
            ("--set-header", [n for n, _ in self._set]),
            ("--remove-header", list(self._remove)),
            ("--rewrite-header", [n for n, _, _ in self._hdr]),
        ):
            for n in names:
                if n.lower() in framing:
                    raise ConfigError(
                        f"{flag}: {n} frames the body; replaygate keeps it consistent itself"
                    )
        for flag, texts in (
            ("--set-header", [f"{n}: {v}" for n, v in self._set]),
            ("--rewrite-url", strings(config.rewrite_url, flag="--rewrite-url")),
            ("--rewrite-header", strings(config.rewrite_header, flag="--rewrite-header")),
        ):
            for text in texts:
                try:
                    text.encode("latin-1")
                except UnicodeEncodeError:
                    raise ConfigError(
                        f"{flag}: {text!r} has characters HTTP/1 headers cannot carry "
                        "(use percent-encoding in URLs)"
                    ) from None
        self._params = _as_pairs(config.set_param, flag="--set-param", sep="=")

    def bind_counters(self, counters: Counters) -> None:
        self.counters = counters

    def rewrite(self, req: Request) -> tuple[Request, list[str]]:
        """The rewritten request and the names of the rules that changed it.

        Only what a rule changes is rebuilt: the request line when the target changes, and the
        header lines a rule touches; every other byte (spacing, folded lines, line endings,
        the body and its framing) stays as captured."""
        target = _method_target(req)[1]
        origin, new_target = split_origin(target)  # rules see path?query in every form
        fired: list[str] = []
        for name, value in self._params:
            t = set_query_param(new_target, name, value)
            if t != new_target:
                new_target = t
                fired.append("set-param")
        for rx, repl in self._url:
            if rx.search(new_target):
                t = rx.sub(repl, new_target)
                if t != new_target:
                    new_target = t
                    fired.append("rewrite-url")
                break
        head = _Head(req) if (self._hdr or self._set or self._remove) else None
        if head is not None:
            fired.extend(head.apply(self._hdr, self._set, self._remove))
        if not fired:
            return req, fired
        url_fired = "set-param" in fired or "rewrite-url" in fired
        new_target = origin + new_target if url_fired else target
        if head is None:  # only the target changed: swap the request line, keep every byte after
            line, old_len = _request_line(req, new_target)
            nb = line.encode("latin-1")
            raw = req.raw
            return (
                Request(
                    b"".join((nb, memoryview(raw)[old_len:])),  # one copy, also of big bodies
                    ts_first_ns=req.ts_first_ns,
                    ts_last_ns=req.ts_last_ns,
                    head_len=req.head_len - old_len + len(nb),
                ),
                fired,
            )
        if new_target != target:
            head.set_target(new_target)
        return head.build(req), fired

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        new, fired = self.rewrite(ex.request)
        if fired:
            ex.request = new
            ex.flags.add(Flag.MODIFIED)
            rules = sorted(set(fired))
            prev = ex.meta.get("rewrite")
            ex.meta["rewrite"] = ",".join(sorted(set(rules) | set(prev.split(",") if prev else ())))
            for r in rules:
                self.counters.notes["rewrite." + r] += 1
        return (ex,)

    def close(self) -> Iterable[Exchange]:
        return ()


def edit_request(
    req: Request,
    *,
    target: str | None = None,
    set_headers: Mapping[str, str] | None = None,
    remove_headers: Iterable[str] = (),
) -> Request:
    """A copy of ``req`` with a new target and/or headers set or removed, rebuilding only the
    lines that change (the helper for plugins: ``ex.request = edit_request(ex.request,
    set_headers={"X-Env": "staging"})``). Returns ``req`` itself when nothing changes."""
    head = _Head(req)
    sets = [(k, v) for k, v in (set_headers or {}).items()]
    for k, v in sets:
        if not k or any(c in k for c in " \t\r\n:") or "\r" in v or "\n" in v:
            raise ValueError(f"bad header {k!r}: {v!r}")
    fired = head.apply([], sets, {n.lower() for n in remove_headers})
    if target is not None and target != _method_target(req)[1]:
        if any(c in target for c in " \t\r\n"):
            raise ValueError(f"bad target {target!r}")
        head.set_target(target)
        fired.append("target")
    return head.build(req) if fired else req


def set_query_param(target: str, name: str, value: str) -> str:
    """Set ``name=value`` in the target's query: replace the first occurrence (dropping
    repeats) or append it. Other parameters keep their exact bytes and order."""
    path, sep, query = target.partition("?")
    enc = quote(name, safe="") + "=" + quote(value, safe="/:@,;*")
    if not sep:
        return f"{path}?{enc}"
    parts = query.split("&") if query else []
    out: list[str] = []
    done = False
    for p in parts:
        k = p.split("=", 1)[0]
        if k == name or _unquote(k) == name:
            if not done:
                out.append(enc)
                done = True
            continue
        out.append(p)
    if not done:
        out.append(enc)
    return f"{path}?{'&'.join(out)}"


def _unquote(s: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(s)


class _Header:
    __slots__ = ("lines", "lname", "name", "value")

    def __init__(self, lines: list[str] | None, name: str, value: str) -> None:
        self.lines = lines  # the captured lines (latin-1); None once a rule changed the header
        self.name = name
        self.lname = name.lower()
        self.value = value


def _request_line(req: Request, target: str) -> tuple[str, int]:
    """The new request line for ``target`` and the length of the captured one (without its
    line ending), from the first line alone."""
    raw = req.raw
    end = raw.find(b"\n", 0, req.head_len)
    first = raw[: end if end >= 0 else req.head_len]
    if first.endswith(b"\r"):
        first = first[:-1]
    parts = first.decode("latin-1").split(" ", 2)
    method = parts[0] if parts and parts[0] else "GET"
    return " ".join([method, target, *parts[2:3]]), len(first)


class _Head:
    """A request head as editable header entries that remember their captured text.

    The head is decoded once as latin-1 (one byte, one character), so writing untouched lines
    back reproduces the captured bytes exactly."""

    def __init__(self, req: Request) -> None:
        lines = req.raw[: req.head_len].decode("latin-1").split("\n")
        self.request_line = lines[0]
        self.crlf = lines[0].endswith("\r")
        self.headers: list[_Header] = []
        self.tail: list[str] = []
        self.target: str | None = None
        headers = self.headers
        for j in range(1, len(lines)):
            line = lines[j]
            text = line[:-1] if line.endswith("\r") else line
            if not text:
                self.tail = lines[j:]  # the blank line (and the final empty split)
                break
            if text[0] in " \t" and headers:  # obsolete line folding
                h = headers[-1]
                assert h.lines is not None
                h.lines.append(line)
                if h.lname:
                    h.value = h.value + " " + text.strip()
                continue
            name, sep, value = text.partition(":")
            # lines without a colon are kept as they are and never match a rule
            headers.append(_Header([line], name.strip() if sep else "", value.strip(" \t")))

    def set_target(self, target: str) -> None:
        self.target = target

    def apply(
        self,
        rewrites: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]],
        sets: list[tuple[str, str]],
        removes: set[str],
    ) -> list[str]:
        fired: list[str] = []
        for lname, rx, repl in rewrites:
            for h in self.headers:
                if h.lname == lname and rx.search(h.value):
                    nv = rx.sub(repl, h.value)
                    if nv != h.value:
                        h.value, h.lines = nv, None
                        fired.append("rewrite-header")
        for sname, value in sets:
            lname = sname.lower()
            same = [h for h in self.headers if h.lname == lname]
            if same:
                if len(same) == 1 and same[0].value == value:
                    continue
                same[0].value, same[0].lines = value, None
                drop = {id(h) for h in same[1:]}
                self.headers = [h for h in self.headers if id(h) not in drop]
            else:
                self.headers.append(_Header(None, sname, value))
            fired.append("set-header")
        if removes:
            kept = [h for h in self.headers if h.lname not in removes]
            if len(kept) != len(self.headers):
                self.headers = kept
                fired.append("remove-header")
        return fired

    def build(self, req: Request) -> Request:
        eol = "\r" if self.crlf else ""
        line = self.request_line
        if self.target is not None:
            line = _request_line(req, self.target)[0] + eol
        out = [line]
        for h in self.headers:
            if h.lines is not None:
                out.extend(h.lines)
            else:
                out.append(f"{h.name}: {h.value}{eol}")
        if self.tail:
            out.extend(self.tail)
        elif len(req.start_line) > 2:  # a head cut short (no blank line): end it
            out.extend([eol, ""])
        head = "\n".join(out).encode("latin-1")
        return Request(
            b"".join((head, req.body_raw)),
            ts_first_ns=req.ts_first_ns,
            ts_last_ns=req.ts_last_ns,
            head_len=len(head),
        )
