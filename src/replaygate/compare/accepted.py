"""Accepted differences: known, reviewed issues the gate lets pass until they expire.

A TOML (or JSON) file of entries, each naming an endpoint (wildcards allowed) and what is
accepted: a ``field`` (difference key such as ``body:$.user.email``, optionally with a
``kind``), a ``status`` change (``"2xx>5xx"``, ``"200>500"``; also excuses new 5xx), or
``latency = true``. Every entry needs ``reason``, ``who`` and ``expires`` (a date); expired
entries excuse nothing, so the difference fails the gate again. Example::

    [[accepted]]
    endpoint = "GET /users/{int}"
    field = "body:$.user.email"
    reason = "email is masked in staging"
    who = "alice"
    expires = 2027-01-31
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError, InputError
from ._glob import glob_match
from .noise import normalize_field

__all__ = ["AcceptedDiff", "AcceptedDiffs", "format_entries"]


@dataclass
class AcceptedDiff:
    endpoint: str
    reason: str
    who: str
    expires: dt.date
    field: str | None = None
    kind: str | None = None
    status: str | None = None
    latency: bool = False
    used: int = 0

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def what(self) -> str:
        if self.field:
            return self.field + (f" ({self.kind})" if self.kind else "")
        if self.status:
            return f"status {self.status}"
        return "latency"

    def as_dict(self, today: dt.date) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "field": self.field,
            "kind": self.kind,
            "status": self.status,
            "latency": self.latency,
            "reason": self.reason,
            "who": self.who,
            "expires": self.expires.isoformat(),
            "expired": self.expired(today),
            "used": self.used,
        }

    def matches_endpoint(self, endpoint: str) -> bool:
        return glob_match(endpoint, self.endpoint)

    def matches_field(self, endpoint: str, fld: str, kind: str) -> bool:
        if not self.matches_endpoint(endpoint):
            return False
        if self.field is not None:
            return glob_match(fld, self.field) and (self.kind is None or self.kind == kind)
        return self.status is not None and fld == "status"

    def matches_status(self, endpoint: str, change: str) -> bool:
        """``change`` like ``"2xx>5xx"`` or ``"200>500"``."""
        if self.status is None or not self.matches_endpoint(endpoint):
            return False
        a, _, b = self.status.partition(">")
        ca, _, cb = change.partition(">")
        return _code_match(ca, a) and _code_match(cb, b)


def _code_match(code: str, pat: str) -> bool:
    pat = pat.strip().lower() or "*"
    if pat in ("*", "any"):
        return True
    if pat.endswith("xx") and code[:1] == pat[:1]:
        return True
    return code.lower() == pat


def _parse_date(v: Any, where: str) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expires must be a date like 2027-01-31, got {v!r}")


class AcceptedDiffs:
    """The loaded file; ``today`` is injectable so tests and reports agree on expiry."""

    def __init__(
        self,
        entries: Iterable[AcceptedDiff] = (),
        *,
        today: dt.date | None = None,
        path: str | None = None,
    ) -> None:
        self.entries = list(entries)
        self.today = today or dt.date.today()
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, today: dt.date | None = None) -> AcceptedDiffs:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise InputError("accepted-differences file not found", path=str(p)) from None
        except OSError as e:
            raise InputError(
                f"cannot read accepted-differences file: {e.strerror}", path=str(p)
            ) from None
        return cls.parse(raw, json=p.suffix.lower() == ".json", today=today, path=str(p))

    @classmethod
    def parse(
        cls,
        raw: bytes,
        *,
        json: bool = False,
        today: dt.date | None = None,
        path: str | None = None,
    ) -> AcceptedDiffs:
        """Entries from file contents (TOML, or JSON when ``json``)."""
        try:
            data = orjson.loads(raw) if json else tomllib.loads(raw.decode("utf-8"))
        except (orjson.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot parse accepted differences: {e}", path=path) from None
        return cls.from_data(data, today=today, path=path)

    @classmethod
    def from_data(
        cls, data: Any, *, today: dt.date | None = None, path: str | None = None
    ) -> AcceptedDiffs:
        rows = data.get("accepted", []) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ConfigError(
                "accepted differences: expected a list of [[accepted]] entries", path=path
            )
        entries: list[AcceptedDiff] = []
        for i, r in enumerate(rows):
            where = f"accepted entry {i + 1}"
            if not isinstance(r, dict):
                raise ConfigError(f"{where}: expected a table", path=path)
            for req in ("endpoint", "reason", "who", "expires"):
                if not r.get(req):
                    raise ConfigError(f"{where}: missing {req!r}", path=path)
            unknown = set(r) - {
                "endpoint",
                "field",
                "kind",
                "status",
                "latency",
                "reason",
                "who",
                "expires",
            }
            if unknown:
                raise ConfigError(
                    f"{where}: unknown field(s) {', '.join(sorted(unknown))}", path=path
                )
            fld = r.get("field")
            status = r.get("status")
            latency = bool(r.get("latency", False))
            if not fld and not status and not latency:
                raise ConfigError(
                    f"{where}: needs one of field, status or latency = true", path=path
                )
            entries.append(
                AcceptedDiff(
                    endpoint=str(r["endpoint"]),
                    reason=str(r["reason"]),
                    who=str(r["who"]),
                    expires=_parse_date(r["expires"], where),
                    field=normalize_field(str(fld)) if fld else None,
                    kind=str(r["kind"]) if r.get("kind") else None,
                    status=str(status).replace("->", ">") if status else None,
                    latency=latency,
                )
            )
        return cls(entries, today=today, path=path)

    def find_field(
        self, endpoint: str, fld: str, kind: str
    ) -> tuple[AcceptedDiff | None, AcceptedDiff | None]:
        """(active entry, expired entry) matching a difference."""
        return self._find(lambda e: e.matches_field(endpoint, fld, kind))

    def find_status(
        self, endpoint: str, change: str
    ) -> tuple[AcceptedDiff | None, AcceptedDiff | None]:
        return self._find(lambda e: e.matches_status(endpoint, change))

    def find_latency(self, endpoint: str) -> tuple[AcceptedDiff | None, AcceptedDiff | None]:
        return self._find(lambda e: e.latency and e.matches_endpoint(endpoint))

    def _find(self, pred: Any) -> tuple[AcceptedDiff | None, AcceptedDiff | None]:
        active = expired = None
        for e in self.entries:
            if pred(e):
                if e.expired(self.today):
                    expired = expired or e
                else:
                    active = active or e
        return active, expired


def _toml_str(s: str) -> str:
    return orjson.dumps(s).decode()  # JSON string escapes are valid TOML basic strings


def format_entries(entries: Iterable[AcceptedDiff]) -> str:
    """TOML text for entries (appended by ``replaygate accept``)."""
    out: list[str] = []
    for e in entries:
        out.append("[[accepted]]")
        out.append(f"endpoint = {_toml_str(e.endpoint)}")
        if e.field:
            out.append(f"field = {_toml_str(e.field)}")
        if e.kind:
            out.append(f"kind = {_toml_str(e.kind)}")
        if e.status:
            out.append(f"status = {_toml_str(e.status)}")
        if e.latency:
            out.append("latency = true")
        out.append(f"reason = {_toml_str(e.reason)}")
        out.append(f"who = {_toml_str(e.who)}")
        out.append(f"expires = {e.expires.isoformat()}")
        out.append("")
    return "\n".join(out)
