"""gRPC replayed over HTTP/2 (``--http2``) to real grpcio servers on 127.0.0.1: a version,
the same version again, one whose ``Get`` answer changes one field, one whose ``Get`` returns
``NOT_FOUND``. Unary calls (plain and gzip-compressed) and a server-streaming call; the
replayed answers carry the ``grpc-status`` trailers, and the comparison finds exactly each
version's change.

Two recordings: calls written by hand as HTTP/2 exchanges (hand-encoded protobuf, no root
needed), and real grpcio client calls captured from ``lo`` with tcpdump (root only, skipped
with the reason otherwise)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replaygate.compare import CompareSink, GateConfig, judge
from replaygate.compare.diff import ResponseDiffer
from replaygate.model import Exchange
from replaygate.protocol import h2msg

from ..compare.test_grpc import field
from ..compare.test_grpc_capture import Servers, _calls
from ._h2replay import replay as replay_h2

grpc = pytest.importorskip("grpc")


@pytest.fixture
def servers() -> Iterator[Servers]:
    sv = Servers()
    sv.add("v1", 42)
    sv.add("v1-again", 42)
    sv.add("changed-field", 43)
    sv.add("changed-status", 42, grpc.StatusCode.NOT_FOUND)
    yield sv
    sv.stop()


def _frame(msg: bytes, compressed: bool = False) -> bytes:
    if compressed:
        msg = gzip.compress(msg)
    return bytes([compressed]) + len(msg).to_bytes(4, "big") + msg


def _call(path: str, body: bytes, i: int, gzip_: bool = False) -> Exchange:
    fields = [
        (":method", "POST"), (":scheme", "http"), (":authority", "shop.test"), (":path", path),
        ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "grpc-test"),
        *([("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")] if gzip_ else []),
    ]  # fmt: skip
    req, meta = h2msg.build_request(fields, body)
    ex = Exchange(id=f"{i:040x}", request=req)
    ex.meta.update(meta)
    return ex


def hand_recording() -> list[Exchange]:
    cart = field(1, "cart-7")
    return [
        _call("/shop.Cart/Get", _frame(cart), 0),
        _call("/shop.Cart/Get", _frame(cart, compressed=True), 1, gzip_=True),
        _call("/shop.Cart/List", _frame(b""), 2),
    ]


def replay(rec: list[Exchange], port: int, sink: Any = None) -> list[Exchange]:
    url = f"http://127.0.0.1:{port}"
    stats, out = replay_h2(rec, url, sink, concurrency=4, h2_streams=4)
    assert stats.errors == {}, stats.errors
    return out


def test_grpc_answers_come_back_with_their_trailers(servers: Servers) -> None:
    out = replay(hand_recording(), servers.ports["v1"])
    get, get_gz, listing = (e.replayed for e in out)
    assert get is not None and get_gz is not None and listing is not None
    assert [(k, v) for k, v in h2msg.trailers(get) or [] if k == "grpc-status"] == [
        ("grpc-status", "0")
    ]
    from replaygate.compare._grpc import grpc_status, messages

    assert grpc_status(get) == 0 and messages(get) == [
        field(1, "cart-7") + field(2, 42) + field(3, field(1, "apple") + field(2, 3))
        + field(3, field(1, "pear"))
    ]  # fmt: skip
    assert grpc_status(get_gz) == 0 and messages(get_gz) == messages(get)
    assert grpc_status(listing) == 0 and len(messages(listing) or []) == 3
    bad = replay(hand_recording()[:1], servers.ports["changed-status"])[0].replayed
    assert bad is not None and grpc_status(bad) == 5  # NOT_FOUND, a trailers-only answer


def _judged(rec: list[Exchange], port: int) -> dict[str, Any]:
    sink = CompareSink()
    replay(rec, port, sink=sink)
    summary: dict[str, Any] = judge(sink.comparator.result(), GateConfig()).summary()
    return summary


def _regressions(s: dict[str, Any]) -> set[tuple[str, str, int]]:
    return {
        (e["endpoint"], f["field"], f["count"])
        for e in s["endpoints"]
        for f in e["fields"]
        if f["status"] == "regression"
    }


def _recorded_from(rec: list[Exchange], port: int) -> list[Exchange]:
    """The recording with the answers ``port`` gave as its original responses."""
    out = []
    for e in replay(rec, port):
        r = e.copy()
        r.response, r.replayed, r.replay_latency_ns = e.replayed, None, None
        out.append(r)
    return out


def test_versions_judged_on_exactly_their_change(servers: Servers) -> None:
    rec = _recorded_from(hand_recording(), servers.ports["v1"])
    same = _judged(rec, servers.ports["v1-again"])
    assert same["verdict"] == "pass", same["reasons"]
    field_ = _judged(rec, servers.ports["changed-field"])
    assert field_["verdict"] == "fail"
    assert _regressions(field_) == {("POST /shop.Cart/Get", "grpc:$.2", 2)}
    status = _judged(rec, servers.ports["changed-status"])
    assert status["verdict"] == "fail"
    assert {(e, f) for e, f, _ in _regressions(status)} >= {("POST /shop.Cart/Get", "status")}
    assert all(e == "POST /shop.Cart/Get" for e, _, _ in _regressions(status))


@pytest.mark.root
def test_grpc_calls_captured_from_lo_replay_and_compare(
    tmp_path: Path, servers: Servers, needs_root: None
) -> None:
    from replaygate.formats import ReadOptions
    from replaygate.formats.pcap import read
    from replaygate.testing.servers import NginxServer

    from ..protocol.test_tls_nginx import Tcpdump, _need

    _need("tcpdump")
    pcap = tmp_path / "grpc.pcap"
    port = servers.ports["v1"]
    with NginxServer() as marker:
        dump = Tcpdump(pcap, (port, marker.port))
        try:
            dump.wait_for(marker.port, "/probe-start")
            _calls(port)
            dump.wait_for(marker.port, "/probe-end")
        finally:
            dump.stop()
    rec = sorted(
        (e for e in read(str(pcap), ReadOptions()) if e.request.version == "HTTP/2"),
        key=lambda e: e.ts_ns,
    )
    assert [e.request.target for e in rec] == [
        "/shop.Cart/Get", "/shop.Cart/Get", "/shop.Cart/List"
    ]  # fmt: skip
    differ = ResponseDiffer()

    def diffs(name: str) -> list[tuple[str, str]]:
        out = replay(rec, servers.ports[name])
        return [
            (d.field, d.path)
            for e in out
            for d in differ.diff(e.response, e.replayed)  # type: ignore[arg-type]
        ]

    assert diffs("v1-again") == []
    assert diffs("changed-field") == [("grpc:$.2", "grpc:$.2")] * 2
    assert [d for d in diffs("changed-status") if d[0] == "status"] == [
        ("status", "grpc-status")
    ] * 2


def test_client_and_bidi_streaming_calls(tmp_path: Path) -> None:
    """Several request messages in one recorded body (client streaming, bidirectional): all
    reach the server and every answer message comes back."""
    from concurrent import futures

    def total(requests: Iterator[bytes], context: Any) -> bytes:
        return field(1, sum(len(r) for r in requests))

    def echo(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for r in requests:
            yield field(2, r)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "shop.Stream",
                {
                    "Total": grpc.stream_unary_rpc_method_handler(total),
                    "Echo": grpc.stream_stream_rpc_method_handler(echo),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        parts = [field(1, "a" * n) for n in (1, 200, 70_000)]  # one message over 64 KiB
        body = b"".join(_frame(p) for p in parts)
        out = replay(
            [_call("/shop.Stream/Total", body, 0), _call("/shop.Stream/Echo", body, 1)], port
        )
    finally:
        server.stop(None)
    from replaygate.compare._grpc import grpc_status, messages

    tot, echoed = (e.replayed for e in out)
    assert tot is not None and echoed is not None
    assert grpc_status(tot) == 0 and messages(tot) == [field(1, sum(len(p) for p in parts))]
    assert grpc_status(echoed) == 0 and messages(echoed) == [field(2, p) for p in parts]
