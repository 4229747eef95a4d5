"""The received-frame log line of ``h2`` is built only when a logger writes it
(``replay/_h2lazy``): no frame repr on a replay's hot path, the same text when traced."""

from __future__ import annotations

import io
import types
from typing import Any

import h2.config
import h2.connection
import hyperframe.frame
import pytest

from replaygate.replay import _h2conn  # noqa: F401  (installs the deferred repr)
from replaygate.replay._h2lazy import DeferredRepr, _repr_uses, defer_frame_reprs


def exchange(client_logger: Any = None) -> list[Any]:
    """One request and its response between two in-memory h2 connections; the client's
    events."""
    kw = {} if client_logger is None else {"logger": client_logger}
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, **kw))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    sid = client.get_next_available_stream_id()
    client.send_headers(
        sid, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "a")],
        end_stream=True,
    )  # fmt: skip
    server.receive_data(client.data_to_send())
    server.send_headers(sid, [(":status", "200")])
    server.send_data(sid, b"ok", end_stream=True)
    return client.receive_data(server.data_to_send())


def test_installed_for_the_replay_client() -> None:
    assert vars(h2.connection).get("repr") is DeferredRepr
    assert defer_frame_reprs()  # a second call changes nothing


def test_no_frame_repr_is_built_when_nothing_logs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = hyperframe.frame.Frame.__repr__

    def counting(self: hyperframe.frame.Frame) -> str:
        calls.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(hyperframe.frame.Frame, "__repr__", counting)
    events = exchange()
    assert [type(e).__name__ for e in events][-2:] == ["DataReceived", "StreamEnded"]
    assert calls == []


def test_a_trace_logger_writes_the_same_text() -> None:
    out = io.StringIO()
    exchange(h2.config.OutputLogger(out, trace_level=True))
    lines = [ln for ln in out.getvalue().splitlines() if "Received frame: " in ln]
    assert any(ln.endswith("Received frame: DataFrame(stream_id=1, flags=['END_STREAM']): "
                           "<hex:6f6b>") for ln in lines), lines  # fmt: skip
    assert any("Received frame: HeadersFrame(stream_id=1, flags=['END_HEADERS'])" in ln
               for ln in lines)  # fmt: skip
    frame = hyperframe.frame.DataFrame(3, b"x")
    assert str(DeferredRepr(frame)) == repr(frame) == f"{DeferredRepr(frame)}"


def test_only_a_module_whose_one_repr_is_that_log_call_qualifies() -> None:
    mod = types.ModuleType("fake_h2")
    exec(
        "class C:\n"
        "    def f(self, x):\n"
        "        return repr(x)\n"
        "    def g(self, x):\n"
        "        return [repr(y) for y in x]\n"
        "def h(x):\n"
        "    return repr(x) + repr(x)\n",
        vars(mod),
    )
    uses = [u.split(".<locals>")[0] for u in _repr_uses(mod)]  # 3.12 inlines comprehensions
    assert sorted(uses) == ["C.f", "C.g", "h", "h"]
