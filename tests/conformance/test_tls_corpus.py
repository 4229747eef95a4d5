"""Conformance against tshark on real public captures of HTTPS and HTTP/2
(``../shared/corpus/tls``: Wireshark's and scapy's test captures, with NSS key logs).

For every capture folder with an ``expected.jsonl`` (tshark 4.0.17's answers), the HTTP/1
requests replaygate extracts, decrypting with the folder's ``keylog.txt`` (``ws-tls12-dsb``
with only the key log embedded in the pcapng), must equal tshark's on method, target,
status, request and response body lengths (after de-chunking, before content decoding, as
tshark counts them), and the TLS version and cipher suite of the connection. Deliberate
differences, each justified in docs/conformance.md, are applied by :func:`_expected`:

* HTTP/2 (h2 in TLS, or cleartext h2c, the gRPC captures included) is compared like HTTP/1:
  tshark's ``:path`` is our target, its DATA payload lengths our bodies; streams tshark sees
  unanswered are ours flagged ``no_response``.
* tshark 4.0 does not complete HTTP/1.0 responses delimited by the connection's close
  (status null): we return the response, flagged ``close_delimited``.
* ``ws-dmgr``: Firefox split the first request 1/n-1 over two TLS 1.0 records (the BEAST
  countermeasure); tshark shows that request's response (frame 23) but not the request.
  We report it (``EXTRA``).

``python -m tests.conformance.test_tls_corpus`` prints the table of docs/conformance.md.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from replaygate.formats import ReadOptions
from replaygate.model import Exchange, Flag
from replaygate.pipeline import Counters
from replaygate.protocol.tls import version_name

pytestmark = pytest.mark.conformance

FOLDERS = (
    "scapy-http-chunked",
    "scapy-http-content-length",
    "scapy-http-gzip",
    "scapy-http-head",
    "scapy-tls12-httpbin",
    "ws-dhe1",
    "ws-dmgr",
    "ws-grpc-person-search-protobuf",
    "ws-grpc-stream-reassembly",
    "ws-http-brotli",
    "ws-http-ooo",
    "ws-http2-brotli",
    "ws-http2-data-reassembly",
    "ws-packet-h2-14-headers",
    "ws-rsa-p-lt-q",
    "ws-tls-renegotiation",
    "ws-tls12-aes128ccm",
    "ws-tls12-aes256gcm",
    "ws-tls12-chacha20poly1305",
    "ws-tls12-dsb",
    "ws-tls13-20-chacha20poly1305",
)
# Requests tshark misses and we report (see the module docstring).
EXTRA: dict[str, list[tuple[Any, ...]]] = {
    "ws-dmgr": [("GET", "/ibm/console/unsecureLogon.jsp", 200, 0, 3953)],
}
# The capture carries its own key log (pcapng Decryption Secrets Block): no --tls-keylog.
DSB_ONLY = frozenset({"ws-tls12-dsb"})

Row = tuple[Any, ...]  # method, target, status, request body, response body, version, suite


def _capture(folder: Path) -> Path:
    return next(p for p in sorted(folder.iterdir()) if ".pcap" in p.name)


def read_folder(folder: Path) -> tuple[list[Exchange], Counters]:
    from replaygate.formats.pcap import read

    counters = Counters()
    extra: dict[str, Any] = {}
    keylog = folder / "keylog.txt"
    if keylog.exists() and folder.name not in DSB_ONLY:
        extra["tls_keylog"] = str(keylog)
    exchanges = list(read(str(_capture(folder)), ReadOptions(counters=counters, extra=extra)))
    exchanges.sort(key=lambda e: e.ts_ns)
    return exchanges, counters


def _tshark_rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "expected.jsonl").read_text().splitlines() if x]


def _suite(text: str | None) -> str | None:
    return text.split(" (0x")[0] if text else None


def _version(text: str | None) -> str | None:
    if not text or "(0x" not in text:
        return None
    return version_name(int(text.rsplit("(0x", 1)[1].rstrip(")"), 16))


def _expected(folder: Path) -> tuple[list[Row], int]:
    """tshark's requests as rows, and how many of them are HTTP/2."""
    rows: list[Row] = []
    h2 = 0
    for r in _tshark_rows(folder):
        if r["http_version"] == "HTTP/2":
            h2 += 1
        rows.append((r["method"], r["uri"], r["status"], r["req_body_len"], r["resp_body_len"],
                     _version(r.get("tls_version")), _suite(r.get("tls_cipher_suite"))))  # fmt: skip
    for extra in EXTRA.get(folder.name, []):
        rows.append((*extra, rows[0][5], rows[0][6]))
    return rows, h2


