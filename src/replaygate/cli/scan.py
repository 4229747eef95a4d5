"""``replaygate scan FILE...``: which secrets and personal data a capture holds, and where.

Runs the masking rules in "look only" mode over every exchange and reports counts by rule,
location (header, cookie, query parameter, form field, JSON path, body, URL path) and
endpoint (method + templated path), never a value. Values that are already pseudonyms or
redaction markers count as *masked*. Exit status: 0 clean, 1 unmasked findings, 2 input error (a cut input too, once reported).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from typing import Any

import click

from ..config import load_config, section
from ..formats import ReadOptions, open_reader, raise_cuts
from ..model import Counters, Exchange
from ._flags import flags

__all__ = ["command", "endpoint_of", "scan_files"]

_WORD = re.compile(r"[A-Za-z][\w.~-]{0,39}")
_NAME = re.compile(r"[A-Za-z_$][\w$.-]{0,63}")
_DIGITISH = re.compile(r"[\d_.:-]*\d[\d_.:-]*|[0-9a-fA-F-]{8,}")


def endpoint_of(ex: Exchange) -> str:
    """``GET /users/{id}/orders``: the path with anything value-like replaced."""
    path = ex.request.path or "/"
    segs = []
    for seg in path.split("/"):
        if not seg or (
            _WORD.fullmatch(seg)
            and not _DIGITISH.fullmatch(seg)
            and sum(c.isdigit() for c in seg) <= 3
        ):
            segs.append(seg)
        elif _DIGITISH.fullmatch(seg):
            segs.append("{id}")
        else:
            segs.append("{value}")
    return f"{ex.request.method or '?'} {'/'.join(segs) or '/'}"


def _safe_location(loc: str) -> str:
    """Locations carry field names from the traffic; keep only identifier-like names."""
    side, _, rest = loc.partition(".")
    kind, sep, name = rest.partition(":")
    if not sep or kind == "json" or ".json:" in rest:
        return loc
    return f"{side}.{kind}:{name if _NAME.fullmatch(name) else '{name}'}"


def scan_files(
    paths: list[str],
    mask_data: dict[str, Any] | None,
    ip: bool,
    counters: Counters | None = None,
) -> dict[str, Any]:
    """Scan files; the JSON report (``--json``). A cut input is scanned up to the cut, counted
    and listed (``cut_inputs``); ``counters`` receives the cuts for :func:`raise_cuts`."""
    import os

    from ..stages._mask_engine import Loc, resolve_loc
    from ..stages.mask import MaskConfig, MaskStage

    overrides = {"ip_addresses": True} if ip else {}
    cfg = section(MaskConfig, mask_data, name="mask", **overrides)
    counts: Counter[tuple[str, str, str, bool]] = Counter()
    skipped = 0
    endpoint = ""

    def record(rule: str, loc: Loc, masked: bool) -> None:
        nonlocal skipped
        if rule == "skipped_binary":
            skipped += 1
        else:
            counts[(rule, _safe_location(resolve_loc(loc)), endpoint, masked)] += 1

    stage = MaskStage(cfg, os.urandom(32))
    stage.masker.record = record  # look only: collect counts, drop the masked copies
    n = 0
    counters = counters if counters is not None else Counters()
    opts = ReadOptions(counters=counters, extra={"truncated": "count"})
    for path in paths:
        for ex in open_reader(path, opts):
            n += 1
            endpoint = endpoint_of(ex)
            stage.mask_exchange(ex)
    items = sorted(counts.items(), key=lambda kv: (kv[0][3], -kv[1], kv[0]))
    findings = [
        {"rule": r, "location": loc, "endpoint": ep, "masked": m, "count": c}
        for (r, loc, ep, m), c in items
    ]
    by_rule: dict[str, dict[str, int]] = {}
    for (r, _loc, _ep, m), c in items:
        d = by_rule.setdefault(r, {"unmasked": 0, "masked": 0})
        d["masked" if m else "unmasked"] += c
    unmasked = sum(c for k, c in items if not k[3])
    return {
        "files": paths,
        "exchanges": n,
        "clean": unmasked == 0,
        "unmasked": unmasked,
        "masked": sum(c for k, c in items if k[3]),
        "skipped_binary_bodies": skipped,
        "by_rule": dict(sorted(by_rule.items())),
        "findings": findings,
        "dropped": dict(sorted(counters.dropped.items())),
        "cut_inputs": [{"file": f, "offset": o, "reason": m} for f, o, m in counters.cuts],
    }


def _print_text(rep: dict[str, Any]) -> None:
    out = sys.stdout
    files = len(rep["files"])
    out.write(
        f"scanned {files} file{'s' * (files != 1)}, {rep['exchanges']} exchanges: "
        f"{rep['unmasked']} unmasked findings, {rep['masked']} already masked"
        + (
            f", {rep['skipped_binary_bodies']} binary bodies not scanned"
            if rep["skipped_binary_bodies"]
            else ""
        )
        + "\n"
    )
    for c in rep["cut_inputs"]:
        out.write(f"cut input: {c['file']} (offset {c['offset']}): {c['reason']}\n")
    rows = [f for f in rep["findings"]]
    if rows:
        w_rule = max(4, *(len(f["rule"]) for f in rows))
        w_loc = max(8, *(len(f["location"]) for f in rows))
        out.write(
            f"\n{'status':<9} {'count':>6}  {'rule':<{w_rule}}  {'location':<{w_loc}}  endpoint\n"
        )
        for f in rows:
            st = "masked" if f["masked"] else "UNMASKED"
            out.write(
                f"{st:<9} {f['count']:>6}  {f['rule']:<{w_rule}}  {f['location']:<{w_loc}}  "
                f"{f['endpoint']}\n"
            )
    out.write(
        "\nresult: clean\n"
        if rep["clean"]
        else "\nresult: unmasked secrets or personal data found (mask with --mask)\n"
    )


@click.command("scan")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@flags("print_json", "mask_config", "ip")
def command(files: tuple[str, ...], as_json: bool, mask_config: str | None, ip: bool) -> int:
    """Report secrets and personal data found in traffic files (counts, never values).

    Counts findings by rule, location and endpoint; values that are already masked
    (pseudonyms, [redacted:...] markers) are reported as masked. Exit status: 0 when clean,
    1 when unmasked findings exist, 2 on input errors.
    """
    data: dict[str, Any] | None = None
    if mask_config is not None:
        loaded = load_config(mask_config, schema=False)
        sub = loaded.get("mask")
        data = dict(sub) if isinstance(sub, dict) else loaded
        data.pop("enabled", None)
    counters = Counters()
    rep = scan_files(list(files), data, ip, counters)
    if as_json:
        sys.stdout.write(json.dumps(rep, indent=2) + "\n")
    else:
        _print_text(rep)
    raise_cuts(counters)  # the report covers everything before the cut; still an input error
    return 0 if rep["clean"] else 1
