"""gRPC in compare: framing, compression, schema-less protobuf trees, status from trailers."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replaygate.compare._grpc import decode_message, grpc_status, messages, tree
from replaygate.compare.diff import ResponseDiffer
from replaygate.model import Response
from replaygate.protocol import h2msg


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(num << 3 | 2) + varint(len(data)) + data


def frame(msg: bytes, compressed: bool = False) -> bytes:
    if compressed:
        msg = gzip.compress(msg)
    return bytes([compressed]) + len(msg).to_bytes(4, "big") + msg


def grpc_response(
    *msgs: bytes, status: int = 0, compressed: bool = False, trailers_only: bool = False
) -> Response:
    fields = [(":status", "200"), ("content-type", "application/grpc")]
    if compressed:
        fields.append(("grpc-encoding", "gzip"))
    if trailers_only:
        return h2msg.build_response([*fields, ("grpc-status", str(status))])
    body = b"".join(frame(m, compressed) for m in msgs)
    return h2msg.build_response(fields, body, [("grpc-status", str(status))])


PERSON = field(1, "Jason") + field(2, 1001) + field(4, field(1, "8756") + field(2, 1))


def test_schema_less_tree() -> None:
    assert decode_message(PERSON) == {"1": "Jason", "2": 1001, "4": {"1": "8756", "2": 1}}
    rep = field(3, "a") + field(3, "b") + field(3, "c")
    assert decode_message(rep) == {"3": ["a", "b", "c"]}
    assert decode_message(field(5, b"\xff\xfe")) == {"5": {"bytes": "fffe"}}
    fixed = varint(6 << 3 | 1) + (7).to_bytes(8, "little") + varint(7 << 3 | 5) + b"\1\0\0\0"
    assert decode_message(fixed) == {"6": 7, "7": 1}
    for bad in (b"\x08", b"\x0a\x05ab", b"\x00\x01", b"\x0b"):
        with pytest.raises(ValueError):
            decode_message(bad)


def test_status_from_trailers_or_trailers_only_headers() -> None:
    assert grpc_status(grpc_response(PERSON)) == 0
    assert grpc_status(grpc_response(status=5, trailers_only=True)) == 5
    assert grpc_status(h2msg.build_response([(":status", "200")])) is None


def test_messages_framing_and_gzip() -> None:
    r = grpc_response(PERSON, field(1, "x"), compressed=True)
    assert messages(r) == [PERSON, field(1, "x")]
    assert tree(r) == [decode_message(PERSON), {"1": "x"}]
    broken = h2msg.build_response([(":status", "200"), ("content-type", "application/grpc")],
                                  b"\0\0\0\0\x09abc")  # fmt: skip
    assert messages(broken) is None


def _diffs(a: Response, b: Response) -> list[tuple[str, str, str, Any, Any]]:
    return [(d.field, d.kind, d.path, d.original, d.replayed) for d in ResponseDiffer().diff(a, b)]


def test_same_answer_no_difference_even_compressed_differently() -> None:
    assert _diffs(grpc_response(PERSON), grpc_response(PERSON)) == []
    assert _diffs(grpc_response(PERSON), grpc_response(PERSON, compressed=True)) == [
        ("header:grpc-encoding", "extra", "header:grpc-encoding", None, "gzip")
    ]


def test_changed_field_is_a_field_number_path() -> None:
    changed = field(1, "Jason") + field(2, 1001) + field(4, field(1, "8756") + field(2, 2))
    assert _diffs(grpc_response(PERSON), grpc_response(changed)) == [
        ("grpc:$.4.2", "changed", "grpc:$.4.2", 1, 2)
    ]
    extra = PERSON + field(9, "new")
    assert _diffs(grpc_response(PERSON), grpc_response(extra)) == [
        ("grpc:$.9", "extra", "grpc:$.9", None, "new")
    ]


def test_streaming_answers_are_lists_of_messages() -> None:
    a = grpc_response(field(1, 1), field(1, 2), field(1, 3))
    b = grpc_response(field(1, 1), field(1, 5))
    assert _diffs(a, b) == [
        ("grpc:$", "length", "grpc:$", 3, 2),
        ("grpc:$[*].1", "changed", "grpc:$[1].1", 2, 5),
    ]


def test_grpc_status_is_the_status() -> None:
    ok = grpc_response(PERSON)
    not_found = grpc_response(status=5, trailers_only=True)
    d = _diffs(ok, not_found)
    assert d[0] == ("status", "changed", "grpc-status", 0, 5)
    assert ok.status == not_found.status == 200


def test_not_grpc_framed_falls_back_to_bytes() -> None:
    a = h2msg.build_response([(":status", "200"), ("content-type", "application/grpc")], b"xx")
    b = h2msg.build_response([(":status", "200"), ("content-type", "application/grpc")], b"yy")
    assert [d.field for d in ResponseDiffer().diff(a, b)] == ["body:binary"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_decode_or_raise_value_error(data: bytes) -> None:
    try:
        decode_message(data)
    except ValueError:
        pass


_scalar = st.one_of(st.integers(0, 2**63), st.text(alphabet="abcXYZ 09", min_size=1, max_size=8))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(1, 40), _scalar, max_size=6))
def test_flat_messages_round_trip(values: dict[int, int | str]) -> None:
    data = b"".join(field(k, v) for k, v in values.items())
    assert decode_message(data) == {str(k): v for k, v in values.items()}


def _descriptor_set() -> bytes:
    """What ``protoc -o`` writes for::

    package shop;
    message Item { string name = 1; int32 qty = 2; }
    message Cart { string id = 1; int64 total = 2; repeated Item items = 3; }
    service Carts { rpc Get (Cart) returns (Cart); }
    """
    item = (
        field(1, "Item")
        + field(2, field(1, "name") + field(3, 1) + field(5, 9))
        + field(2, field(1, "qty") + field(3, 2) + field(5, 5))
    )
    cart = (
        field(1, "Cart")
        + field(2, field(1, "id") + field(3, 1) + field(5, 9))
        + field(2, field(1, "total") + field(3, 2) + field(5, 3))
        + field(
            2, field(1, "items") + field(3, 3) + field(4, 3) + field(5, 11) + field(6, ".shop.Item")
        )
    )
    svc = field(1, "Carts") + field(
        2, field(1, "Get") + field(2, ".shop.Cart") + field(3, ".shop.Cart")
    )
    fd = field(1, "shop.proto") + field(2, "shop") + field(4, item) + field(4, cart) + field(6, svc)
    return field(1, fd)


CART_A = (
    field(1, "c7")
    + field(2, 42)
    + field(3, field(1, "apple") + field(2, 3))
    + field(3, field(1, "pear") + field(2, 1))
)
CART_B = (
    field(1, "c7")
    + field(2, 42)
    + field(3, field(1, "apple") + field(2, 4))
    + field(3, field(1, "pear") + field(2, 1))
)


def test_descriptor_set_names_fields(tmp_path: Any) -> None:
    from replaygate.compare import CompareConfig
    from replaygate.compare._grpc import ProtoNames

    names = ProtoNames.parse(_descriptor_set())
    assert names.outputs == {"/shop.Carts/Get": ".shop.Cart"}
    assert names.name(decode_message(CART_A), "/shop.Carts/Get") == {
        "id": "c7",
        "total": 42,
        "items": [{"name": "apple", "qty": 3}, {"name": "pear", "qty": 1}],
    }
    p = tmp_path / "shop.pb"
    p.write_bytes(_descriptor_set())
    differ = ResponseDiffer(CompareConfig(proto_descriptor_set=str(p)))
    d = differ.diff(grpc_response(CART_A), grpc_response(CART_B), grpc_method="/shop.Carts/Get")
    assert [(x.field, x.path, x.original, x.replayed) for x in d] == [
        ("grpc:$.items[*].qty", "grpc:$.items[0].qty", 3, 4)
    ]
    # another method, or no method: field numbers
    d = differ.diff(grpc_response(CART_A), grpc_response(CART_B))
    assert [x.field for x in d] == ["grpc:$.3[*].2"]


def test_bad_descriptor_set_is_one_config_error(tmp_path: Any) -> None:
    from replaygate.compare import CompareConfig
    from replaygate.errors import ConfigError

    p = tmp_path / "x.pb"
    p.write_bytes(b"not a descriptor set")
    with pytest.raises(ConfigError, match="not a descriptor set"):
        ResponseDiffer(CompareConfig(proto_descriptor_set=str(p)))
    with pytest.raises(ConfigError, match="cannot read"):
        ResponseDiffer(CompareConfig(proto_descriptor_set=str(tmp_path / "missing.pb")))
