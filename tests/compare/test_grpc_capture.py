"""gRPC end to end from real traffic: grpcio servers (a version, the same version again, one
with a changed field, one with a changed status) and a grpcio client on 127.0.0.1, captured
with tcpdump, read back by the pcap reader (h2c), and compared. Each version must differ on
exactly its change. Root-only (tcpdump); skipped with the reason otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest

from replaygate.compare.diff import ResponseDiffer
from replaygate.formats import ReadOptions
from replaygate.formats.pcap import read
from replaygate.model import Exchange
from replaygate.pipeline import Counters

from ..protocol.test_tls_nginx import Tcpdump, _need
from .test_grpc import field

grpc = pytest.importorskip("grpc")
pytestmark = pytest.mark.root


def _cart(total: int) -> bytes:
    items = field(1, "apple") + field(2, 3)
    return field(1, "cart-7") + field(2, total) + field(3, items) + field(3, field(1, "pear"))


def _handler(total: int, status: Any) -> Any:
    def get(request: bytes, context: Any) -> bytes:
        if status is not None:
            context.abort(status, "no such cart")
        return _cart(total)

    def listing(request: bytes, context: Any) -> Iterator[bytes]:
        for i in range(3):
            yield field(1, i) + field(2, f"line {i}")

    return grpc.method_handlers_generic_handler(
        "shop.Cart",
        {
            "Get": grpc.unary_unary_rpc_method_handler(get),
            "List": grpc.unary_stream_rpc_method_handler(listing),
        },
    )


class Servers:
    def __init__(self) -> None:
        self.servers: list[Any] = []
        self.ports: dict[str, int] = {}

    def add(self, name: str, total: int, status: Any = None) -> None:
        s = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        s.add_generic_rpc_handlers((_handler(total, status),))
        self.ports[name] = s.add_insecure_port("127.0.0.1:0")
        s.start()
        self.servers.append(s)

    def stop(self) -> None:
        for s in self.servers:
            s.stop(None)


@pytest.fixture
def servers() -> Iterator[Servers]:
    sv = Servers()
    sv.add("v1", 42)
    sv.add("v1-again", 42)
    sv.add("changed-field", 43)
    sv.add("changed-status", 42, grpc.StatusCode.NOT_FOUND)
    yield sv
    sv.stop()


def _calls(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        get: Callable[..., Any] = ch.unary_unary("/shop.Cart/Get")
        for kw in ({}, {"compression": grpc.Compression.Gzip}):
            try:
                get(field(1, "cart-7"), timeout=30, **kw)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND
        listing: Callable[..., Any] = ch.unary_stream("/shop.Cart/List")
        assert len(list(listing(b"", timeout=30))) == 3


def test_grpc_versions_differ_on_exactly_their_change(
    tmp_path: Path, servers: Servers, needs_root: None
) -> None:
    _need("tcpdump")
    from replaygate.testing.servers import NginxServer

    pcap = tmp_path / "grpc.pcap"
    with NginxServer() as marker:  # a plain HTTP port whose requests show the capture is live
        dump = Tcpdump(pcap, (*servers.ports.values(), marker.port))
        try:
            dump.wait_for(marker.port, "/probe-start")
            for port in servers.ports.values():
                _calls(port)
            dump.wait_for(marker.port, "/probe-end")
        finally:
            dump.stop()
    counters = Counters()
    by_port: dict[int, list[Exchange]] = {}
    for ex in read(str(pcap), ReadOptions(counters=counters)):
        if ex.request.version == "HTTP/2" and ex.conn is not None:
            by_port.setdefault(ex.conn.dport, []).append(ex)
    runs = {name: sorted(by_port[p], key=lambda e: e.ts_ns) for name, p in servers.ports.items()}
    assert [e.request.target for e in runs["v1"]] == [
        "/shop.Cart/Get", "/shop.Cart/Get", "/shop.Cart/List"
    ]  # fmt: skip
    assert all(e.complete for r in runs.values() for e in r)
    assert runs["v1"][1].request.header("grpc-encoding") == "gzip"  # a compressed request

    differ = ResponseDiffer()

    def diffs(name: str) -> list[tuple[str, str, Any, Any]]:
        out = []
        for a, b in zip(runs["v1"], runs[name], strict=True):
            out += [
                (d.field, d.path, d.original, d.replayed)
                for d in differ.diff(a.response, b.response)
            ]
        return out

    assert diffs("v1-again") == []
    assert diffs("changed-field") == [("grpc:$.2", "grpc:$.2", 42, 43)] * 2
    status = diffs("changed-status")
    assert [d for d in status if d[0] == "status"] == [("status", "grpc-status", 0, 5)] * 2
    assert not [k for k in counters.dropped if k.startswith("http2.")], dict(counters.dropped)
