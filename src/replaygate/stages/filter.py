"""Allow/deny filters: which exchanges go on (GoReplay's ``--http-allow-*`` family).

Rules, in the order they are checked (the first that rejects drops the exchange):

* ``deny_method`` / ``allow_method``: request method, case-insensitive.
* ``deny_url`` / ``allow_url``: regular expressions *searched* (not anchored, like Go's
  ``regexp.Match``) in the request target ``path?query`` by default, or in the full URL
  ``scheme://host/path?query`` with ``url_match="full"``. Any ``allow_url`` may match.
* ``deny_header`` / ``allow_header``: ``"Name: RE"``; every header *name* given with
  ``allow_header`` must be present with a value matching one of its regexes (GoReplay requires
  all of them; several regexes for one name are alternatives).
* ``allow_basic_auth``: regexes searched in the user name of ``Authorization: Basic``;
  requests without basic credentials are dropped.

Deny always wins over allow. Each drop is counted under ``notes["filter.<rule>"]`` so users see
why traffic went missing.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..model import Exchange, Request
from ..pipeline import Counters

__all__ = [
    "FilterConfig",
    "FilterStage",
    "basic_auth_user",
    "compile_regex",
    "full_url",
    "parse_header_rule",
    "split_origin",
    "strings",
]


@dataclass
class FilterConfig:
    """The ``[filters]`` section of replaygate.toml (sampling keys live here too)."""

    allow_url: list[str] = field(default_factory=list)
    deny_url: list[str] = field(default_factory=list)
    allow_method: list[str] = field(default_factory=list)
    deny_method: list[str] = field(default_factory=list)
    allow_header: list[str] = field(default_factory=list)
    deny_header: list[str] = field(default_factory=list)
    allow_basic_auth: list[str] = field(default_factory=list)
    url_match: str = "path"
    sample: str | float | None = None
    sample_by: str | None = None
    sample_random: str | float | None = None

    @property
    def active(self) -> bool:
        return bool(
            self.allow_url
            or self.deny_url
            or self.allow_method
            or self.deny_method
            or self.allow_header
            or self.deny_header
            or self.allow_basic_auth
        )


def strings(value: object, *, flag: str) -> list[str]:
    """A list of strings from a flag or config value; one string is a one-item list (a
    config file saying ``allow_url = "^/api"`` must not become one rule per character)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{flag}: expected a string or a list of strings, got {value!r}")


def compile_regex(pattern: str, *, flag: str) -> re.Pattern[str]:
    """Compile ``pattern`` or raise ConfigError naming ``flag`` and the regex problem."""
    try:
        with warnings.catch_warnings():
            # "possible nested set" and similar FutureWarnings are about future Python
            # versions, not mistakes: the pattern works as written today
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"{flag}: bad regex {pattern!r}: {e}") from None


def parse_header_rule(text: str, *, flag: str) -> tuple[str, re.Pattern[str]]:
    """``"Name: RE"`` -> (lower-case name, compiled regex)."""
    name, sep, rx = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n"):
        raise ConfigError(f"{flag}: expected 'Name: REGEX', got {text!r}")
    return name.lower(), compile_regex(rx.strip(), flag=flag)


