"""Conformance on real files users already have: HAR, mitmproxy dumps, GoReplay, access logs.

The expected answers come from the upstream projects and are read from the corpus, never
copied here:

* ``mitmproxy/har_files/X.har`` against ``X.json``: the flows mitmproxy's own HAR importer
  produces (``test/mitmproxy/io/test_har.py``): count, methods, URLs, status codes, body lengths.
* ``mitmproxy/flows/X.mitm`` against ``X.har``: the HAR mitmproxy exports from that dump
  (``test_savehar.py``): the two readers must agree on methods, URLs, statuses and bodies.
* ``ecommerce-workshop/requests_0.gor``: a real GoReplay recording; the answer is in INDEX.md.
* ``beats/nginx/*.log``: Filebeat's nginx test logs; the answer is in INDEX.md.

Deliberate differences (each asserted where it is made):

* status 0 ("no response": failed, blocked) is how HAR and mitmproxy spell a missing response;
  replaygate has no response object then and sets ``Flag.NO_RESPONSE`` (status ``None``).
* a 304 in a browser HAR carries the *cached* body (Chrome, Firefox); on the wire a 304 has no
  body (RFC 9112 section 6.3), and a replayed 304 will not have one either, so replaygate keeps
  none: its response_body_len is 0 where mitmproxy reports the cached length.

``python -m tests.conformance.test_files`` prints the pass table of docs/conformance.md.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from replaygate.formats import ReadOptions, open_reader
from replaygate.formats.gor import SEPARATOR, read_records
from replaygate.model import Exchange, Flag

pytestmark = pytest.mark.conformance

HAR_CASES = ["charles", "chrome", "firefox", "head-content-length", "postdata", "with-bom"]
MITM_CASES = ["error_log", "incomplete_log", "successful_log"]


@dataclass
class Check:
    what: str
    expected: Any
    got: Any

    @property
    def ok(self) -> bool:
        return bool(self.expected == self.got)


def _url(ex: Exchange) -> str:
    """The URL as mitmproxy prints it: scheme://host[:port]/path?query."""
    return f"{ex.meta.get('scheme', 'http')}://{ex.request.host}{ex.request.target}"


def _read(path: Path) -> tuple[list[Exchange], ReadOptions]:
    opts = ReadOptions()
    return list(open_reader(path, opts)), opts


# ---- HAR vs mitmproxy's expected flows ------------------------------------------------------


def har_checks(corpus: Path, name: str) -> list[Check]:
    har = corpus / "mitmproxy" / "har_files" / f"{name}.har"
    expected = json.loads((har.with_suffix(".json")).read_text(encoding="utf-8"))
    got, _ = _read(har)
    checks = [Check("count", len(expected), len(got))]
    for i, (flow, ex) in enumerate(zip(expected, got, strict=False)):
        rq, rs = flow["request"], flow["response"]
        port = "" if rq["port"] in (80, 443) else f":{rq['port']}"
        s = ex.summary()
        checks.append(Check(f"{i} method", rq["method"], s["method"]))
        checks.append(
            Check(f"{i} url", f"{rq['scheme']}://{rq['host']}{port}{rq['path']}", _url(ex))
        )
        checks.append(Check(f"{i} request body", rq["contentLength"], s["request_body_len"]))
        if rs["status_code"] == 0:  # deliberate: no response object, flagged
            checks.append(
                Check(
                    f"{i} status 0 -> no response",
                    (None, True),
                    (s["status"], Flag.NO_RESPONSE in ex.flags),
                )
            )
            continue
        checks.append(Check(f"{i} status", rs["status_code"], s["status"]))
        want = 0 if rs["status_code"] == 304 else rs["contentLength"]  # deliberate: see module doc
        checks.append(Check(f"{i} response body", want, s["response_body_len"]))
    return checks


@pytest.mark.parametrize("name", HAR_CASES)
def test_har_matches_mitmproxy_flows(corpus: Path, name: str) -> None:
    bad = [c for c in har_checks(corpus, name) if not c.ok]
    assert not bad, bad


