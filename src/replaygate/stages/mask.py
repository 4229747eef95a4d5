"""Masking at the source: one stage for capture, proxy, convert and replay.

Secrets and personal data are replaced *before* an exchange reaches any sink, so raw values
never reach a file, a log line, a report or a metrics label. What is masked:

* headers (Authorization, Cookie, Set-Cookie, X-Api-Key, ... and any header whose name says
  token/secret/password/api key), cookie values one by one, query parameters, form fields
  (urlencoded and multipart), JSON paths (``$.users[*].email``, ``**.password``), fields
  whose *name* means a secret anywhere (JSON keys, form fields, ``key=value`` in text);
* values found by detectors anywhere in text bodies, headers and URLs: e-mail, payment
  cards (Luhn), JWT, Bearer/Basic credentials, AWS/GitHub/Stripe/Slack keys, private keys,
  IBAN (mod-97), phone numbers, and IPv4/IPv6 addresses (opt-in).

Actions: ``pseudonymize`` (keyed HMAC-SHA256, deterministic, format-preserving and
recognisable, see :mod:`._mask_fp`), ``redact`` (``[redacted:1a2b3c]``), ``drop``.
Compressed bodies are decoded, masked and re-encoded; chunked bodies are re-framed with a
Content-Length. Masking is idempotent: masking a masked exchange changes nothing.

The key comes from ``REPLAYGATE_MASK_KEY`` or ``--mask-key-file``; without one a random
per-run key is used and a notice says that pseudonyms will not match across runs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import load_config, section
from ..errors import ConfigError
from ..model import ConnectionId, Exchange, Flag, HTTPMessage, Request
from ..pipeline import Stage
from ._detectors import ALL_DETECTORS, DEFAULT_DETECTORS, FieldMatcher, TextScanner
from ._mask_body import BINARY_TYPES, JsonPath
from ._mask_engine import Loc, Masker, Rules
from ._mask_values import findings_summary

__all__ = [
    "ACTIONS",
    "DEFAULT_FIELDS",
    "DEFAULT_HEADERS",
    "KEY_ENV",
    "MaskConfig",
    "MaskReplayHook",
    "MaskStage",
    "MaskStats",
    "load_mask_key",
    "mask_stage_from_options",
]

KEY_ENV = "REPLAYGATE_MASK_KEY"
ACTIONS = ("pseudonymize", "redact", "drop")

DEFAULT_HEADERS: tuple[str, ...] = (
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "Set-Cookie",
    "X-Api-Key",
    "Api-Key",
    "X-Auth-Token",
    "X-Access-Token",
    "X-Refresh-Token",
    "X-Csrf-Token",
    "X-CSRFToken",
    "X-Xsrf-Token",
    "X-Session-Id",
    "X-Session-Token",
    "X-Amz-Security-Token",
    "X-Goog-Api-Key",
    "X-Vault-Token",
    "Private-Token",
    "X-Client-Secret",
)

#: field-name patterns (see FieldMatcher): ``*x`` ends with x, ``x*`` starts with x
DEFAULT_FIELDS: tuple[str, ...] = (
    "*password",
    "password*",
    "*passwd",
    "pwd",
    "*passphrase",
    "*secret",
    "client_secret",
    "*token",
    "*api_key",
    "apikey",
    "*access_key",
    "*secret_key",
    "*private_key",
    "*session_id",
    "session",
    "sid",
    "csrf",
    "_csrf",
    "xsrf",
    "ssn",
    "*social_security_number",
    "*credit_card",
    "*card_number",
    "cc_number",
    "cvv",
    "cvv2",
    "cvc",
    "pin",
    "otp",
    "authorization",
)


@dataclass
class MaskConfig:
    """The ``[mask]`` section. Lists *add to* the defaults unless ``default_*`` is false.

    * ``action``: default action for every rule and detector (pseudonymize | redact | drop)
    * ``actions``: per-rule override, keyed by detector name (``email``), by kind (``header``,
      ``cookie``, ``query``, ``form``, ``field``, ``json``) or ``kind:name``
      (``header:x-debug``, ``cookie:sid``, ``field:password``)
    * ``headers`` / ``cookies`` / ``query_params`` / ``form_fields``: names to mask
    * ``json_paths``: JSON path patterns to mask (whole subtree when it is an object/array)
    * ``fields``: field-name patterns that mean a secret anywhere (JSON, forms, text)
    * ``patterns``: extra regular expressions (group 1, if any, is what gets masked)
    * ``detectors``: detectors to run (default: all but IP addresses); ``ip_addresses``
      adds ``ipv4`` and ``ipv6``
    * ``keep_headers``: headers never touched (e.g. a harmless header that looks secret)
    * ``responses``: also mask responses (default true)
    * ``binary_types``: content-type prefixes whose bodies are skipped (counted)
    """

    enabled: bool = True
    action: str = "pseudonymize"
    actions: dict[str, str] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)
    default_headers: bool = True
    cookies: list[str] = field(default_factory=list)
    query_params: list[str] = field(default_factory=list)
    form_fields: list[str] = field(default_factory=list)
    json_paths: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    default_fields: bool = True
    patterns: list[str] = field(default_factory=list)
    detectors: list[str] = field(default_factory=lambda: list(DEFAULT_DETECTORS))
    ip_addresses: bool = False
    keep_headers: list[str] = field(default_factory=list)
    responses: bool = True
    binary_types: list[str] = field(default_factory=lambda: list(BINARY_TYPES))

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or self.action not in ACTIONS:
            raise ConfigError(f"[mask] action: {self.action!r} is not one of {', '.join(ACTIONS)}")
        if not isinstance(self.actions, dict):
            raise ConfigError("[mask] actions: must be a table of rule = action")
        for k, v in self.actions.items():
            if not isinstance(v, str) or v not in ACTIONS:
                raise ConfigError(f"[mask] actions.{k}: {v!r} is not one of {', '.join(ACTIONS)}")
        for name in (
            "headers",
            "cookies",
            "query_params",
            "form_fields",
            "json_paths",
            "fields",
            "patterns",
            "detectors",
            "keep_headers",
            "binary_types",
        ):
            val = getattr(self, name)
            if not isinstance(val, list | tuple) or not all(isinstance(x, str) for x in val):
                raise ConfigError(f"[mask] {name}: must be a list of strings")
        for name in ("enabled", "default_headers", "default_fields", "ip_addresses", "responses"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"[mask] {name}: must be true or false")
        dets = list(self.detectors)
        if "all" in dets:
            dets = [d for d in ALL_DETECTORS if d not in ("ipv4", "ipv6")]
        unknown = [d for d in dets if d not in ALL_DETECTORS]
        if unknown:
            raise ConfigError(
                f"[mask] detectors: unknown {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(ALL_DETECTORS)})"
            )
        if self.ip_addresses:
            dets += [d for d in ("ipv4", "ipv6") if d not in dets]
        self.detectors = dets
        for p in self.json_paths:
            JsonPath.parse(p)
        for p in self.patterns:
            try:
                re.compile(p)
            except re.error as e:
                raise ConfigError(f"[mask] patterns: {p!r} is not a valid regex ({e})") from None

    def rules(self) -> Rules:
        """Compile the rules the engine runs."""
        headers = {h.lower() for h in self.headers}
        if self.default_headers:
            headers |= {h.lower() for h in DEFAULT_HEADERS}
        fields = [*(DEFAULT_FIELDS if self.default_fields else ()), *self.fields]
        custom = [(f"pattern:{i + 1}", re.compile(p)) for i, p in enumerate(self.patterns)]
        return Rules(
            default_action=self.action,
            headers=frozenset(headers),
            keep_headers=frozenset(h.lower() for h in self.keep_headers),
            cookies=frozenset(c.lower() for c in self.cookies),
            query=frozenset(q.lower() for q in self.query_params),
            form=frozenset(f.lower() for f in self.form_fields),
            json_paths=[JsonPath.parse(p) for p in self.json_paths],
            fields=FieldMatcher(fields),
            scanner=TextScanner(self.detectors, fields, custom),
            actions={k.lower(): v for k, v in self.actions.items()},
            skip_types=tuple(t.lower() for t in self.binary_types),
            responses=self.responses,
        )


@dataclass
class MaskStats:
    """Counts only, never values: findings by rule, how many were already masked."""

    exchanges: int = 0
    changed: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    already_masked: Counter[str] = field(default_factory=Counter)
    skipped_binary: int = 0

    @property
    def replacements(self) -> Counter[str]:
        """Findings that were masked in this run (found and not masked before)."""
        return self.findings

    def summary(self) -> str:
        """One line for stderr at exit: ``mask: 120 values masked in 40 of 100 exchanges
        (email=60, header=40, ...), 12 already masked``."""
        n = sum(self.findings.values())
        head = f"mask: {n} value{'s' * (n != 1)} masked in {self.changed} of {self.exchanges}"
        out = findings_summary(f"{head} exchanges", self.findings, self.already_masked)
        if self.skipped_binary:
            out += f", {self.skipped_binary} binary bodies not scanned"
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "exchanges": self.exchanges,
            "changed": self.changed,
            "findings": dict(self.findings),
            "already_masked": dict(self.already_masked),
            "skipped_binary_bodies": self.skipped_binary,
        }


class MaskStage:
    """Pipeline stage ``mask``: masks request, responses and interim responses."""

    name = "mask"

    def __init__(self, config: MaskConfig, key: bytes) -> None:
        self.config = config
        self.key = key  # handed to --workers processes so every copy pseudonymizes alike
        self.stats = MaskStats()
        self.masker = Masker(config.rules(), key, self._record)
        # _record only counts: the compiled JSON masker may count into the same counters
        self.masker.count_into(self.stats.findings, self.stats.already_masked)
        #: IP detectors on: the client address of the connection is masked too
        self._ip = bool({"ipv4", "ipv6"} & set(self.masker.rules.scanner.detectors))

    def _record(self, rule: str, loc: Loc, masked: bool) -> None:
        if rule == "skipped_binary":
            self.stats.skipped_binary += 1
        elif masked:
            self.stats.already_masked[rule] += 1
        else:
            self.stats.findings[rule] += 1

    def mask_message(self, msg: HTTPMessage, side: str) -> HTTPMessage:
        return self.masker.message(msg, side)

    def mask_exchange(self, ex: Exchange) -> Exchange:
        """A masked copy of ``ex`` (``ex`` itself when nothing needed masking)."""
        self.stats.exchanges += 1
        m = self.masker
        req = m.message(ex.request, "request")
        resp = ex.response
        replayed = ex.replayed
        interim = ex.interim
        if self.config.responses:
            if resp is not None:
                resp = m.message(resp, "response")
            if replayed is not None:
                replayed = m.message(replayed, "replayed")
            if interim:
                interim = [m.message(r, "response") for r in interim]
        meta = ex.meta
        if meta:
            meta = {k: (m.text(v, f"meta:{k}") or v) for k, v in meta.items()}
        err = ex.replay_error
        if err:
            err = m.text(err, "replay_error") or err
        conn = self._conn(ex.conn) if self._ip else ex.conn
        changed = (
            req is not ex.request
            or resp is not ex.response
            or replayed is not ex.replayed
            or any(a is not b for a, b in zip(interim, ex.interim, strict=True))
            or meta != ex.meta
            or err != ex.replay_error
            or conn is not ex.conn
        )
        if not changed:
            return ex
        self.stats.changed += 1
        flags = set(ex.flags) | {Flag.MASKED}
        if req is not ex.request:
            flags.add(Flag.MODIFIED)
        return Exchange(  # what dataclasses.replace makes, without its generic work
            id=ex.id,
            request=req,
            response=resp,
            replayed=replayed,
            interim=list(interim),  # copies: the input keeps its own
            flags=flags,
            meta=dict(meta),
            replay_error=err,
            conn=conn,
            session=ex.session,
            seq=ex.seq,
            replay_ts_ns=ex.replay_ts_ns,
            replay_latency_ns=ex.replay_latency_ns,
        )

    def _conn(self, conn: ConnectionId | None) -> ConnectionId | None:
        """With IP detectors on, the client address of the connection is a finding too (it is
        written to files as ``rg.conn``); the same address always maps to the same one."""
        if conn is None or not self._ip:
            return conn
        k = self.masker.k
        if k.ip_is_pseudonym(conn.src):
            self._record("ipv6" if ":" in conn.src else "ipv4", "conn.src", True)
            return conn
        try:
            new = k.ip(conn.src)
        except ValueError:
            return conn
        self._record("ipv6" if ":" in conn.src else "ipv4", "conn.src", False)
        return dataclasses.replace(conn, src=new)

    def process(self, ex: Exchange) -> Iterable[Exchange]:
        return (self.mask_exchange(ex),)

    def replay_hook(self) -> MaskReplayHook:
        """The hook that masks staging's responses during replay (see MaskReplayHook)."""
        return MaskReplayHook(self)

    def close(self) -> Iterable[Exchange]:
        return ()


