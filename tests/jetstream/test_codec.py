from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.errors import FormatError
from replaygate.jetstream.codec import decode_exchange, encode_exchange, partition_of
from replaygate.model import ConnectionId
from replaygate.testing import make_exchange


def test_roundtrip_keeps_bytes_and_metadata() -> None:
    ex = make_exchange(
        "POST",
        "/a?b=1",
        request_body=b'{"x": 1}',
        response_body=b"ok",
        replayed_status=500,
        replayed_body=b"boom",
        conn=ConnectionId("10.0.0.1", 1234, "10.0.0.2", 80),
        session="s1",
    )
    ex.meta["role"] = "candidate"
    payload, headers = encode_exchange(ex)
    back = decode_exchange(payload)
    assert back.id == ex.id
    assert back.request.raw == ex.request.raw
    assert back.response is not None and ex.response is not None
    assert back.response.raw == ex.response.raw
    assert back.replayed is not None and back.replayed.status == 500
    assert back.session == "s1" and back.conn == ex.conn
    assert back.meta["role"] == "candidate"
    assert headers["Nats-Msg-Id"].startswith(ex.id + "/candidate")
    assert headers["Rg-Session"] == "s1"


def test_partition_is_by_session() -> None:
    a = make_exchange(session="alice")
    b = make_exchange(session="alice")
    assert partition_of(a, 16) == partition_of(b, 16)
    parts = {partition_of(make_exchange(session=f"u{i}"), 16) for i in range(200)}
    assert len(parts) == 16


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes_raises_only_format_error(data: bytes) -> None:
    try:
        decode_exchange(data)
    except FormatError:
        pass


def test_decode_rejects_two_requests() -> None:
    p1, _ = encode_exchange(make_exchange())
    p2, _ = encode_exchange(make_exchange())
    with pytest.raises(FormatError):
        decode_exchange(p1 + p2)