def test_har_notes_what_was_lossy(corpus: Path) -> None:
    exs, opts = _read(corpus / "mitmproxy" / "har_files" / "chrome.har")
    assert [e.meta.get("source_version") for e in exs] == ["HTTP/2", None, "HTTP/3"]
    assert all(e.request.version == "HTTP/1.1" for e in exs)
    assert not any(b":authority" in e.request.raw for e in exs)
    assert exs[0].request.host == "mitmproxy.org"
    ff, opts = _read(corpus / "mitmproxy" / "har_files" / "firefox.har")
    omitted = [e for e in ff if e.meta.get("har.body") == "omitted"]
    assert len(omitted) == 5 and all(Flag.RESPONSE_TRUNCATED in e.flags for e in omitted)
    assert opts.counters.notes["har: response bodies not recorded in the HAR"] == 5


# ---- .mitm vs the HAR mitmproxy exported from it --------------------------------------------


def mitm_checks(corpus: Path, name: str) -> list[Check]:
    pytest.importorskip("mitmproxy")
    base = corpus / "mitmproxy" / "flows" / name
    entries = json.loads(base.with_suffix(".har").read_text(encoding="utf-8"))["log"]["entries"]
    from_mitm, _ = _read(base.with_suffix(".mitm"))
    from_har, _ = _read(base.with_suffix(".har"))
    checks = [
        Check("count", len(entries), len(from_mitm)),
        Check("count (har)", len(entries), len(from_har)),
    ]
    for i, (e, m, h) in enumerate(zip(entries, from_mitm, from_har, strict=False)):
        status = e["response"]["status"] or None
        checks.append(Check(f"{i} method", e["request"]["method"], m.request.method))
        checks.append(Check(f"{i} url", e["request"]["url"], _url(m)))
        checks.append(Check(f"{i} status", status, m.summary()["status"]))
        checks.append(Check(f"{i} har reader agrees", h.summary()["status"], m.summary()["status"]))
        checks.append(Check(f"{i} same url via har", _url(h), _url(m)))
        if status is not None:
            size = e["response"]["content"]["size"]
            checks.append(Check(f"{i} response body", size, m.summary()["response_body_len"]))
            checks.append(Check(f"{i} har body", size, h.summary()["response_body_len"]))
        else:
            checks.append(Check(f"{i} no response flagged", True, Flag.NO_RESPONSE in m.flags))
        post = e["request"].get("postData")
        if post:
            checks.append(
                Check(
                    f"{i} request body", len(post["text"].encode()), m.summary()["request_body_len"]
                )
            )
    return checks


@pytest.mark.parametrize("name", MITM_CASES)
def test_mitm_matches_its_har_export(corpus: Path, name: str) -> None:
    bad = [c for c in mitm_checks(corpus, name) if not c.ok]
    assert not bad, bad


# ---- the real GoReplay recording ------------------------------------------------------------


def gor_checks(corpus: Path) -> list[Check]:
    path = corpus / "ecommerce-workshop" / "requests_0.gor"
    data = path.read_bytes()
    records = list(read_records(path, strict=True))
    exs, opts = _read(path)
    methods = Counter(e.request.method for e in exs)
    ts = [e.ts_ns for e in exs]
    post = [e for e in exs if e.request.target == "/api/v2/storefront/cart/add_item"]
    return [
        Check("payloads", 101, len(records)),
        Check("all type 1", {1}, {r.type for r in records}),
        Check("old 3-field headers", {None}, {r.latency_ns for r in records}),
        Check("exchanges", 101, len(exs)),
        Check("unique ids", 101, len({e.id for e in exs})),
        Check("methods", {"GET": 99, "POST": 2}, dict(methods)),
        Check("timestamps sorted", sorted(ts), ts),
        Check("first ts", 1568139746437296000, ts[0]),
        Check("last ts", 1568140265001506000, ts[-1]),
        Check("span 518.6 s", 518.6, round((ts[-1] - ts[0]) / 1e9, 1)),
        Check("ends with separator", True, data.endswith(SEPARATOR)),
        Check("separators", 101, data.count(SEPARATOR)),
        Check(
            "add_item POST body",
            [("POST", 45)],
            [(e.request.method, len(e.request.body())) for e in post[:1]],
        ),
        Check("nothing dropped", {}, dict(opts.counters.dropped)),
    ]