def _ours(exchanges: list[Exchange], expected: list[Row]) -> list[Row]:
    """Our requests as rows. Where tshark has no answer (a close-delimited response it did
    not complete, a body it did not reassemble) the field is compared as tshark's None
    when our exchange says why (flagged close-delimited / truncated)."""
    out: list[Row] = []
    requests = [e for e in exchanges if Flag.ORPHAN_RESPONSE not in e.flags]
    for i, e in enumerate(requests):
        want = expected[i] if i < len(expected) else None
        resp = e.response
        status = resp.status if resp is not None else None
        resp_len = len(resp.body()) if resp is not None else None
        if want is not None and want[2] is None and Flag.CLOSE_DELIMITED in e.flags:
            status = None  # tshark 4.0 leaves close-delimited responses incomplete
        if want is not None and want[4] is None:
            resp_len = None
        out.append((e.request.method, e.request.target, status, len(e.request.body()), resp_len,
                    e.meta.get("tls.version"), e.meta.get("tls.cipher")))  # fmt: skip
    return out


def _order(rows: list[Row], folder: str) -> list[Row]:
    extra = EXTRA.get(folder)
    if not extra:
        return rows
    # our extra request came first on the wire
    head = [r for r in rows if r[:5] in {tuple(x) for x in extra}]
    return head + [r for r in rows if r not in head]


def compare(corpus: Path, name: str) -> tuple[list[Row], list[Row], int, Counters]:
    folder = corpus / "tls" / name
    expected, h2 = _expected(folder)
    expected = _order(expected, name)
    exchanges, counters = read_folder(folder)
    return expected, _ours(exchanges, expected), h2, counters


@pytest.mark.parametrize("name", FOLDERS)
def test_requests_equal_tshark(corpus: Path, name: str) -> None:
    if not (corpus / "tls" / name).is_dir():
        pytest.skip(f"{corpus / 'tls' / name} not in this corpus")
    expected, ours, h2, counters = compare(corpus, name)
    assert ours == expected
    if h2:  # every HTTP/2 connection went through the HTTP/2 parser
        assert counters.notes["pcap.http2_flows"] >= 1, dict(counters.notes)
        assert not counters.notes["pcap.non_http_flows"], dict(counters.notes)
    tls_failures = {k: v for k, v in counters.dropped.items() if k.startswith("tls.")}
    assert not tls_failures, tls_failures


def test_folder_list_is_the_corpus(corpus: Path) -> None:
    base = corpus / "tls"
    if not base.is_dir():
        pytest.skip(f"{base} not in this corpus")
    have = {p.name for p in base.iterdir() if (p / "expected.jsonl").exists()}
    assert have == set(FOLDERS)


def _table(corpus: Path) -> str:
    lines = [
        "| capture | tshark (HTTP/1 + HTTP/2 requests) | ours | TLS notes | result |",
        "|---|---|---|---|---|",
    ]
    passed = 0
    for name in FOLDERS:
        expected, ours, h2, counters = compare(corpus, name)
        ok = ours == expected
        passed += ok
        n1 = len(expected) - len(EXTRA.get(name, [])) - h2
        want = f"{n1} + {h2} h2"
        got = f"{len(ours)}" + (f" (+{len(EXTRA[name])} tshark misses)" if name in EXTRA else "")
        notes = ", ".join(
            f"{k.removeprefix('pcap.tls_')}={v}"
            for k, v in sorted(counters.notes.items())
            if k in ("pcap.tls_sessions", "pcap.tls_decrypted", "pcap.tls_resumed",
                     "pcap.tls_renegotiations")
        )  # fmt: skip
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(counters.dropped.items()))
        if h2 and not dropped:
            dropped = f"h2 flows={counters.notes['pcap.http2_flows']}"
        cell = "; ".join(x for x in (notes, dropped) if x) or "-"
        lines.append(f"| `{name}` | {want} | {got} | {cell} | {'pass' if ok else '**FAIL**'} |")
    rate = f"**Pass rate: {passed}/{len(FOLDERS)} folders.**"
    return "\n".join([rate, "", *lines, ""])


if __name__ == "__main__":
    root = Path(
        os.environ.get(
            "REPLAYGATE_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"
        )
    )
    sys.stdout.write(_table(root) + "\n")
