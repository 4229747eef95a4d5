"""The streaming, mergeable comparator: exchanges in, per-endpoint statistics out.

Memory is bounded by the number of endpoints and distinct difference *signatures* (the set of
difference keys of one exchange), never by the number of exchanges: signatures let the gate
recompute a diff rate after noise and accepted differences are known, without keeping
exchanges. Workers each run a comparator and ship :meth:`Comparator.to_state`; merging is
exact (HDR histograms, counters).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..model import INCOMPLETE_FLAGS, Exchange, Response
from ._config import CompareConfig
from ._glob import glob_match
from ._result import CompareResult, EndpointResult, FieldResult
from ._stats import EndpointStats as _Endpoint
from ._stats import counter as _counter
from .diff import Difference, ResponseDiffer, body_kind
from .endpoints import EndpointTemplater, fold_endpoints, load_routes
from .latency import TimeSeries
from .noise import Judgement, NoiseModel, VolatilityLearner

__all__ = ["Comparator", "CompareSink"]

DiffKey = tuple[str, str]
MAX_FULL_SAMPLES = 12  # per endpoint: samples that keep request and both responses
_INCOMPLETE = INCOMPLETE_FLAGS


MAX_FIELDS = 2000  # per endpoint; further keys count as one "(other fields)" key per kind


def _bounded(seen: Counter[DiffKey], diffs: list[Difference]) -> set[DiffKey]:
    """The exchange's difference keys, new ones beyond MAX_FIELDS folded per kind."""
    out: set[DiffKey] = set()
    for d in diffs:
        k = d.key
        if k not in seen and k not in out and len(seen) + len(out) >= MAX_FIELDS:
            k = ("body:(other fields)" if k[0].startswith("body:") else "(other fields)", k[1])
        out.add(k)
    return out


def status_class(code: int | None) -> str:
    if code is None:
        return "none"
    if 100 <= code < 600:
        return f"{code // 100}xx"
    return "other"


def error_type(err: str) -> str:
    """``"timeout after 10s"`` -> ``"timeout"``; ``"ConnectionResetError: [Errno 104]..."`` ->
    ``"connectionreseterror"``: a stable, short category per error."""
    head = err.split(":", 1)[0].strip().lower()
    for word in ("timeout", "timed out", "reset", "refused", "closed", "eof", "ssl", "dns"):
        if word in head:
            return {"timed out": "timeout", "eof": "closed"}.get(word, word)
    return head[:60] or "error"


