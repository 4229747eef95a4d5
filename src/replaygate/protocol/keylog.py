"""NSS key log (``SSLKEYLOGFILE``) secrets, by client random.

The format is the one curl, Firefox, Chrome, OpenSSL (``SSL_CTX_set_keylog_callback``),
Python's ``ssl`` (``keylog_filename``), Go (``KeyLogWriter``) and Wireshark write: one secret
per line, ``LABEL <client random, 64 hex> <secret, hex>``, ``#`` comments. The labels used
here: ``CLIENT_RANDOM`` (TLS 1.2 and older: the master secret) and the TLS 1.3 traffic secrets
``CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET``, ``CLIENT_/SERVER_TRAFFIC_SECRET_0`` and
``CLIENT_EARLY_TRAFFIC_SECRET``. Other labels (exporter secrets, Wireshark's ``RSA`` and
``PMS_CLIENT_RANDOM`` lines) are kept out and counted, as are malformed lines.

:class:`KeyLog` is sans-I/O: ``feed`` takes bytes in pieces of any size (a line split across
two calls is joined). :class:`KeyLogFollower` is the small file side: it reads a key log
that a client is still writing, from where it left off, each time it is polled; the file may
not exist yet, and a file that shrank (rotated, rewritten) is read again from the start.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from ..errors import InputError

__all__ = ["LABELS", "KeyLog", "KeyLogFollower", "KeyLogStats", "load_keylog"]

LABELS = frozenset(
    {
        "CLIENT_RANDOM",
        "CLIENT_EARLY_TRAFFIC_SECRET",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    }
)
_IGNORED = frozenset(
    {"EXPORTER_SECRET", "EARLY_EXPORTER_SECRET", "RSA", "PMS_CLIENT_RANDOM", "RSA_SESSION_ID"}
)
_MAX_LINE = 4096  # a longer "line" is not a key log line


@dataclass(slots=True)
class KeyLogStats:
    """``secrets``: distinct (client random, label) pairs added; ``ignored``: lines with a
    label not needed for decryption; ``malformed``: lines that are not key log lines;
    ``evicted``: connections forgotten, oldest first, to stay under ``max_connections``."""

    lines: int = 0
    secrets: int = 0
    ignored: int = 0
    malformed: int = 0
    evicted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class KeyLog:
    """Secrets by client random and label; ``generation`` grows whenever a secret is added,
    so a session waiting for its key knows when to look again. ``max_connections`` bounds
    memory when a live capture follows a key log for days: beyond it the oldest
    connections' secrets are forgotten (a key is needed only around its handshake, and a
    resumed TLS 1.2 session reuses the master secret the capture already derived)."""

    def __init__(self, max_connections: int | None = None) -> None:
        self.max_connections = max_connections
        self._secrets: dict[bytes, dict[str, bytes]] = {}
        self._partial = b""
        self.generation = 0
        self.stats = KeyLogStats()

    def __len__(self) -> int:
        return len(self._secrets)

    def feed(self, data: bytes) -> int:
        """Bytes of a key log, in pieces of any size; returns how many secrets were new."""
        buf = self._partial + data if self._partial else data
        lines = buf.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > _MAX_LINE:
            self.stats.malformed += 1
            self._partial = b""
        return sum(self.add_line(line) for line in lines)

    def end(self) -> int:
        """End of input: a last line without a newline counts too."""
        rest, self._partial = self._partial, b""
        return self.add_line(rest) if rest.strip() else 0

    def add_line(self, line: bytes | str) -> int:
        """One line; returns 1 if it added a secret we did not have, else 0."""
        if isinstance(line, bytes):
            line = line.decode("ascii", "replace")
        line = line.strip()
        if not line or line.startswith("#"):
            return 0
        st = self.stats
        st.lines += 1
        parts = line.split()
        if len(parts) != 3:
            st.malformed += 1
            return 0
        label, cr_hex, secret_hex = parts
        if label not in LABELS:
            if label in _IGNORED:
                st.ignored += 1
            else:
                st.malformed += 1
            return 0
        try:
            client_random = bytes.fromhex(cr_hex)
            secret = bytes.fromhex(secret_hex)
        except ValueError:
            st.malformed += 1
            return 0
        if len(client_random) != 32 or not 1 <= len(secret) <= 64:
            st.malformed += 1
            return 0
        return self.add(client_random, label, secret)

    def add(self, client_random: bytes, label: str, secret: bytes) -> int:
        entry = self._secrets.get(client_random)
        if entry is None:
            entry = self._secrets[client_random] = {}
            limit = self.max_connections
            if limit is not None and len(self._secrets) > limit:
                del self._secrets[next(iter(self._secrets))]
                self.stats.evicted += 1
        if entry.get(label) == secret:
            return 0
        if label not in entry:
            self.stats.secrets += 1
        entry[label] = secret
        self.generation += 1
        return 1

    def get(self, client_random: bytes, label: str) -> bytes | None:
        entry = self._secrets.get(client_random)
        return entry.get(label) if entry is not None else None


def load_keylog(path: str, keys: KeyLog | None = None) -> KeyLog:
    """Read a whole key log file; a missing or unreadable file is an :class:`InputError`
    naming it (for ``--tls-keylog``)."""
    keys = keys if keys is not None else KeyLog()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                keys.feed(chunk)
    except FileNotFoundError:
        raise InputError("--tls-keylog: no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("--tls-keylog: is a directory, not a key log file", path=path) from None
    except OSError as e:
        raise InputError(f"--tls-keylog: cannot read: {e.strerror or e}", path=path) from None
    keys.end()
    return keys


class KeyLogFollower:
    """Follow a key log file that is still being written (``capture --tls-keylog``).

    :meth:`poll` reads what was appended since the last call and returns how many secrets
    were new. A file that does not exist yet is not an error (the client creates it when it
    starts); a file that got shorter is read again from its start (a client that truncates
    its log on start). A partial last line waits for its newline.
    """

    def __init__(self, path: str, keys: KeyLog | None = None) -> None:
        self.path = path
        self.keys = keys if keys is not None else KeyLog(max_connections=1_000_000)
        self._pos = 0
        self._ino: int | None = None

    def poll(self) -> int:
        try:
            st = os.stat(self.path)
        except OSError:
            return 0
        if st.st_ino != self._ino or st.st_size < self._pos:
            self._ino = st.st_ino
            self._pos = 0
            self.keys._partial = b""
        if st.st_size == self._pos:
            return 0
        added = 0
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                while chunk := f.read(1 << 20):
                    self._pos += len(chunk)
                    added += self.keys.feed(chunk)
        except OSError:
            return added
        return added