class MaskReplayHook:
    """Masks what staging answered before anything records it (replay engine hook).

    Run it after session correlation (which must learn staging's raw values) and before
    plugins and middleware. Requests pass unchanged: they were masked in the pipeline, and
    the staging values correlation substituted must reach staging as they are.
    """

    def __init__(self, stage: MaskStage) -> None:
        self.stage = stage

    def before_send(self, ex: Exchange, request: Request) -> Request:
        return request

    def after_response(self, ex: Exchange) -> None:
        m = self.stage.masker
        changed = False
        if ex.replayed is not None and self.stage.config.responses:
            new = m.message(ex.replayed, "replayed")
            if new is not ex.replayed:
                ex.replayed = new
                changed = True
        if ex.replay_error:
            err = m.text(ex.replay_error, "replay_error")
            if err is not None:
                ex.replay_error = err
                changed = True
        if changed:
            ex.flags.add(Flag.MASKED)


def load_mask_key(key_file: str | None, *, notice: bool = True) -> bytes:
    """The masking key: ``--mask-key-file``, else ``$REPLAYGATE_MASK_KEY``, else random."""
    if key_file is not None:
        try:
            with open(key_file, "rb") as f:
                key = f.read().strip()
        except OSError as e:
            raise ConfigError(
                f"--mask-key-file: cannot read ({e.strerror})", path=key_file
            ) from None
        if not key:
            raise ConfigError("--mask-key-file: the key file is empty", path=key_file)
        return key
    env = os.environ.get(KEY_ENV, "").strip()
    if env:
        return env.encode()
    if notice:
        print(
            f"replaygate: notice: no mask key ({KEY_ENV} or --mask-key-file): pseudonyms use "
            "a random per-run key and will not match across runs",
            file=sys.stderr,
        )
    return os.urandom(32)


