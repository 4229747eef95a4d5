"""The release gate: a :class:`CompareResult` + ``[gate]`` thresholds -> pass/fail and why.

Every failure reason is one line naming the endpoint, the measured value and the threshold,
so a verdict can be trusted and argued with. Fields are classified as ``regression``,
``noise`` (with the reason) or ``accepted`` (with the entry); an exchange counts as differing
when it has at least one ``regression`` field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from .._version import __version__
from ._config import GateConfig
from ._glob import glob_match
from ._result import CompareResult, EndpointResult, FieldResult
from .accepted import AcceptedDiff, AcceptedDiffs
from .latency import LatencyHistogram, latency_regression

__all__ = ["EndpointVerdict", "Verdict", "judge"]


@dataclass
class EndpointVerdict:
    endpoint: EndpointResult
    verdict: str
    reasons: list[str]
    differing: int
    diff_rate: float
    field_status: dict[tuple[str, str], tuple[str, str | None]]  # key -> (status, why)
    latency: dict[str, Any]
    new_5xx_rate: float
    error_rate: float
    judged: bool = True
    unjudged: int = 0  # candidate requests that cannot be judged (see _unjudged)
    unjudged_reason: str | None = None


@dataclass
class Verdict:
    passed: bool
    reasons: list[str]
    endpoints: list[EndpointVerdict]
    result: CompareResult
    gate: GateConfig
    accepted: AcceptedDiffs | None
    totals: dict[str, Any] = field(default_factory=dict)
    # the input or the job is wrong (nothing replayed, nothing read): exit 2, not a verdict
    job_error: str | None = None
    limitations: list[str] = field(default_factory=list)  # what could not be compared

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def exit_code(self) -> int:
        """0 pass, 1 the release fails, 2 the input or job is wrong (:attr:`job_error`)."""
        if self.job_error is not None:
            return 2
        return 0 if self.passed else 1

    def summary(self) -> dict[str, Any]:
        """The JSON summary (contract: verdict, reasons, endpoints[...])."""
        return _summary(self)


def _pct(x: float) -> str:
    if x == 0:
        return "0%"
    if x < 0.001:
        return f"{x * 100:.3f}%"
    return f"{x * 100:.1f}%".replace(".0%", "%")


def judge(
    result: CompareResult, gate: GateConfig, accepted: AcceptedDiffs | None = None
) -> Verdict:
    reasons: list[str] = []
    eps: list[EndpointVerdict] = []
    tot_compared = tot_diff = tot_replayed = tot_requests = 0
    tot_new5 = tot_err = tot_unjudged = tot_status_only = 0
    unjudged_eps: list[EndpointVerdict] = []
    for ep in result.endpoints:
        ev = _judge_endpoint(ep, gate, accepted)
        eps.append(ev)
        if not ev.judged:
            continue
        if ev.unjudged:
            tot_unjudged += ev.unjudged
            unjudged_eps.append(ev)
        tot_status_only += ep.status_only
        tot_requests += ep.requests
        tot_compared += ep.compared
        tot_diff += ev.differing
        tot_replayed += ep.replayed
        tot_new5 += ep.new_5xx
        tot_err += sum(ep.errors.values())
        reasons.extend(f"{ep.endpoint}: {r}" for r in ev.reasons)
    overall_rate = tot_diff / tot_compared if tot_compared else 0.0
    if tot_replayed < gate.min_replayed:
        reasons.insert(
            0,
            f"only {tot_replayed} exchanges were replayed (min_replayed {gate.min_replayed}); "
            "a recording to judge needs replayed responses (replay --output writes them)",
        )
    base_attempts = base_changed = 0
    for ev in eps:
        if not ev.judged:
            continue
        for change, n in ev.endpoint.baseline_status_matrix.items():
            a, _, b = change.partition(">")
            base_attempts += n
            base_changed += n if a != b else 0
    if base_attempts and base_changed / base_attempts > gate.max_baseline_status_change_rate:
        reasons.insert(
            0,
            f"the baseline copy itself changed the status class of {base_changed} of "
            f"{base_attempts} replays ({_pct(base_changed / base_attempts)}; "
            f"max_baseline_status_change_rate {_pct(gate.max_baseline_status_change_rate)}): "
            "its noise estimate cannot be trusted; check the baseline deployment",
        )
    if tot_compared and overall_rate > gate.max_diff_rate:
        reasons.insert(
            0,
            f"overall: {_pct(overall_rate)} of {tot_compared} compared requests differ "
            f"(max_diff_rate {_pct(gate.max_diff_rate)})",
        )
    unjudged_rate = tot_unjudged / tot_replayed if tot_replayed else 0.0
    if tot_unjudged and unjudged_rate > gate.max_unjudged_rate:
        worst = sorted(unjudged_eps, key=lambda e: -e.unjudged)[:3]
        what = "; ".join(
            f"{e.endpoint.endpoint} ({e.unjudged}): {e.unjudged_reason}" for e in worst
        )
        more = f"; and {len(unjudged_eps) - 3} more endpoints" if len(unjudged_eps) > 3 else ""
        reasons.append(
            f"cannot judge {tot_unjudged} of {tot_replayed} replayed requests "
            f"({_pct(unjudged_rate)}; max_unjudged_rate {_pct(gate.max_unjudged_rate)}): "
            f"{what}{more}"
        )
    if accepted is not None:
        for e in accepted.entries:
            if e.expired(accepted.today) and e.used:
                reasons.append(
                    f"accepted difference expired on {e.expires.isoformat()}: {e.endpoint} "
                    f"{e.what()} ({e.reason}; {e.who})"
                )
    overall_lat = _merge([e.endpoint.latency_original for e in eps if e.judged])
    overall_rep = _merge([e.endpoint.latency_replayed for e in eps if e.judged])
    overall_base = _merge([e.endpoint.latency_baseline for e in eps if e.judged])
    not_compared: dict[str, int] = dict(result.skipped)
    for ev in eps:
        for k, n in ev.endpoint.skipped.items():
            not_compared[k] = not_compared.get(k, 0) + n
    totals = {
        "not_compared": not_compared,
        "requests": tot_requests,
        "replayed": tot_replayed,
        "compared": tot_compared,
        "differing": tot_diff,
        "diff_rate": round(overall_rate, 6),
        "new_5xx": tot_new5,
        "errors": tot_err,
        "unjudged": tot_unjudged,
        "unjudged_rate": round(unjudged_rate, 6),
        "unjudged_endpoints": len(unjudged_eps),
        "status_only": tot_status_only,
        "latency_ms": {
            "original": overall_lat.summary(),
            "replayed": overall_rep.summary(),
            "baseline": overall_base.summary(),
        },
    }
    job_error = _job_error(
        result, tot_requests, tot_replayed, sum(e.endpoint.requests for e in eps)
    )
    limitations = _limitations(tot_status_only)
    return Verdict(
        not reasons and job_error is None,
        reasons,
        eps,
        result,
        gate,
        accepted,
        totals,
        job_error,
        limitations,
    )


def _job_error(
    result: CompareResult, judged_requests: int, replayed: int, requests: int
) -> str | None:
    """Why no verdict can be given at all (exit 2): nothing was read, or nothing was ever
    replayed (a capture given to ``compare`` instead of ``replay --output``'s recording)."""
    src = ", ".join(result.sources) or "the input"
    if requests == 0:
        return f"{src}: no exchanges to judge (empty input, or everything was filtered out)"
    if replayed == 0 and judged_requests:
        base = sum(e.baseline_requests for e in result.endpoints)
        if base == 0 and not any(e.errors for e in result.endpoints):
            return (
                f"{src}: none of {requests} requests was replayed (no replayed responses or "
                "errors in the recording): replay it first (replay --output writes them)"
            )
    errors: dict[str, int] = {}
    for e in result.endpoints:
        for k, n in e.errors.items():
            errors[k] = errors.get(k, 0) + n
    compared = sum(e.compared for e in result.endpoints)
    if replayed and not compared and errors and set(errors) <= _UNREACHABLE:
        kinds = ", ".join(f"{k} ({n})" for k, n in sorted(errors.items()))
        return (
            f"the target was unreachable for every one of {replayed} replayed requests "
            f"({kinds}): check the target URL and that it is running"
        )
    return None


# error types (see _comparator.error_type) that mean no connection was ever made
_UNREACHABLE = frozenset(("refused", "dns", "connect_error"))


def _limitations(status_only: int) -> list[str]:
    """Plain sentences saying what could not be compared."""
    out: list[str] = []
    if status_only:
        out.append(
            f"{status_only} replayed requests had no recorded response (request-only "
            "recording): their bodies and headers could not be compared; they were judged on "
            "replay errors, 5xx, latency thresholds (max_p99_ms) and, where the source recorded "
            "a status (access logs), the status"
        )
    return out


def _merge(hs: list[LatencyHistogram]) -> LatencyHistogram:
    out = LatencyHistogram()
    for h in hs:
        out.merge(h)
    return out


def _classify(
    ep: EndpointResult, f: FieldResult, exact: bool, accepted: AcceptedDiffs | None
) -> tuple[str, str | None, AcceptedDiff | None]:
    if f.noise_reason and (f.explicit or not exact):
        return "noise", f.noise_reason, None
    if accepted is not None:
        act, exp = accepted.find_field(ep.endpoint, f.field, f.kind)
        if act is not None:
            return "accepted", f"{act.reason} ({act.who}, until {act.expires.isoformat()})", act
        if exp is not None:
            return "regression", f"accepted difference expired on {exp.expires.isoformat()}", exp
    if f.unjudged and not exact:
        return "unjudged", f.unjudged, None
    return "regression", ("must match exactly" if exact and f.noise_reason else None), None


def _judge_endpoint(
    ep: EndpointResult, gate: GateConfig, accepted: AcceptedDiffs | None
) -> EndpointVerdict:
    name = ep.endpoint
    judged = not any(glob_match(name, p) for p in gate.ignore_endpoints)
    exact = any(glob_match(name, p) for p in gate.exact_endpoints)
    status: dict[tuple[str, str], tuple[str, str | None]] = {}
    for f in ep.fields:
        if f.count == 0:
            status[f.key] = ("noise", f.noise_reason or "differs only in baseline replays")
            continue
        st, why, entry = _classify(ep, f, exact, accepted)
        if entry is not None:
            entry.used += f.count
        status[f.key] = (st, why)
    real = {k for k, (s, _) in status.items() if s == "regression"}
    differing = sum(n for sig, n in ep.signatures.items() if any(k in real for k in sig))
    unjudged, unjudged_reason = _unjudged(ep, gate, status, real)
    rate = differing / ep.compared if ep.compared else 0.0
    reasons: list[str] = []
    if differing and (exact or rate > gate.max_endpoint_diff_rate):
        top = sorted(
            (f for f in ep.fields if f.key in real),
            key=lambda f: (f.field != "status", -f.count, f.field),
        )[:3]
        what = ", ".join(f"{f.field} {f.kind} ({f.count})" for f in top)
        limit = (
            "must match exactly"
            if exact
            else f"max_endpoint_diff_rate {_pct(gate.max_endpoint_diff_rate)}"
        )
        reasons.append(f"{_pct(rate)} of {ep.compared} requests differ ({limit}): {what}")
    # new 5xx (net of what the baseline copy also produced)
    new5_rate = ep.new_5xx / ep.compared if ep.compared else 0.0
    base5_rate = ep.baseline_new_5xx / ep.baseline_compared if ep.baseline_compared else 0.0
    if ep.new_5xx and new5_rate - base5_rate > gate.max_new_5xx_rate:
        changes = sorted(
            k for k, n in ep.status_matrix.items() if k.endswith(">5xx") and not k.startswith("5xx")
        )
        act = None
        if accepted is not None:
            for ch in changes:
                a, exp = accepted.find_status(name, ch)
                if a is not None:
                    act = a
                    a.used += ep.new_5xx
                elif exp is not None:
                    exp.used += ep.new_5xx
        if act is None:
            base = f", baseline {_pct(base5_rate)}" if ep.baseline_compared else ""
            reasons.append(
                f"{ep.new_5xx} new 5xx of {ep.compared} requests ({_pct(new5_rate)}{base}; "
                f"max_new_5xx_rate {_pct(gate.max_new_5xx_rate)})"
            )
    n_err = sum(ep.errors.values())
    attempts = ep.compared + n_err
    err_rate = n_err / attempts if attempts else 0.0
    base_err = sum(ep.baseline_errors.values())
    base_attempts = ep.baseline_compared + base_err
    base_err_rate = base_err / base_attempts if base_attempts else 0.0
    if n_err and err_rate - base_err_rate > gate.max_error_rate:
        kinds = ", ".join(f"{k} ({n})" for k, n in sorted(ep.errors.items(), key=lambda x: -x[1]))
        reasons.append(
            f"{n_err} replay errors of {attempts} ({_pct(err_rate)}; max_error_rate {_pct(gate.max_error_rate)}): {kinds}"
        )
    # latency: against the baseline copy when it has enough samples (same place, same time)
    ref_name = (
        "baseline" if ep.latency_baseline.count >= max(1, gate.latency_min_samples) else "original"
    )
    ref = ep.latency_baseline if ref_name == "baseline" else ep.latency_original
    lat = latency_regression(
        ref,
        ep.latency_replayed,
        max_ratio=gate.max_p99_ratio,
        min_delta_ms=gate.min_p99_delta_ms,
        min_samples=gate.latency_min_samples,
        confidence=gate.latency_confidence if ref_name == "baseline" else None,
        seed=name,
    )
    lat["reference"] = ref_name
    if lat["regressed"]:
        act = None
        if accepted is not None:
            act, exp = accepted.find_latency(name)
            if act is not None:
                act.used += 1
                lat["accepted"] = act.reason
            elif exp is not None:
                exp.used += 1
        if act is None:
            ratio = f"x{lat['ratio']:.2f}, " if lat["ratio"] is not None else ""
            stats = ""
            if lat["interval_ms"] is not None:
                lo, hi = lat["interval_ms"]
                stats = (
                    f", {gate.latency_confidence:.0%} interval +{lo:.1f}..+{hi:.1f} ms, "
                    f"Mann-Whitney p={lat['p_value']:.2g}"
                )
            reasons.append(
                f"p{lat['percentile']} {lat['replayed_ms']:.1f} ms vs {lat['reference_ms']:.1f} ms "
                f"{ref_name} ({ratio}+{lat['delta_ms']:.1f} ms{stats}; max_p99_ratio "
                f"x{gate.max_p99_ratio:g} and min_p99_delta_ms {gate.min_p99_delta_ms:g}"
                + ("; p90 as under 100 samples)" if lat["percentile"] != 99 else ")")
            )
    ceiling = _latency_ceiling(ep, gate)
    if ceiling:
        reasons.append(ceiling)
    verdict = "fail" if reasons and judged else ("unjudged" if unjudged and judged else "pass")
    return EndpointVerdict(
        ep,
        verdict,
        reasons,
        differing,
        rate,
        status,
        lat,
        new5_rate,
        err_rate,
        judged,
        unjudged,
        unjudged_reason,
    )


def _changed(transition: str) -> bool:
    a, _, b = transition.partition(">")
    return a != b and a != "none"


def _unjudged(
    ep: EndpointResult,
    gate: GateConfig,
    status: dict[tuple[str, str], tuple[str, str | None]],
    real: set[tuple[str, str]],
) -> tuple[int, str | None]:
    """Candidate requests that cannot be judged, and why.

    - Where this endpoint's baseline copy disagrees with the original (its status class
      changed, or it errored, on more than ``max_baseline_status_change_rate`` of its replays),
      a candidate that answers the way the baseline does agrees with a broken reference: that
      is no pass (a form POST answered 302 in production and 403 on both copies).
    - Requests whose only differences are fields with too few replays to tell noise from a
      regression (:class:`~replaygate.compare.noise.Judgement`).
    """
    why: list[str] = []
    n_status = 0
    base_total = sum(ep.baseline_status_matrix.values())
    if base_total:
        broken = {
            t: n
            for t, n in ep.baseline_status_matrix.items()
            if _changed(t) and n / base_total > gate.max_baseline_status_change_rate
        }
        for t, n in sorted(broken.items(), key=lambda x: -x[1]):
            c = ep.status_matrix.get(t, 0)
            if c:
                n_status += c
                why.append(
                    f"the baseline copy disagrees with the original ({t} on {n} of {base_total} "
                    f"baseline replays) and the candidate answers the same way ({c})"
                )
    keys = {k for k, (s, _) in status.items() if s == "unjudged"}
    n_fields = 0
    if keys:
        n_fields = sum(
            n
            for sig, n in ep.signatures.items()
            if any(k in keys for k in sig) and not any(k in real for k in sig)
        )
        if n_fields:
            f = next(f for f in ep.fields if f.key in keys)
            more = f" (and {len(keys) - 1} more fields)" if len(keys) > 1 else ""
            why.append(f"{f.field} {f.kind}{more}: {f.unjudged}")
    total = min(n_status + n_fields, ep.replayed)
    return total, ("; ".join(why) if total else None)


def _latency_ceiling(ep: EndpointResult, gate: GateConfig) -> str | None:
    """``max_p99_ms``: an absolute ceiling, judged even where nothing can be compared."""
    h = ep.latency_replayed
    if gate.max_p99_ms is None or h.count < max(gate.latency_min_samples, 1):
        return None
    pct = 99 if h.count >= 100 else 90
    v = h.percentile_ms(pct)
    if v <= gate.max_p99_ms:
        return None
    return f"p{pct} {v:.1f} ms over {h.count} replays (max_p99_ms {gate.max_p99_ms:g}" + (
        "; p90 as under 100 samples)" if pct != 99 else ")"
    )


def _summary(v: Verdict) -> dict[str, Any]:
    res = v.result
    total_requests = sum(e.endpoint.requests for e in v.endpoints) or 1
    endpoints = []
    for ev in sorted(
        v.endpoints, key=lambda e: (e.verdict != "fail", -e.endpoint.requests, e.endpoint.endpoint)
    ):
        ep = ev.endpoint
        fields = []
        noise_fields = []
        for f in sorted(ep.fields, key=lambda f: (-f.count, f.field, f.kind)):
            st, why = ev.field_status.get(f.key, ("regression", None))
            row = {
                "field": f.field,
                "kind": f.kind,
                "status": st,
                "reason": why,
                "count": f.count,
                "rate": round(f.rate, 6),
                "baseline_count": f.baseline_count,
                "baseline_rate": round(f.baseline_rate, 6) if f.baseline_rate is not None else None,
                "learned_count": f.learned_count,
                "learned_pairs": f.learned_pairs,
                "p_value": float(f"{f.p_value:.3g}") if f.p_value is not None else None,
                "samples": f.samples,
            }
            fields.append(row)
            if st == "noise":
                noise_fields.append(
                    {
                        "field": f.field,
                        "kind": f.kind,
                        "reason": why,
                        "rate": row["rate"],
                        "baseline_rate": row["baseline_rate"],
                    }
                )
        endpoints.append(
            {
                "endpoint": ep.endpoint,
                "verdict": ev.verdict,
                "judged": ev.judged,
                "requests": ep.requests,
                "traffic_share": round(ep.requests / total_requests, 6),
                "replayed": ep.replayed,
                "compared": ep.compared,
                "differing": ev.differing,
                "diff_rate": round(ev.diff_rate, 6),
                "baseline_requests": ep.baseline_requests,
                "noise_fields": noise_fields,
                "fields": fields,
                "latency_ms": {
                    "original": ep.latency_original.summary(),
                    "replayed": ep.latency_replayed.summary(),
                    "baseline": ep.latency_baseline.summary(),
                    **{
                        k: ev.latency[k]
                        for k in (
                            "reference",
                            "percentile",
                            "reference_ms",
                            "replayed_ms",
                            "ratio",
                            "delta_ms",
                            "regressed",
                            "enough_samples",
                            "test",
                            "p_value",
                            "interval_ms",
                            "confidence",
                            "significant",
                        )
                    },
                },
                "latency_distribution": {
                    "original": ep.latency_original.distribution(),
                    "replayed": ep.latency_replayed.distribution(),
                    "baseline": ep.latency_baseline.distribution(),
                },
                "status_matrix": ep.status_matrix,
                "baseline_status_matrix": ep.baseline_status_matrix,
                "new_5xx": ep.new_5xx,
                "new_5xx_rate": round(ev.new_5xx_rate, 6),
                "errors": ep.errors,
                "baseline_errors": ep.baseline_errors,
                "new_error_types": sorted(set(ep.errors) - set(ep.baseline_errors)),
                "error_rate": round(ev.error_rate, 6),
                "skipped": ep.skipped,
                "reasons": ev.reasons,
                "unjudged": ev.unjudged,
                "unjudged_reason": ev.unjudged_reason,
                "status_only": ep.status_only,
            }
        )
    matrix: dict[str, int] = {}
    for ev in v.endpoints:
        for k, n in ev.endpoint.status_matrix.items():
            matrix[k] = matrix.get(k, 0) + n
    starts = [min(ts.buckets) for ts in res.timeline.values() if ts.buckets]
    t0 = min(starts) if starts else None
    # replay timestamps differ from capture timestamps: each series starts at its own 0
    timeline = {k: ts.points() for k, ts in res.timeline.items()}
    cfg = res.config
    today = v.accepted.today if v.accepted else dt.date.today()
    return {
        "verdict": v.verdict,
        "reasons": v.reasons,
        "unjudged": v.totals.get("unjudged", 0),
        "limitations": v.limitations,
        "job_error": v.job_error,
        "replaygate_version": __version__,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sources": res.sources,
        "warnings": list(res.warnings),
        "totals": v.totals,
        "endpoints": endpoints,
        "status_matrix": matrix,
        "timeline": timeline,
        "timeline_start": t0,
        "accepted": [e.as_dict(today) for e in (v.accepted.entries if v.accepted else [])],
        "accepted_file": v.accepted.path if v.accepted else None,
        "skipped": res.skipped,
        "target": res.target,
        "replay": res.replay,
        "gate": asdict(v.gate),
        "compare": {
            "noise_relative": cfg.noise_relative,
            "noise_absolute": cfg.noise_absolute,
            "noise_confidence": cfg.noise_confidence,
            "learn_min_pairs": cfg.learn_min_pairs,
            "learn_min_rate": cfg.learn_min_rate,
            "ignore": [str(x) for x in cfg.ignore],
            "order_insensitive": cfg.order_insensitive,
            "volatile_headers": sorted(cfg.all_volatile_headers),
        },
    }