class Comparator:
    """Feed exchanges with :meth:`add`; read :meth:`result`. Mergeable across workers.

    ``ex.response`` is the original, ``ex.replayed``/``ex.replay_error`` the replay;
    ``ex.meta["role"] == "baseline"`` marks a replay to the baseline copy (noise reference).
    """

    STATE_VERSION = 1

    def __init__(self, config: CompareConfig | None = None) -> None:
        self.config = config or CompareConfig()
        self._differ = ResponseDiffer(self.config)
        self._templater = EndpointTemplater(
            self.config.endpoints,
            self.config.endpoint_header,
            routes=load_routes(self.config.routes) if self.config.routes else (),
            max_segment_values=self.config.max_segment_values,
        )
        self._learner = VolatilityLearner(self._differ, self.config.learn_window)
        self._eps: dict[str, _Endpoint] = {}
        self.timeline: dict[str, TimeSeries] = {
            "original": TimeSeries.new(),
            "replayed": TimeSeries.new(),
            "baseline": TimeSeries.new(),
        }
        self.skipped: Counter[str] = Counter()
        self.target: dict[str, Any] = {}
        self.sources: list[str] = []
        self.replay: dict[str, Any] = {}  # how the replay ran (order used, waits)

    # -- feeding ------------------------------------------------------------------------
    def add(self, ex: Exchange) -> None:
        is_base = ex.meta.get("role") == "baseline"
        ep_name = self._templater.endpoint(ex.request)
        st = self._eps.get(ep_name)
        if st is None:
            if len(self._eps) >= self.config.max_endpoints:
                self.skipped["endpoints beyond max_endpoints (grouped as 'other')"] += 1
                ep_name = f"{ex.request.method.upper() or '?'} (other endpoints)"
                st = self._eps.get(ep_name)
            if st is None:
                st = self._eps[ep_name] = _Endpoint()
        orig = ex.response
        rep = ex.replayed
        err = ex.replay_error
        if is_base:
            st.base_requests += 1
        else:
            st.requests += 1
            if orig is not None and ex.latency_ns is not None:
                st.lat_orig.record_ns(ex.latency_ns)
                self.timeline["original"].record(ex.request.ts_first_ns, ex.latency_ns)
        if ex.replay_latency_ns is not None and (rep is not None or err is None):
            (st.lat_base if is_base else st.lat_rep).record_ns(ex.replay_latency_ns)
            ts = ex.replay_ts_ns or ex.request.ts_first_ns
            self.timeline["baseline" if is_base else "replayed"].record(ts, ex.replay_latency_ns)
        if orig is None:
            if err is not None or rep is not None:
                self._add_request_only(st, ex, is_base)
            elif not is_base:
                st.skipped["no original response"] += 1
            return
        if ex.flags & _INCOMPLETE:
            if not is_base:
                st.skipped[
                    "original incomplete ("
                    + ",".join(sorted(str(f) for f in ex.flags & _INCOMPLETE))
                    + ")"
                ] += 1
            return
        if not is_base and ex.meta.get("loop", "0") == "0":
            # loop copies (replay --loop) repeat one captured response: nothing to learn
            self._learner.observe(ep_name, ex.request, orig)
        oc = status_class(orig.status)
        if err is not None or rep is None:
            cls_ = "error" if err is not None else "none"
            (st.base_status if is_base else st.status)[f"{oc}>{cls_}"] += 1
            if err is not None:
                (st.base_errors if is_base else st.errors)[error_type(err)] += 1
            elif not is_base:
                st.skipped["not replayed"] += 1
            return
        rc = status_class(rep.status)
        (st.base_status if is_base else st.status)[f"{oc}>{rc}"] += 1
        new5 = rep.status >= 500 and not orig.status >= 500
        diffs = self._differ.diff(orig, rep, _host_rewrite(ex), ex.request.path)
        if is_base:
            st.base_compared += 1
            st.base_new_5xx += new5
            if diffs:
                st.base_diffs.update(_bounded(st.base_diffs, diffs))
            return
        st.compared += 1
        st.new_5xx += new5
        if diffs:
            bounded = _bounded(st.diffs, diffs)
            keys = tuple(sorted(bounded))
            st.diffs.update(keys)
            st.signatures[keys] += 1
            self._sample(st, ex, [d for d in diffs if d.key in bounded])

    def _add_request_only(self, st: _Endpoint, ex: Exchange, is_base: bool) -> None:
        """A replayed request whose original response was not recorded (GoReplay's default
        capture, access logs): judged on what can be judged. Replay errors and 5xx count as
        always; the status is compared with the recorded one when the source kept it (access
        logs: ``meta["status"]``); bodies and headers cannot be compared."""
        rep = ex.replayed
        err = ex.replay_error
        recorded = _recorded_status(ex)
        oc = status_class(recorded) if recorded is not None else "none"
        status = st.base_status if is_base else st.status
        if not is_base:
            st.status_only += 1
        if err is not None or rep is None:
            status[f"{oc}>error"] += 1
            if err is not None:
                (st.base_errors if is_base else st.errors)[error_type(err)] += 1
            return
        status[f"{oc}>{status_class(rep.status)}"] += 1
        new5 = rep.status >= 500 and not (recorded is not None and recorded >= 500)
        keys: tuple[DiffKey, ...] = ()
        if recorded is not None and recorded != rep.status:
            keys = (("status", "changed"),)
        if is_base:
            st.base_compared += 1
            st.base_new_5xx += new5
            st.base_diffs.update(keys)
            return
        st.compared += 1
        st.new_5xx += new5
        if keys:
            st.diffs.update(keys)
            st.signatures[keys] += 1
            d = Difference("status", "changed", "status", recorded, rep.status)
            self._sample(st, ex, [d])

    def _sample(self, st: _Endpoint, ex: Exchange, diffs: list[Difference]) -> None:
        n = self.config.samples
        if n <= 0:
            return
        done: set[str] = set()
        full: dict[str, Any] | None = None
        for d in diffs:
            if d.field in done:
                continue
            lst = st.samples.setdefault(d.field, [])
            if len(lst) >= n:
                continue
            done.add(d.field)
            if full is None:
                if st.full_samples < MAX_FULL_SAMPLES:
                    st.full_samples += 1
                    full = self._exchange_texts(ex)
                else:  # enough whole messages kept for this endpoint: the values only
                    first = ex.request.raw[:200].split(b"\n", 1)[0]
                    full = {"id": ex.id, "request": first.decode("latin-1").rstrip()}
            lst.append({**d.as_dict(), **full})

    def _exchange_texts(self, ex: Exchange) -> dict[str, Any]:
        lim = self.config.sample_bytes
        req = ex.request
        head = req.raw[: req.head_len].decode("latin-1")
        body = req.body()
        rtext = head + (body[:lim].decode("utf-8", "replace") if body else "")
        return {
            "id": ex.id,
            "request": rtext[:lim],
            "original_response": _response_text(ex.response, lim),
            "replayed_response": _response_text(ex.replayed, lim),
        }

    def merge(self, other: Comparator) -> None:
        """Add another comparator's counts (exact for everything but learned volatility,
        whose pairs are only found within one comparator)."""
        for name, o in other._eps.items():
            st = self._eps.get(name)
            if st is None:
                st = self._eps[name] = _Endpoint()
            st.merge(o, self.config.samples)
        self._learner.merge(other._learner)
        for i, n in enumerate(other._templater.hits[: len(self._templater.hits)]):
            self._templater.hits[i] += n
        for k, ts in other.timeline.items():
            self.timeline[k].merge(ts)
        self.skipped.update(other.skipped)
        if other.target and not self.target:
            self.target = other.target
        self.sources.extend(s for s in other.sources if s not in self.sources)

    def set_target_metrics(self, data: dict[str, Any]) -> None:
        """Attach what a :class:`~replaygate.compare.watch.TargetWatcher` saw."""
        self.target = data

    # -- state --------------------------------------------------------------------------
    def to_state(self) -> bytes:
        return orjson.dumps(
            {
                "v": self.STATE_VERSION,
                "endpoints": {k: v.to_state() for k, v in self._eps.items()},
                "learn_pairs": dict(self._learner.pairs),
                "learn_fields": {
                    ep: [[f, k, n] for (f, k), n in c.items()]
                    for ep, c in self._learner.fields.items()
                },
                "timeline": {k: v.to_state() for k, v in self.timeline.items()},
                "skipped": dict(self.skipped),
                "target": self.target,
                "sources": self.sources,
                "rule_hits": self._templater.hits,
            }
        )

    @classmethod
    def from_state(cls, data: bytes, config: CompareConfig | None = None) -> Comparator:
        from ..errors import FormatError

        try:
            d = orjson.loads(data)
            if d.get("v") != cls.STATE_VERSION:
                raise FormatError(f"comparator state version {d.get('v')!r} is not supported")
            c = cls(config)
            c._eps = {k: _Endpoint.from_state(v) for k, v in d["endpoints"].items()}
            c._learner.pairs = Counter(d["learn_pairs"])
            c._learner.fields = {
                ep: Counter({(f, k): int(n) for f, k, n in rows})
                for ep, rows in d["learn_fields"].items()
            }
            c.timeline = {k: TimeSeries.from_state(v) for k, v in d["timeline"].items()}
            c.skipped = _counter(d["skipped"])
            c._learner.pairs = _counter(d["learn_pairs"])
            c.target = d.get("target") or {}
            c.sources = list(d.get("sources") or [])
            hits = d.get("rule_hits") or []
            for i, n in enumerate(hits[: len(c._templater.hits)]):
                c._templater.hits[i] = int(n)
        except FormatError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise FormatError(f"comparator state is damaged: {e}") from None
        return c

    # -- results ------------------------------------------------------------------------
    def _fold_endpoints(self) -> None:
        """The cardinality guard on finished names (see ``endpoints.fold_endpoints``)."""
        renames = fold_endpoints(
            list(self._eps), self.config.max_segment_values, self._templater.is_automatic
        )
        lrn = self._learner
        for old, new in renames.items():
            st = self._eps.pop(old)
            if new in self._eps:
                self._eps[new].merge(st, self.config.samples)
            else:
                self._eps[new] = st
            if old in lrn.pairs:
                lrn.pairs[new] += lrn.pairs.pop(old)
            if old in lrn.fields:
                lrn.fields.setdefault(new, Counter()).update(lrn.fields.pop(old))

    def warnings(self) -> list[str]:
        """Configuration that had no effect on this traffic (shown on stderr and in reports)."""
        out = [
            f"[compare] endpoints rule {p!r} matched no request"
            for p in self._templater.unmatched_rules()
        ]
        for r in self.config.ignore:  # an ignore rule scoped to an endpoint that never came
            pat = r.get("endpoint") if isinstance(r, dict) else None
            if isinstance(pat, str) and not any(glob_match(n, pat) for n in self._eps):
                out.append(f"[compare] ignore rule for endpoint {pat!r} matched no endpoint")
        return out

    def result(self) -> CompareResult:
        self._fold_endpoints()
        noise = NoiseModel(self.config)
        noise.learn_elsewhere(self._learner.pairs, self._learner.fields)
        noise.learn_baseline_elsewhere(
            {k: (st.base_diffs, st.base_compared) for k, st in self._eps.items()}
        )
        # two passes: every baseline test's p-value first, so that significance is decided
        # over all the fields tested in the run (NoiseModel.set_tests), then classification
        p_values: list[float] = []
        judged: dict[tuple[str, DiffKey], Judgement] = {}
        for final in (False, True):
            if final:
                noise.set_tests(p_values)
            for name, st in self._eps.items():
                learned = self._learner.fields.get(name)
                pairs = self._learner.pairs.get(name, 0)
                for key in st.diffs.keys() | st.base_diffs.keys():
                    j = noise.classify(
                        name,
                        key,
                        cand=st.diffs.get(key, 0),
                        n=st.compared,
                        base=st.base_diffs.get(key, 0),
                        base_n=st.base_compared,
                        learned=learned,
                        pairs=pairs,
                    )
                    judged[(name, key)] = j
                    if j.p_value is not None:
                        p_values.append(j.p_value)
        eps: list[EndpointResult] = []
        for name in sorted(self._eps):
            st = self._eps[name]
            learned = self._learner.fields.get(name)
            pairs = self._learner.pairs.get(name, 0)
            fields: list[FieldResult] = []
            for key in sorted(st.diffs.keys() | st.base_diffs.keys()):
                cand = st.diffs.get(key, 0)
                base = st.base_diffs.get(key, 0)
                j = judged[(name, key)]
                explicit = noise.explicit(name, key[0]) is not None
                fields.append(
                    FieldResult(
                        field=key[0],
                        kind=key[1],
                        count=cand,
                        rate=cand / st.compared if st.compared else 0.0,
                        baseline_count=base,
                        baseline_rate=base / st.base_compared if st.base_compared else None,
                        learned_count=learned.get(key, 0) if learned else 0,
                        learned_pairs=pairs,
                        noise_reason=j.noise,
                        p_value=j.p_value,
                        unjudged=j.unjudged,
                        explicit=explicit,
                        samples=st.samples.get(key[0], []) if cand else [],
                    )
                )
            eps.append(
                EndpointResult(
                    endpoint=name,
                    requests=st.requests,
                    compared=st.compared,
                    baseline_requests=st.base_requests,
                    baseline_compared=st.base_compared,
                    fields=fields,
                    signatures=dict(st.signatures),
                    status_matrix=dict(st.status),
                    baseline_status_matrix=dict(st.base_status),
                    errors=dict(st.errors),
                    baseline_errors=dict(st.base_errors),
                    new_5xx=st.new_5xx,
                    baseline_new_5xx=st.base_new_5xx,
                    latency_original=st.lat_orig,
                    latency_replayed=st.lat_rep,
                    latency_baseline=st.lat_base,
                    skipped=dict(st.skipped),
                    status_only=st.status_only,
                )
            )
        return CompareResult(
            endpoints=eps,
            timeline=self.timeline,
            skipped=dict(self.skipped),
            target=self.target,
            config=self.config,
            sources=list(self.sources),
            warnings=self.warnings(),
            replay=dict(self.replay),
        )