def test_goreplay_recording_reads_completely(corpus: Path) -> None:
    bad = [c for c in gor_checks(corpus) if not c.ok]
    assert not bad, bad


def test_goreplay_recording_survives_our_writer(corpus: Path, tmp_path: Path) -> None:
    from replaygate.formats import open_writer

    src = corpus / "ecommerce-workshop" / "requests_0.gor"
    out = tmp_path / "copy.gor"
    w = open_writer(out)
    for ex in open_reader(src):
        w.write(ex)
    w.close()
    a = [(r.id, r.ts_ns, r.payload) for r in read_records(src)]
    b = [(r.id, r.ts_ns, r.payload) for r in read_records(out)]
    assert a == b
    again = tmp_path / "again.gor"
    w = open_writer(again)
    for ex in open_reader(out):
        w.write(ex)
    w.close()
    assert again.read_bytes() == out.read_bytes()  # ours round-trips byte for byte


# ---- Filebeat's nginx logs ------------------------------------------------------------------

ACCESS_LOG = [
    ("/", 200),
    ("/favicon.ico", 404),
    ("/adsasd", 404),
    ("/", 200),
    ("/favicon.ico", 404),
    ("/test", 404),
    ("/test", 404),
    ("/test1", 404),
    ("/test1", 404),
    ("/", 304),
    ("/", 304),
    ("/taga", 404),
    ("/A%20Beka%20G1%20Howe/029_AND_30/15%20reading%20elephants.mp4", 206),
]
TEST_LOG = [
    ("/ocelot", 200),
    ("/stringpatch", 404),
    ("/ocelot", 200),
    ("/ocelot", 200),
    ("/assets/xxxx?q=100", 200),
    ("/test.html", 404),
]


def log_checks(corpus: Path, name: str) -> list[Check]:
    exs, opts = _read(corpus / "beats" / "nginx" / name)
    want = ACCESS_LOG if name == "access.log" else TEST_LOG
    got = [(e.request.target, int(e.meta["status"])) for e in exs]
    checks = [
        Check("requests", want, got),
        Check("all GET", {"GET"}, {e.request.method for e in exs}),
    ]
    if name == "access.log":
        last = exs[-1]
        checks.append(Check("vhost -> Host", "lessons.example.com", last.request.host))
        checks.append(Check("206 bytes", "7648063", last.meta["bytes"]))
        checks.append(Check("nothing dropped", {}, dict(opts.counters.dropped)))
    else:  # the line with an empty request "" -> 400: nothing to replay, counted and noted
        checks.append(
            Check(
                "empty request counted", {"accesslog_empty_request": 1}, dict(opts.counters.dropped)
            )
        )
        checks.append(
            Check("line noted", True, any(":7: empty request" in n for n in opts.counters.notes))
        )
    return checks


@pytest.mark.parametrize("name", ["access.log", "test.log"])
def test_nginx_logs_give_expected_requests(corpus: Path, name: str) -> None:
    bad = [c for c in log_checks(corpus, name) if not c.ok]
    assert not bad, bad


def _table(corpus: Path) -> list[tuple[str, int, int]]:
    rows: list[tuple[str, list[Check]]] = []
    rows += [(f"mitmproxy/har_files/{n}.har", har_checks(corpus, n)) for n in HAR_CASES]
    rows += [(f"mitmproxy/flows/{n}.mitm", mitm_checks(corpus, n)) for n in MITM_CASES]
    rows.append(("ecommerce-workshop/requests_0.gor", gor_checks(corpus)))
    rows += [(f"beats/nginx/{n}", log_checks(corpus, n)) for n in ("access.log", "test.log")]
    return [(name, sum(c.ok for c in cs), len(cs)) for name, cs in rows]


if __name__ == "__main__":  # pragma: no cover - prints the docs table
    root = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    )
    table = _table(root)
    print("| file | checks passed |\n|---|---|")
    for name, ok, total in table:
        print(f"| {name} | {ok}/{total} |")
    files_ok = sum(ok == total for _, ok, total in table)
    print(f"\n{files_ok}/{len(table)} files pass every check.")