def mask_stage_from_options(
    *,
    enabled: bool,
    config_path: str | None,
    key_file: str | None,
    config: Mapping[str, Any] | None,
    key: bytes | None = None,
) -> Stage | None:
    """The mask stage for ``--mask`` / ``--mask-config FILE`` / ``--mask-key-file FILE`` and
    a loaded ``replaygate.toml`` (its ``[mask]`` section); None when masking is off.

    ``--mask-config`` may hold a ``[mask]`` section or the fields at top level. A ``[mask]``
    section turns masking on unless it says ``enabled = false`` (``--mask`` still wins).
    """
    data: Mapping[str, Any] | None = None
    if config_path is not None:
        loaded = load_config(config_path, schema=False)  # [mask] or its keys at top level
        sub = loaded.get("mask")
        data = sub if isinstance(sub, Mapping) else loaded
    elif config is not None:
        sub = config.get("mask")
        if isinstance(sub, Mapping):
            data = sub
        elif sub is not None:
            raise ConfigError("[mask] must be a table")
    if not enabled and data is None:
        if key_file is not None:  # a key but no masking: say so rather than record raw
            raise ConfigError("--mask-key-file: masking is off (add --mask or --mask-config)")
        return None
    cfg = section(MaskConfig, dict(data or {}), name="mask")
    if not cfg.enabled and not enabled:
        return None
    # ``key``: one made once by the caller (``replay --workers``: every process, and the
    # original and the replayed side, must pseudonymize with the same key)
    return MaskStage(cfg, key if key is not None else load_mask_key(key_file))