def _recorded_status(ex: Exchange) -> int | None:
    """The status a request-only source recorded (access logs keep it in ``meta``)."""
    v = ex.meta.get("status")
    if v is None:
        return None
    try:
        code = int(v)
    except ValueError:
        return None
    return code if 100 <= code < 600 else None


def _host_rewrite(ex: Exchange) -> tuple[str, str] | None:
    """(authority the replay sent, authority of the capture), when the replay rewrote Host."""
    target = ex.meta.get("target")
    if not target:
        return None
    orig = ex.request.host
    if not orig:
        return None
    u = urlsplit(target)
    if not u.netloc:
        return None
    return (u.netloc, orig) if u.netloc != orig else None


def _response_text(resp: Response | None, lim: int) -> str:
    if resp is None:
        return ""
    head = resp.raw[: resp.head_len].decode("latin-1")
    kind, val = body_kind(resp)
    if kind == "json":
        body = orjson.dumps(val, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    elif kind == "text":
        body = str(val)
    elif kind == "binary":
        import hashlib

        b = bytes(val)
        body = f"<binary body: {len(b)} bytes, sha256 {hashlib.sha256(b).hexdigest()}>"
    else:
        body = ""
    text = head + body
    return text if len(text) <= lim else text[:lim] + "\n…(truncated)"


class CompareSink:
    """A :class:`~replaygate.pipeline.Sink` feeding a comparator (``replay --report``)."""

    def __init__(
        self, comparator: Comparator | None = None, config: CompareConfig | None = None
    ) -> None:
        self.comparator = comparator or Comparator(config)
        self.closed = False

    def write(self, ex: Exchange) -> None:
        self.comparator.add(ex)

    def close(self) -> None:
        self.closed = True