def basic_auth_user(req: Request) -> str | None:
    """The user name of an ``Authorization: Basic`` header, or None."""
    value = req.header("authorization")
    if value is None:
        return None
    scheme, _, cred = value.strip().partition(" ")
    if scheme.lower() != "basic" or not cred:
        return None
    try:
        decoded = base64.b64decode(cred.strip(), validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    user, sep, _ = decoded.partition(":")
    return user if sep else None


def full_url(ex: Exchange) -> str:
    """``scheme://host/path?query`` of the request, as the ``full`` URL match sees it.

    An absolute-form target is used as is. Otherwise the scheme is ``meta["scheme"]`` when a
    source recorded it, else ``https`` for port 443 and ``http`` for anything else; the host is
    the Host header, else the connection's destination address.
    """
    req = ex.request
    target = req.target
    if "://" in target[:10]:
        return target
    scheme = ex.meta.get("scheme")
    if not scheme:
        scheme = "https" if ex.conn is not None and ex.conn.dport == 443 else "http"
    host = req.host
    if not host and ex.conn is not None:
        host = f"{ex.conn.dst}:{ex.conn.dport}"
    return f"{scheme}://{host or ''}{target}"


class FilterStage:
    """Keep or drop exchanges by method, URL, header and basic-auth user (see module doc)."""

    name = "filter"

    def __init__(self, config: FilterConfig, counters: Counters | None = None) -> None:
        if config.url_match not in ("path", "full"):
            raise ConfigError(f"--url-match: expected 'path' or 'full', got {config.url_match!r}")
        self.counters = counters or Counters()
        self._full = config.url_match == "full"
        am = strings(config.allow_method, flag="--allow-method")
        dm = strings(config.deny_method, flag="--deny-method")
        self._allow_method = {m.strip().upper() for m in am if m.strip()}
        self._deny_method = {m.strip().upper() for m in dm if m.strip()}
        self._allow_url = [
            compile_regex(p, flag="--allow-url")
            for p in strings(config.allow_url, flag="--allow-url")
        ]
        self._deny_url = [
            compile_regex(p, flag="--deny-url") for p in strings(config.deny_url, flag="--deny-url")
        ]
        self._allow_header: dict[str, list[re.Pattern[str]]] = {}
        for text in strings(config.allow_header, flag="--allow-header"):
            n, rx = parse_header_rule(text, flag="--allow-header")
            self._allow_header.setdefault(n, []).append(rx)
        self._deny_header = [
            parse_header_rule(t, flag="--deny-header")
            for t in strings(config.deny_header, flag="--deny-header")
        ]
        self._allow_auth = [
            compile_regex(p, flag="--allow-basic-auth")
            for p in strings(config.allow_basic_auth, flag="--allow-basic-auth")
        ]

    def bind_counters(self, counters: Counters) -> None:
        self.counters = counters

    def reason(self, ex: Exchange) -> str | None:
        """Why ``ex`` would be dropped (the rule's flag name), or None to keep it."""
        req = ex.request
        method, target = _method_target(req)
        if self._deny_method or self._allow_method:
            m = method.upper()
            if m in self._deny_method:
                return "deny-method"
            if self._allow_method and m not in self._allow_method:
                return "allow-method"
        if self._deny_url or self._allow_url:
            url = full_url(ex) if self._full else split_origin(target)[1]
            if any(rx.search(url) for rx in self._deny_url):
                return "deny-url"
            if self._allow_url and not any(rx.search(url) for rx in self._allow_url):
                return "allow-url"
        if self._deny_header or self._allow_header:
            headers = _headers_by_name(req.headers)
            for n, rx in self._deny_header:
                if any(rx.search(v) for v in headers.get(n, ())):
                    return "deny-header"
            for n, rxs in self._allow_header.items():
                values = headers.get(n, ())
                if not any(rx.search(v) for rx in rxs for v in values):
                    return "allow-header"
        if self._allow_auth:
            user = basic_auth_user(req)
            if user is None or not any(rx.search(user) for rx in self._allow_auth):
                return "allow-basic-auth"
        return None

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        why = self.reason(ex)
        if why is None:
            return (ex,)
        self.counters.notes["filter." + why] += 1
        return ()

    def close(self) -> Iterable[Exchange]:
        return ()


def split_origin(target: str) -> tuple[str, str]:
    """``("http://host", "/path?q")`` for an absolute-form target (proxy traffic), else
    ``("", target)``: URL rules see path?query whatever form the request used."""
    if "://" in target[:12]:
        i = target.find("/", target.find("://") + 3)
        return (target, "/") if i < 0 else (target[:i], target[i:])
    return "", target


def _method_target(req: Request) -> tuple[str, str]:
    """Method and target from the request line alone (the same values as ``req.method`` and
    ``req.target``) without parsing every header: URL and method rules stay cheap."""
    raw = req.raw
    end = raw.find(b"\n", 0, req.head_len)
    line = raw[: end if end >= 0 else req.head_len].decode("latin-1").rstrip("\r")
    parts = line.split(" ", 2) if line else []
    if len(parts) == 2 and parts[1].startswith("HTTP/1."):
        return parts[0], ""  # no target (``GET HTTP/1.1``): as Request.target says
    return (parts[0] if parts else ""), (parts[1] if len(parts) > 1 else "")


def _headers_by_name(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in headers:
        out.setdefault(k.lower(), []).append(v)
    return out
