"""Reading pcap / pcapng captures (plain, ``.gz`` or zstd) as exchanges.

The chain is streaming end to end, so a capture of any size runs in bounded memory:
:func:`~replaygate.protocol.pcapfile.iter_frames` (1 MiB chunks) ->
:func:`~replaygate.protocol.linklayer.decode_frame` -> the
:class:`~replaygate.protocol.assembler.TrafficAssembler` (fed in batches; idle flows expired
by *packet* time, so an hour-long capture behaves like the hour it recorded) -> exchanges.

Everything that did not become an exchange is accounted for in ``options.counters``: the
link layer's reasons (``link.*``), a cut-short file (``pcap.truncated_record``) and the
assembler's statistics copied as ``pcap.<stat>`` notes, so that ``inspect`` can say why.

A capture cut short (tcpdump killed, disk full) behaves like tcpdump and tshark: every
exchange that was complete is handed out first, then :class:`~replaygate.errors.TruncatedError`
names the file and the offset of the cut (one line, exit code 2 in the CLI). Callers that
prefer to go on pass ``extra["truncated"] = "count"``: the cut is then only counted.

Options read from ``ReadOptions.extra``: ``assembler`` (an ``AssemblerConfig``) or
``server_ports`` (ports that identify the server side when a handshake was not captured),
``truncated`` (``"raise"``, the default, or ``"count"``).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import FormatError, TruncatedError
from ..model import Exchange
from ..protocol.linklayer import Defragmenter, decode_frame
from ..protocol.pcapfile import iter_frame_batches
from . import ReadOptions

__all__ = ["read"]

_BATCH = 256
_EXPIRE_EVERY_NS = 1_000_000_000  # run idle-flow expiry at most once per second of packets


def read(path: str, options: ReadOptions) -> Iterator[Exchange]:
    """Every HTTP/1.x exchange in the capture, in the order the assembler completes them."""
    from ..protocol.assembler import AssemblerConfig, TrafficAssembler

    counters = options.counters
    cfg = options.extra.get("assembler")
    if not isinstance(cfg, AssemblerConfig):
        ports = options.extra.get("server_ports") or ()
        cfg = AssemblerConfig(server_ports=frozenset(int(p) for p in ports))
    asm = TrafficAssembler(cfg)
    defrag = Defragmenter()
    cuts_before = counters.dropped["pcap.truncated_record"]
    frames = 0
    last_expire = 0
    try:
        try:
            for batch in iter_frame_batches(path, counters):
                frames += len(batch)
                segs = [
                    s
                    for f in batch
                    if (s := decode_frame(f.linktype, f.data, f.ts_ns, counters, defrag))
                ]
                for i in range(0, len(segs), _BATCH):
                    yield from asm.feed_batch(segs[i : i + _BATCH])
                ts = batch[-1].ts_ns
                if ts - last_expire >= _EXPIRE_EVERY_NS:
                    if last_expire:
                        yield from asm.expire(ts)
                    last_expire = ts
        except TruncatedError:
            raise  # cut before the file header: nothing was read
        except FormatError:
            # Corruption in the middle of a file: hand out what was complete before it,
            # then report the error (with its offset) to the caller.
            yield from asm.flush()
            counters.dropped["pcap.corrupt_file"] += 1
            raise
        yield from asm.flush()
        if (
            counters.dropped["pcap.truncated_record"] > cuts_before
            and options.extra.get("truncated", "raise") != "count"
        ):
            raise TruncatedError(
                f"capture file cut short in the middle of a packet, after {frames} frames "
                "(every complete exchange before the cut was read)",
                path=path,
                offset=counters.notes["pcap.truncated_at_offset"],
            )
    finally:
        counters.notes["pcap.frames"] += frames
        for key, value in asm.stats.as_dict().items():
            if value:  # zeros say nothing and crowd the report; several files add up
                counters.notes["pcap." + key] += value
        if len(defrag):
            counters.dropped["link.ip_fragment_incomplete"] += len(defrag)
