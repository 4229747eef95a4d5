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
``truncated`` (``"raise"``, the default, or ``"count"``), ``tls_keylog`` (path of an NSS key
log: HTTPS is decrypted, see :mod:`replaygate.protocol.tls`). Key logs embedded in pcapng
Decryption Secrets Blocks are always used. TLS sessions that could not be decrypted are
counted in ``dropped`` as ``tls.<reason>``; without any key, TLS connections only show in the
``pcap.tls_flows`` note.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from ..errors import FormatError, TruncatedError
from ..model import Exchange
from ..protocol.http2 import FAILURES as HTTP2_FAILURES
from ..protocol.keylog import KeyLog, load_keylog
from ..protocol.linklayer import Defragmenter, decode_frame
from ..protocol.pcapfile import SECRETS_TLS_KEYLOG, iter_frame_batches
from ..protocol.tls import FAILURES, TLSConfig
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
    # TLS: secrets from --tls-keylog and from the file's own Decryption Secrets Blocks
    keys = cfg.tls.keys if cfg.tls is not None else KeyLog()
    keylog = options.extra.get("tls_keylog")
    if keylog:
        load_keylog(str(keylog), keys)
    if cfg.tls is None and keylog:
        cfg = dataclasses.replace(cfg, tls=TLSConfig(keys))
    asm = TrafficAssembler(cfg)

    def on_secrets(stype: int, data: bytes) -> None:
        if stype != SECRETS_TLS_KEYLOG:
            counters.dropped["pcap.unknown_secrets_block"] += 1
            return
        keys.feed(data)
        keys.end()
        if asm.config.tls is None:  # decrypt from here on (a DSB precedes its packets)
            asm.config = dataclasses.replace(asm.config, tls=TLSConfig(keys))

    defrag = Defragmenter()
    cuts_before = counters.dropped["pcap.truncated_record"]
    frames = 0
    last_expire = 0
    try:
        try:
            for batch in iter_frame_batches(path, counters, on_secrets):
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
        if counters.dropped["pcap.truncated_record"] > cuts_before:
            msg = (
                f"capture file cut short in the middle of a packet, after {frames} frames "
                "(every complete exchange before the cut was read)"
            )
            offset = counters.notes["pcap.truncated_at_offset"]
            counters.cuts.append((path, offset, msg))
            if options.extra.get("truncated", "raise") != "count":
                raise TruncatedError(msg, path=path, offset=offset)
    finally:
        counters.notes["pcap.frames"] += frames
        for key, value in asm.stats.as_dict().items():
            if value:  # zeros say nothing and crowd the report; several files add up
                counters.notes["pcap." + key] += value
        if keys.stats.lines:
            for k, v in keys.stats.as_dict().items():
                if v:
                    counters.notes["pcap.tls_keylog_" + k] += v
        tls = asm.stats.tls
        if tls.sessions:
            for reason in FAILURES:
                n = getattr(tls, reason)
                if n:
                    counters.dropped["tls." + reason] += n
        for reason in HTTP2_FAILURES:
            n = asm.stats.http2["http2_" + reason]
            if n:
                counters.dropped["http2." + reason] += n
        if len(defrag):
            counters.dropped["link.ip_fragment_incomplete"] += len(defrag)
