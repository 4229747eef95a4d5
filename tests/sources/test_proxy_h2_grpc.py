"""gRPC end to end through the recording proxy, on 127.0.0.1: a grpcio client calls a
grpcio server (v1) through ``ProxyServer(upstream_http2=True)``; the recording is replayed
with ``replaygate replay --http2`` to v1 and to v2 (one response field changed in ``Get``,
another gRPC status in ``Check``) and judged by ``replaygate compare``: v1 passes, v2 fails
on exactly its two changes. Messages are hand-encoded protobuf (no protoc needed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from replaygate.cli import cli
from replaygate.formats import open_reader
from replaygate.formats.gor import GorWriter
from replaygate.protocol import h2msg
from replaygate.sources.proxy import ProxyConfig, ProxyServer

from ..compare.test_grpc import field

grpc = pytest.importorskip("grpc")


def _cart(total: int) -> bytes:
    return field(1, "cart-7") + field(2, total) + field(3, field(1, "apple") + field(2, 3))


def _service(total: int, check_status: Any) -> Any:
    def get(request: bytes, context: Any) -> bytes:
        return _cart(total)

    def check(request: bytes, context: Any) -> bytes:
        if check_status is not None:
            context.abort(check_status, "out of stock")
        return field(1, "in stock")

    def listing(request: bytes, context: Any) -> Iterator[bytes]:
        for i in range(3):
            yield field(1, i) + field(2, f"line {i}" * 2000)  # 3 messages, ~14 kB each

    return grpc.method_handlers_generic_handler(
        "shop.Cart",
        {
            "Get": grpc.unary_unary_rpc_method_handler(get),
            "Check": grpc.unary_unary_rpc_method_handler(check),
            "List": grpc.unary_stream_rpc_method_handler(listing),
        },
    )


@pytest.fixture(scope="module")
def versions() -> Iterator[dict[str, int]]:
    ports: dict[str, int] = {}
    servers = []
    for name, total, status in (("v1", 42, None), ("v2", 43, grpc.StatusCode.NOT_FOUND)):
        s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        s.add_generic_rpc_handlers((_service(total, status),))
        ports[name] = s.add_insecure_port("127.0.0.1:0")
        s.start()
        servers.append(s)
    yield ports
    for s in servers:
        s.stop(None)


def _calls(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        get: Callable[..., Any] = ch.unary_unary("/shop.Cart/Get")
        assert get(field(1, "cart-7"), timeout=30) == _cart(42)
        assert get(field(1, "cart-7"), timeout=30, compression=grpc.Compression.Gzip) == _cart(42)
        check: Callable[..., Any] = ch.unary_unary("/shop.Cart/Check")
        assert check(field(1, "apple"), timeout=30) == field(1, "in stock")
        listing: Callable[..., Any] = ch.unary_stream("/shop.Cart/List")
        assert len(list(listing(b"", timeout=30))) == 3


def _run(*args: str) -> int:
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r.exit_code


def test_grpc_recorded_replayed_and_judged(versions: dict[str, int], tmp_path: Path) -> None:
    rec = tmp_path / "grpc.gor"
    v1 = f"http://127.0.0.1:{versions['v1']}"
    cfg = ProxyConfig(upstream=v1, listen="127.0.0.1:0", upstream_http2=True)
    with ProxyServer(cfg, GorWriter(rec)) as px:
        _calls(px.port)
    st = px.stats
    assert st["recorded"] == 4 and st["errors"] == 0 and st["h2_upstream_connections"] == 1
    recorded = sorted(open_reader(rec), key=lambda e: e.ts_ns)
    assert [e.request.target for e in recorded] == [
        "/shop.Cart/Get", "/shop.Cart/Get", "/shop.Cart/Check", "/shop.Cart/List"
    ]  # fmt: skip
    for e in recorded:
        assert e.complete and e.request.version == "HTTP/2" and e.response is not None
        assert ("grpc-status", "0") in (h2msg.trailers(e.response) or [])  # trailers kept
        assert e.request.header("content-type", "").startswith("application/grpc")
    assert recorded[1].request.header("grpc-encoding") == "gzip"

    verdicts: dict[str, tuple[int, dict[str, Any]]] = {}
    for name, port in versions.items():
        out, js = tmp_path / f"replayed-{name}.gor", tmp_path / f"{name}.json"
        code = _run("replay", str(rec), "--target", f"http://127.0.0.1:{port}", "--http2",
                    "--allow-unsafe-target", "-o", str(out), "--no-progress")  # fmt: skip
        assert code == 0
        replayed = list(open_reader(out))
        assert len(replayed) == 4 and all(e.replayed is not None for e in replayed)
        code = _run("compare", str(out), "-q", "--json", str(js))
        verdicts[name] = (code, json.loads(js.read_text()))
    code, report = verdicts["v1"]
    assert code == 0 and report["verdict"] == "pass" and report["totals"]["differing"] == 0
    code, report = verdicts["v2"]
    assert code == 1 and report["totals"]["compared"] == 4
    failing = {
        ep["endpoint"]: sorted(f["field"] for f in ep["fields"])
        for ep in report["endpoints"]
        if ep["verdict"] == "fail"
    }
    assert set(failing) == {"POST /shop.Cart/Get", "POST /shop.Cart/Check"}  # List passes
    assert failing["POST /shop.Cart/Get"] == ["grpc:$.2"]  # the changed field, 42 -> 43
    assert "status" in failing["POST /shop.Cart/Check"]  # OK -> NOT_FOUND
