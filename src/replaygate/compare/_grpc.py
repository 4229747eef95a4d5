"""gRPC responses in comparison: the gRPC status is the status, messages are diffed as trees.

A response is gRPC when its ``content-type`` starts with ``application/grpc``. Its body is a
sequence of length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length);
a compressed message is undone with the response's ``grpc-encoding`` (gzip, deflate).
Without a schema, each message is decoded from the protobuf wire format into a tree keyed
by field number: varints and fixed-size fields are numbers, a length-delimited field is a
nested message when it parses as one completely, else text when it is UTF-8, else
``{"bytes": <hex>}``; a field number seen more than once is a list. Trees are diffed like
JSON: field ``grpc:$.1.2`` (array indices folded to ``[*]``), path ``grpc:$.1[3].2``. One
message is the root; a streaming answer of several is a list of messages (``grpc:$[*].1``).

The status: the ``grpc-status`` trailer, or the header of a trailers-only answer (an error
with no messages). A changed gRPC status is a ``status`` difference with path
``grpc-status`` (the HTTP status of gRPC answers is 200 either way).
"""

from __future__ import annotations

import zlib
from typing import Any

from ..model import HTTPMessage, Response
from ..protocol import h2msg

__all__ = [
    "ProtoNames",
    "decode_message",
    "diff_trees",
    "grpc_status",
    "is_grpc",
    "messages",
    "tree",
]

_MAX_DEPTH = 32
_MAX_MESSAGE = 64 << 20  # inflated size of one compressed message, at most


class _NotProto(ValueError):
    pass


def is_grpc(msg: HTTPMessage) -> bool:
    ctype = (msg.header("content-type") or "").strip().lower()
    return ctype.startswith("application/grpc")


def grpc_status(resp: Response) -> int | None:
    """``grpc-status`` from the trailers, else from the headers (trailers-only answers)."""
    for source in (h2msg.trailers(resp) or [], resp.headers):
        for k, v in source:
            if k.lower() == "grpc-status":
                v = v.strip()
                return int(v) if v.isascii() and v.isdigit() and len(v) < 6 else -1
    return None


def messages(msg: HTTPMessage) -> list[bytes] | None:
    """The messages of a gRPC body, decompressed; None when the framing does not hold."""
    body = msg.body()
    enc = (msg.header("grpc-encoding") or "identity").strip().lower()
    out: list[bytes] = []
    pos = 0
    while pos < len(body):
        if len(body) - pos < 5:
            return None
        flag = body[pos]
        n = int.from_bytes(body[pos + 1 : pos + 5], "big")
        data = body[pos + 5 : pos + 5 + n]
        if len(data) != n or flag > 1:
            return None
        pos += 5 + n
        if flag:
            if enc not in ("gzip", "x-gzip", "deflate"):
                return None
            d = zlib.decompressobj(16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS)
            try:
                data = d.decompress(data, _MAX_MESSAGE)
            except zlib.error:
                return None
            if d.unconsumed_tail:  # a bomb: more than _MAX_MESSAGE once inflated
                return None
        out.append(data)
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _NotProto
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def decode_message(data: bytes, depth: int = 0) -> dict[str, Any]:
    """A protobuf message as a field-number tree; raises ValueError if it is not one."""
    try:
        return _decode(data, depth)
    except _NotProto:
        raise ValueError("not a protobuf message") from None


