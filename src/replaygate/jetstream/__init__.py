"""Scale-out on NATS JetStream: the same exchanges, in the same encoding, through a stream.

::

    capture/proxy/convert --output nats://H:P/TRAFFIC   →  stream TRAFFIC (subjects
        rg.TRAFFIC.p.<partition>, partition = hash(session) % partitions)
    replaygate worker --source nats://H:P/TRAFFIC       →  durable consumer per partition,
        partitions leased to live workers (KV bucket), ack after the result is published
    results                                              →  stream TRAFFIC-RESULTS
    replaygate aggregate / compare nats://H:P/TRAFFIC-RESULTS → report and gate

Messages carry the exchange as ``.gor`` records (exactly the file format) plus headers
``Nats-Msg-Id`` (JetStream de-duplication), ``Rg-Id``, ``Rg-Session``, ``Rg-Ts``.
"""

from __future__ import annotations

from .codec import decode_exchange, encode_exchange, partition_of
from .sink import NatsSink
from .source import read_stream
from .url import StreamURL, parse_stream_url

__all__ = [
    "NatsSink",
    "StreamURL",
    "decode_exchange",
    "encode_exchange",
    "parse_stream_url",
    "partition_of",
    "read_stream",
]
