"""libpcap through pcapy-ng: open a device, read packets in batches, report kernel drops.

Why libpcap and not our own AF_PACKET socket (see docs/capture.md for the numbers): libpcap
already uses a TPACKET_V3 memory-mapped ring, drops the duplicate copy of every packet that
AF_PACKET sees on ``lo``, handles the ``any`` pseudo-device and VLAN re-insertion, and
pcapy-ng's ``next_batch`` hands a whole ring block to Python in one call (one bytes object
plus a packed array of (sec, usec, offset, caplen)), so there is no per-packet C<->Python
crossing on the read path.

pcapy-ng's blocking reads never return once traffic stops, so handles are non-blocking and
readers wait on the file descriptor with ``select`` and a timeout (that is how a stop request
is noticed).
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from ..errors import CaptureError

__all__ = ["PERMISSION_HINT", "PcapHandle", "build_filter", "list_interfaces"]

PERMISSION_HINT = (
    "no permission to capture packets: run as root or grant CAP_NET_RAW "
    "(sudo setcap cap_net_raw,cap_net_admin+ep $(readlink -f $(which python3))), "
    "or record through `replaygate proxy` instead"
)


def _pcapy() -> Any:
    try:
        import pcapy
    except ImportError:
        raise CaptureError(
            "live capture needs pcapy-ng (pip install 'replaygate[capture]') "
            "and libpcap (apt-get install libpcap0.8)"
        ) from None
    return pcapy


def list_interfaces() -> list[str]:
    """Names of the network interfaces (plus ``any``), as the kernel knows them."""
    names = [n for _, n in socket.if_nameindex()]
    return [*names, "any"]


def build_filter(ports: list[int], bpf: str | None, *, vlan: bool) -> str:
    """The kernel BPF filter: the user's expression, or TCP on the given ports (both
    directions, IPv4 and IPv6), optionally also inside 802.1Q tags."""
    if bpf:
        return bpf
    if not ports:
        return "tcp"
    base = " or ".join(f"tcp port {p}" for p in sorted(set(ports)))
    return f"({base}) or (vlan and ({base}))" if vlan else base


# pcap_activate() error codes (pcap/pcap.h); pcapy-ng returns them instead of raising
_PCAP_ERRORS = {
    -5: "no such interface",
    -8: "permission",
    -9: "interface is not up",
    -11: "permission",
}


def _activate_failed(device: str, rc: int) -> None:
    what = _PCAP_ERRORS.get(rc, f"pcap_activate failed with code {rc}")
    if what == "permission":
        raise CaptureError(PERMISSION_HINT)
    raise CaptureError(f"--interface {device}: {what}")


class PcapHandle:
    """One activated, non-blocking libpcap handle on one device."""

    def __init__(
        self,
        device: str,
        *,
        ports: list[int],
        bpf: str | None,
        snaplen: int = 262_144,
        buffer_bytes: int = 64 << 20,
        timeout_ms: int = 50,
    ) -> None:
        pcapy = _pcapy()
        if device not in list_interfaces():
            known = ", ".join(list_interfaces())
            raise CaptureError(f"--interface {device}: no such interface (known: {known})")
        self.device = device
        try:
            h = pcapy.create(device)
            h.set_snaplen(snaplen)
            h.set_buffer_size(buffer_bytes)
            h.set_timeout(timeout_ms)
            h.set_promisc(0)
            rc = h.activate()
            if isinstance(rc, int) and rc < 0:
                _activate_failed(device, rc)
        except pcapy.PcapError as e:
            msg = str(e)
            low = msg.lower()
            if "permission" in low or "not permitted" in low:
                raise CaptureError(PERMISSION_HINT) from None
            if "no such device" in low:
                raise CaptureError(f"--interface {device}: no such interface") from None
            raise CaptureError(f"--interface {device}: cannot capture: {msg}") from None
        self._h = h
        self.linktype = int(h.datalink())
        self.filter = build_filter(ports, bpf, vlan=device != "any" and not bpf)
        try:
            h.setfilter(self.filter)
        except pcapy.PcapError as e:
            try:
                self.filter = build_filter(ports, bpf, vlan=False)
                h.setfilter(self.filter)
            except pcapy.PcapError:
                h.close()
                raise CaptureError(f"--bpf: bad filter {self.filter!r}: {e}") from None
        h.setnonblock(1)
        self.fd = int(h.getfd())
        self._closed = False
        # Between activation and the filter the socket saw *everything*; libpcap counts what
        # did not fit as drops. Discard that and count from here: ours start now.
        deadline = time.monotonic() + 3 * timeout_ms / 1000  # ring blocks retire on timeout
        while time.monotonic() < deadline:
            self.wait(timeout_ms / 4000)
            while h.next_batch(4096)[1]:
                pass
        self._base = self._raw_stats()

    def wait(self, timeout: float) -> bool:
        """Block until packets may be readable (or ``timeout`` seconds pass)."""
        r, _, _ = select.select([self.fd], [], [], timeout)
        return bool(r)

    def read_batch(self, max_packets: int = 4096) -> tuple[bytes, bytes]:
        """``(packet_bytes, packed_meta)``: meta is 16 bytes per packet, four native uint32
        (sec, usec, offset, caplen). Empty meta: nothing ready."""
        data, meta = self._h.next_batch(max_packets)
        return data, meta

    def _raw_stats(self) -> tuple[int, int, int]:
        try:
            r, d, i = self._h.stats()
        except Exception:
            return 0, 0, 0
        return int(r), int(d), int(i)

    def stats(self) -> tuple[int, int, int]:
        """(received by the filter, dropped by the kernel, dropped by the interface), since
        the filter was installed."""
        r, d, i = self._raw_stats()
        br, bd, bi = self._base
        return max(0, r - br), max(0, d - bd), max(0, i - bi)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._h.close()