def _decode(data: bytes, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise _NotProto
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            if pos + 8 > len(data):
                raise _NotProto
            value = int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == 5:
            if pos + 4 > len(data):
                raise _NotProto
            value = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        elif wire == 2:
            n, pos = _varint(data, pos)
            if pos + n > len(data):
                raise _NotProto
            value = _bytes_value(data[pos : pos + n], depth)
            pos += n
        else:  # groups (3, 4) are long deprecated; 6, 7 do not exist
            raise _NotProto
        k = str(num)
        if k in out:
            prev = out[k]
            if isinstance(prev, list) and out.get("\0rep:" + k):
                prev.append(value)
            else:
                out[k] = [prev, value]
                out["\0rep:" + k] = True
        else:
            out[k] = value
    return {k: v for k, v in out.items() if not k.startswith("\0")}


def _bytes_value(b: bytes, depth: int) -> Any:
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable():  # printable text first, as people read it
        return text
    if b and depth < _MAX_DEPTH:
        try:
            return _decode(b, depth + 1)
        except _NotProto:
            pass
    return text if text is not None else {"bytes": b.hex()}


def tree(msg: HTTPMessage) -> Any:
    """The comparable tree of a gRPC body (None: not gRPC framing)."""
    msgs = messages(msg)
    if msgs is None:
        return None
    trees = []
    for m in msgs:
        try:
            trees.append(decode_message(m))
        except ValueError:
            trees.append({"bytes": m.hex()})
    return trees[0] if len(trees) == 1 else trees


# (field, kind, path, original, replayed)
Diff = tuple[str, str, str, Any, Any]


def diff_trees(a: Any, b: Any, limit: int, path: str = "$", norm: str = "$") -> list[Diff]:
    """Differences between two gRPC trees, JSON-style: ``missing``/``extra`` fields,
    ``type``, ``length`` of lists, ``changed`` values; at most ``limit``."""
    out: list[Diff] = []
    _diff(a, b, path, norm, out, limit, 0)
    return out


def _diff(a: Any, b: Any, path: str, norm: str, out: list[Diff], limit: int, depth: int) -> None:
    if len(out) >= limit or a == b:
        return
    f = "grpc:" + norm
    ta, tb = type(a), type(b)
    if ta is not tb:
        out.append((f, "type", "grpc:" + path, _kind(a), _kind(b)))
    elif depth >= _MAX_DEPTH:
        out.append((f, "changed", "grpc:" + path, a, b))
    elif ta is dict:
        for k, av in a.items():
            if k not in b:
                out.append((f + "." + k, "missing", f"grpc:{path}.{k}", av, None))
            else:
                _diff(av, b[k], f"{path}.{k}", f"{norm}.{k}", out, limit, depth + 1)
        for k in b:
            if k not in a:
                out.append((f + "." + k, "extra", f"grpc:{path}.{k}", None, b[k]))
    elif ta is list:
        if len(a) != len(b):
            out.append((f, "length", "grpc:" + path, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}[{i}]", norm + "[*]", out, limit, depth + 1)
    else:
        out.append((f, "changed", "grpc:" + path, a, b))


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "bytes" if set(v) == {"bytes"} else "message"
    if isinstance(v, list):
        return "repeated"
    return "text" if isinstance(v, str) else "number"


class ProtoNames:
    """Field names from a descriptor set (``protoc -o FILE --include_imports``), read with
    the schema-less decoder itself (a ``FileDescriptorSet`` is a protobuf message): which
    message type each ``/package.Service/Method`` answers with, and each type's field names.
    """

    def __init__(self) -> None:
        # ".pkg.Type" -> {field number: (name, ".pkg.FieldType" or "")}
        self.types: dict[str, dict[int, tuple[str, str]]] = {}
        self.outputs: dict[str, str] = {}  # "/pkg.Service/Method" -> ".pkg.Type"

    @classmethod
    def load(cls, path: str) -> ProtoNames:
        from ..errors import ConfigError

        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ConfigError(f"--proto-descriptor-set {path}: cannot read: {e.strerror}") from None
        try:
            return cls.parse(data)
        except (ValueError, TypeError, KeyError):
            raise ConfigError(
                f"--proto-descriptor-set {path}: not a descriptor set (protoc -o FILE)"
            ) from None

    @classmethod
    def parse(cls, data: bytes) -> ProtoNames:
        names = cls()
        top = _decode(data, 0)
        for fd in _many(top.get("1")):
            pkg = fd.get("2", "") if isinstance(fd.get("2"), str) else ""
            prefix = "." + pkg if pkg else ""
            for m in _many(fd.get("4")):
                names._message(prefix, m)
            for svc in _many(fd.get("6")):
                sname = f"{pkg}.{svc['1']}" if pkg else str(svc["1"])
                for meth in _many(svc.get("2")):
                    names.outputs[f"/{sname}/{meth['1']}"] = str(meth.get("3", ""))
        if not names.types:
            raise ValueError("no message types")
        return names

    def _message(self, prefix: str, m: dict[str, Any]) -> None:
        full = f"{prefix}.{m['1']}"
        fields: dict[int, tuple[str, str]] = {}
        for fl in _many(m.get("2")):
            if isinstance(fl.get("3"), int) and isinstance(fl.get("1"), str):
                tn = fl.get("6")
                fields[fl["3"]] = (fl["1"], tn if isinstance(tn, str) else "")
        self.types[full] = fields
        for nested in _many(m.get("3")):
            self._message(full, nested)

    def name(self, tree: Any, method: str) -> Any:
        """``tree`` with field numbers replaced by names where the method's output type
        says (unknown fields keep their number)."""
        typ = self.outputs.get(method)
        if typ is None:
            return tree
        if isinstance(tree, list):  # a streaming answer
            return [self._named(t, typ, 0) for t in tree]
        return self._named(tree, typ, 0)

    def _named(self, tree: Any, typ: str, depth: int) -> Any:
        fields = self.types.get(typ)
        if fields is None or not isinstance(tree, dict) or depth > _MAX_DEPTH:
            return tree
        out: dict[str, Any] = {}
        for k, v in tree.items():
            name, sub = fields.get(int(k), (k, "")) if k.isdigit() else (k, "")
            if sub:
                v = (
                    [self._named(x, sub, depth + 1) for x in v]
                    if isinstance(v, list)
                    else (self._named(v, sub, depth + 1))
                )
            out[name] = v
        return out


def _many(v: Any) -> list[dict[str, Any]]:
    """A repeated message field: one occurrence decodes as a dict, several as a list."""
    if v is None:
        return []
    items = v if isinstance(v, list) else [v]
    return [x for x in items if isinstance(x, dict)]
