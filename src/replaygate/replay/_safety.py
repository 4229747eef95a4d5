"""Addresses for the replay safety rule: where the traffic was captured, where it goes.

The rule (non-GET/HEAD/OPTIONS requests are never replayed to the host they were captured
from) is only as good as its comparison, so both sides are reduced to resolved addresses:

* names are resolved (``Host: localhost:8080`` is ``127.0.0.1:8080``), and cached: a
  recording names few hosts;
* IP literals are normalised: ``[::ffff:127.0.0.1]`` is ``127.0.0.1``, IPv6 is compressed
  and lower-cased;
* the captured side is the recorded ``Host`` (ports 80 and 443 when it names none), the
  connection's destination, and for proxy recordings the upstream the proxy forwarded to
  (``meta["upstream"]``, written by ``replaygate proxy``): the connection's destination is
  then the proxy itself, and the Host header whatever the client sent.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..model import Exchange

__all__ = ["AddressBook", "normalise_host"]

Addr = tuple[str, int]


def normalise_host(host: str) -> str:
    """Lower-case; an IP literal in its canonical form, IPv4-mapped IPv6 as IPv4."""
    h = host.strip().strip("[]").lower()
    if "%" in h:  # a zone id (fe80::1%eth0) is not part of the address
        h = h.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return h.rstrip(".")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class AddressBook:
    """Resolves host names to normalised addresses, once per name."""

    def __init__(self, resolve: Callable[..., Any] = socket.getaddrinfo) -> None:
        self._resolve = resolve
        self._cache: dict[str, frozenset[str]] = {}

    def _ips(self, host: str) -> frozenset[str]:
        h = normalise_host(host)
        got = self._cache.get(h)
        if got is None:
            ips = {h}
            try:
                ipaddress.ip_address(h)
            except ValueError:
                try:
                    for info in self._resolve(h, None, type=socket.SOCK_STREAM):
                        ips.add(normalise_host(str(info[4][0])))
                except (OSError, UnicodeError):
                    pass  # does not resolve: compared by name only
            got = self._cache[h] = frozenset(ips)
        return got

    def addresses(self, host: str, ports: tuple[int, ...]) -> set[Addr]:
        """``host`` (its name and every address it resolves to) on each of ``ports``."""
        return {(ip, p) for ip in self._ips(host) for p in ports}

    def captured(self, ex: Exchange) -> set[Addr]:
        """Where ``ex`` was captured from, as addresses."""
        out: set[Addr] = set()
        host = ex.request.host
        if host:
            h, port = _split_hostport(host)
            out |= self.addresses(h, (port,) if port else (80, 443))
        if ex.conn is not None:
            out |= self.addresses(ex.conn.dst, (ex.conn.dport,))
        upstream = ex.meta.get("upstream")
        if upstream:
            u = urlsplit(upstream if "://" in upstream else "http://" + upstream)
            try:
                port = u.port or (443 if u.scheme == "https" else 80)
            except ValueError:
                port = 0
            if u.hostname and port:
                out |= self.addresses(u.hostname, (port,))
        return out


def _split_hostport(host: str) -> tuple[str, int]:
    if host.startswith("["):
        h, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        h, sep, port = host.rpartition(":")
        if not sep or ":" in h:  # no port, or a bare IPv6 address
            h, port = host, ""
    return h, int(port) if port.isdigit() and int(port) < 65536 else 0
