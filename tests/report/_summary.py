"""A realistic judged summary for report tests: regressions, noise, errors, hostile bodies."""

from __future__ import annotations

from typing import Any

from replaygate.compare import Comparator, GateConfig, judge
from replaygate.replay._stats import ReplayStats

from ..compare._helpers import jex


def make_summary(*, failing: bool = True, replay: dict[str, Any] | None = None) -> dict[str, Any]:
    c = Comparator()
    if replay is not None:
        c.replay = replay  # how the replay ran, as replay/shadow set it
    for i in range(40):
        o = {"id": i, "rid": f"o{i}", "html": "</script><script>alert(1)</script><!--"}
        r = {"id": i, "rid": f"c{i}", "html": o["html"]}
        if failing and i % 4 == 0:
            r["id"] = -1
        c.add(jex(f"/items/{i}", o, r, rlatency_ms=12 + i % 5, ts_s=i * 0.5))
        c.add(jex(f"/items/{i}", o, {**o, "rid": f"b{i}"}, role="baseline", rlatency_ms=11))
        c.add(jex("/health", {"ok": True}, {"ok": True}, ts_s=i * 0.5))
    if failing:
        c.add(jex("/items/500", {"id": 1}, {"error": "x"}, rstatus=500))
        c.add(jex("/items/501", {"id": 1}, None, error="timeout after 30s"))
    c.set_target_metrics(
        {
            "errors": {},
            "process": {
                "pid": 1,
                "samples": 2,
                "rss_bytes": {
                    "first": 1.0,
                    "last": 3.0,
                    "max": 3.0,
                    "delta": 2.0,
                    "series": [[0, 1.0], [1, 3.0]],
                },
            },
            "metrics": {
                "url": "http://127.0.0.1:1/metrics",
                "samples": 2,
                "deltas": {"reqs": 5.0},
                "series": {"reqs": [[0, 1.0], [1, 6.0]]},
            },
        }
    )
    return judge(c.result(), GateConfig()).summary()


def replay_facts(
    order: str = "recorded", waited: int = 45, http2: dict[str, int] | None = None
) -> dict[str, Any]:
    """The ``order*`` fields and ``http2`` events of a finished replay's stats, as
    ``replay``/``shadow`` pass them."""
    st = ReplayStats(order=order)
    st.http2.update(http2 or {})
    for us in range(waited):
        st.order_wait.record(1000 + us * 1500)  # microseconds
        st.order_wait_total_s += (1000 + us * 1500) / 1e6
    st.order_waited = waited
    st.finish_percentiles()
    return {k: v for k, v in st.as_dict().items() if k.startswith("order") or k == "http2"}
