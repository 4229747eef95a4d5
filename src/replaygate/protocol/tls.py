"""Sans-I/O passive TLS decryption of one TCP connection, with secrets from a key log.

:class:`TLSConnection` takes the reassembled byte streams of both directions (the events of
:mod:`replaygate.protocol.tcp`) and returns the decrypted application data as the same kind
of events, each with the capture time of its record, so the HTTP/1 parser behind it works as
on a cleartext connection. It reads the record layer, follows the handshake (ClientHello,
ServerHello, EncryptedExtensions, Finished, NewSessionTicket, KeyUpdate, renegotiation) and
derives the record keys:

* TLS 1.0-1.2 from the ``CLIENT_RANDOM`` master secret (PRF of the suite's hash; with a key
  log the extended master secret does not matter), AES-GCM/CCM, ChaCha20-Poly1305 and AES-CBC
  with HMAC-SHA1/256/384 (MAC-then-encrypt or encrypt-then-MAC; TLS 1.0's implicit IV). A
  resumed session without its own ``CLIENT_RANDOM`` line reuses the master secret of the
  session it resumes when that one was seen earlier (by session id or ticket).
* TLS 1.3 (and drafts 20+) from ``CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET`` and
  ``CLIENT_/SERVER_TRAFFIC_SECRET_0``, following KeyUpdates and HelloRetryRequests; 0-RTT
  early data with ``CLIENT_EARLY_TRAFFIC_SECRET`` (records the server rejected are skipped
  and counted).

Rules:

* **Nothing is dropped silently.** A session ends in exactly one of the reasons of
  :class:`TLSStats` when it cannot be decrypted (no key, unsupported suite or version,
  resumed without its secret, joined after its handshake, handshake never finished, h2
  until an HTTP/2 parser exists, a record that does not decrypt, a gap in the stream, too
  many bytes waiting for a key); the bytes it could not turn into plaintext are counted.
* **Records wait for their key, boundedly.** A live capture sees a handshake before the
  client has written its key log line. Records that need a key not known yet are held (with
  everything after them, in arrival order, both directions) until the key log grows
  (:meth:`TLSConnection.retry`), ``key_wait_s`` of capture time pass, or ``max_held_bytes``
  are held; then the session is counted and given up.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass

from ._tls_crypto import (
    SUITES,
    Cbc,
    DecryptError,
    RecordCipher,
    Suite,
    tls12_key_block,
    tls13_cipher,
    tls13_next_secret,
)
from ._tls_session import FAILURES, TLSConfig, TLSSessionCache, TLSStats
from ._tls_wire import _alpn_list, _Bad, _extensions, _Reader, looks_like_tls, version_name
from .tcp import DATA, EOF, GAP, Event

__all__ = [
    "FAILURES",
    "Plain",
    "TLSConfig",
    "TLSConnection",
    "TLSSessionCache",
    "TLSStats",
    "looks_like_tls",
    "version_name",
]

# (from_client, DATA/GAP/EOF, bytes or gap size, capture time in ns)
Plain = tuple[bool, int, bytes | int, int]

_HANDSHAKE, _CCS, _ALERT, _APPDATA = 22, 20, 21, 23
_MAX_FRAGMENT = (1 << 14) + 2048
_MAX_HANDSHAKE = 1 << 20
_HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
_EOF_MARK, _GAP_MARK = -1, -2


@dataclass(slots=True)
class _Params:
    """What one TLS 1.0-1.2 handshake negotiated, applied at each side's ChangeCipherSpec."""

    client_random: bytes
    server_random: bytes
    suite: Suite
    version: int
    etm: bool
    client_session_id: bytes
    server_session_id: bytes
    offered_ticket: bytes
    new_ticket: bytes = b""
    master: bytes | None = None
    ciphers: tuple[RecordCipher, RecordCipher] | None = None


class _Dir:
    __slots__ = ("app", "buf", "cipher", "encrypted", "hs", "need12", "need13", "secret")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.cipher: RecordCipher | None = None
        self.encrypted = False
        self.hs = b""
        self.need12: _Params | None = None  # TLS 1.2: the keys to use after our CCS
        self.need13: str | None = None  # TLS 1.3: the key log label of our next secret
        self.secret: bytes | None = None  # TLS 1.3: current traffic secret
        self.app = False  # TLS 1.3: application traffic secrets in use (after Finished)


class TLSConnection:
    """Both directions of one TLS connection; see the module docstring."""

    def __init__(
        self,
        config: TLSConfig,
        stats: TLSStats,
        cache: TLSSessionCache | None = None,
        *,
        parse_http2: bool = False,
    ) -> None:
        self.config = config
        self.parse_http2 = parse_http2  # h2 plaintext goes out (an HTTP/2 parser reads it)
        self.stats = stats
        self.cache = cache if cache is not None else TLSSessionCache()
        self._c = _Dir()
        self._s = _Dir()
        self._held: deque[tuple[bool, int, int, bytes, int]] = deque()
        self._held_bytes = 0
        self._wait_since = 0
        self._gen = -1
        self._out: list[Plain] = []
        self.failed: str | None = None
        self.hello = False  # a ClientHello was seen
        self.keyed = False  # a ServerHello chose keys
        self.app_data = False
        self.client_random = b""
        self._client_session_id = b""
        self._offered_ticket = b""
        self._early_offered = False
        self._early_held: list[tuple[int, bytes, int]] = []  # 0-RTT records before ServerHello
        self._early_cipher: RecordCipher | None = None
        self._early_done = False
        self._pending: _Params | None = None
        self._server_done = False  # TLS 1.2: ServerHelloDone since the last ServerHello
        self.tls13 = False
        self._suite: Suite | None = None
        self._prefix = b"tls13 "
        self._aad_header = True
        self.version = 0
        self.suite_name = ""
        self.sni = ""
        self.alpn = ""
        self.resumed = False
        self.http2 = False
        stats.sessions += 1

    # -- public API -------------------------------------------------------------------------
    @property
    def waiting(self) -> bool:
        """Are records held until their key shows up in the key log?"""
        return bool(self._held) and self.failed is None

    def feed(self, from_client: bool, events: list[Event], ts: int) -> list[Plain]:
        """Reassembled events of one direction; returns the plaintext events now ready."""
        if self._held and self.failed is None:
            if self.config.keys.generation != self._gen:
                self._release()
            self._check_wait(ts)
        for kind, value in events:
            if kind == DATA:
                assert isinstance(value, bytes)
                self._data(from_client, value, ts)
            elif kind == GAP:
                assert isinstance(value, int)
                self._item(from_client, _GAP_MARK, value, b"", ts)
            elif kind == EOF:
                self._item(from_client, _EOF_MARK, 0, b"", ts)
        return self._take()

    def retry(self, now_ns: int) -> list[Plain]:
        """The key log grew (or time passed): decrypt what waited, give up when too old."""
        if self._held and self.failed is None:
            if self.config.keys.generation != self._gen:
                self._release()
            self._check_wait(now_ns)
        return self._take()

    def close(self) -> list[Plain]:
        """End of the connection or of the input: last look for keys, then count."""
        if self._held and self.failed is None:
            self._release()
            if self._held:
                self._fail(self._wait_reason())
        if self.failed is None and not self.keyed:
            self._fail("handshake_incomplete")
        return self._take()

    def meta(self) -> dict[str, str]:
        """What the exchanges of this connection carry in ``Exchange.meta``."""
        m = {"scheme": "https"}
        if self.sni:
            m["tls.sni"] = self.sni
        if self.version:
            m["tls.version"] = version_name(self.version)
        if self.suite_name:
            m["tls.cipher"] = self.suite_name
        if self.alpn:
            m["tls.alpn"] = self.alpn
        if self.resumed:
            m["tls.resumed"] = "1"
        return m

    # -- records ------------------------------------------------------------------------------
    def _take(self) -> list[Plain]:
        out, self._out = self._out, []
        return out

    def _data(self, from_client: bool, data: bytes, ts: int) -> None:
        if self.failed is not None:
            self.stats.undecrypted_bytes += len(data)
            return
        d = self._c if from_client else self._s
        if not d.buf and not self.hello and from_client and data[:1] and data[0] & 0x80:
            self._fail("unsupported_version", len(data))  # SSLv2 ClientHello
            return
        buf = d.buf  # only unprocessed bytes (deleting from the front is cheap)
        buf += data
        while len(buf) >= 5:
            ctype = buf[0]
            version = (buf[1] << 8) | buf[2]
            length = (buf[3] << 8) | buf[4]
            if not 20 <= ctype <= 24 or buf[1] != 3 or length > _MAX_FRAGMENT:
                self._fail("bad_record")
                return
            end = 5 + length
            if end > len(buf):
                break
            frag = bytes(buf[5:end])
            del buf[:end]
            self.stats.records += 1
            self._item(from_client, ctype, version, frag, ts)
            if self.failed is not None:
                return

    def _item(self, from_client: bool, ctype: int, version: int, frag: bytes, ts: int) -> None:
        if self.failed is not None:
            if ctype == _EOF_MARK:
                self._out.append((from_client, EOF, 0, ts))
            return
        if self._held or not self._process(from_client, ctype, version, frag, ts):
            if not self._held:
                self._wait_since = ts
                self._gen = self.config.keys.generation
            self._held.append((from_client, ctype, version, frag, ts))
            self._held_bytes += len(frag)
            if self._held_bytes > self.config.max_held_bytes:
                self._fail("key_wait_overflow")

    def _release(self) -> None:
        self._gen = self.config.keys.generation
        held = self._held
        while held and self.failed is None:
            from_client, ctype, version, frag, ts = held[0]
            if not self._process(from_client, ctype, version, frag, ts):
                return
            held.popleft()
            self._held_bytes -= len(frag)
            self._wait_since = held[0][4] if held else 0

    def _check_wait(self, now: int) -> None:
        if self._held and now - self._wait_since > self.config.key_wait_s * 1e9:
            self._fail(self._wait_reason())

    def _wait_reason(self) -> str:
        return "resumed_without_secret" if self.resumed and not self.tls13 else "no_key"

    def _fail(self, reason: str, extra_bytes: int = 0) -> None:
        if self.failed is not None:
            return
        self.failed = reason
        st = self.stats
        setattr(st, reason, getattr(st, reason) + 1)
        st.undecrypted_bytes += extra_bytes + self._held_bytes + len(self._c.buf) + len(self._s.buf)
        for from_client, ctype, _v, _f, ts in self._held:
            if ctype == _EOF_MARK:
                self._out.append((from_client, EOF, 0, ts))
        self._held.clear()
        self._held_bytes = 0
        self._c.buf.clear()
        self._s.buf.clear()

    def _process(self, from_client: bool, ctype: int, version: int, frag: bytes, ts: int) -> bool:
        """Handle one record (or gap/EOF marker); False: its key is not known yet."""
        if ctype == _EOF_MARK:
            self._out.append((from_client, EOF, 0, ts))
            return True
        if ctype == _GAP_MARK:
            if self.app_data:
                self._out.append((from_client, GAP, version, ts))
            self._fail("gap")
            return True
        if not self.hello and not (from_client and ctype == _HANDSHAKE):
            self._fail("cut_before_handshake", len(frag))
            return True
        d = self._c if from_client else self._s
        if not d.encrypted or (self.tls13 and ctype != _APPDATA):
            if ctype == _HANDSHAKE:
                self._handshake(from_client, d, frag, ts)
            elif ctype == _CCS and not self.tls13:
                self._ccs(from_client, d)
            elif ctype == _APPDATA:
                if from_client and self._early_offered and not self.keyed:
                    # 0-RTT data: its suite is known at the ServerHello
                    if sum(len(f) for _, f, _ in self._early_held) < self.config.max_held_bytes:
                        self._early_held.append((version, frag, ts))
                    else:
                        self.stats.early_data_skipped += 1
                        self.stats.undecrypted_bytes += len(frag)
                else:
                    self._fail("cut_before_handshake", len(frag))
            return True
        cipher = d.cipher or self._cipher(d, from_client)
        if cipher is None:
            return False
        try:
            ctype, plain = cipher.decrypt(ctype, version, frag)
        except DecryptError:
            if from_client and self.tls13 and self._early_offered and not d.app:
                self._early_record(version, frag, ts)  # 0-RTT data under the early secret
                return True
            self._fail("decrypt_error", len(frag))
            return True
        if ctype == _APPDATA:
            self._app(from_client, plain, ts)
        elif ctype == _HANDSHAKE:
            self._handshake(from_client, d, plain, ts)
        elif ctype == _CCS and not self.tls13:
            self._ccs(from_client, d)
        return True

    def _early_record(self, version: int, frag: bytes, ts: int) -> None:
        """A 0-RTT record: decrypted with ``CLIENT_EARLY_TRAFFIC_SECRET`` when the key log has
        it and the server accepted it (a rejected one does not decrypt: skipped, counted)."""
        cipher = self._early_cipher
        if cipher is not None and not self._early_done:
            try:
                ctype, plain = cipher.decrypt(_APPDATA, version, frag)
            except DecryptError:
                pass
            else:
                if ctype == _APPDATA:
                    self._app(True, plain, ts)
                elif ctype == _HANDSHAKE and plain[:1] == b"\x05":
                    self._early_done = True  # EndOfEarlyData
                return
        self.stats.early_data_skipped += 1
        self.stats.undecrypted_bytes += len(frag)

    def _app(self, from_client: bool, plain: bytes, ts: int) -> None:
        if not plain:
            return
        if self.http2 and not self.parse_http2:
            self.stats.http2_bytes += len(plain)
            return
        if not self.app_data:
            self.app_data = True
            self.stats.decrypted += 1
        self.stats.plaintext_bytes += len(plain)
        self._out.append((from_client, DATA, plain, ts))

    # -- keys -----------------------------------------------------------------------------------
    def _cipher(self, d: _Dir, from_client: bool) -> RecordCipher | None:
        keys = self.config.keys
        if d.need13 is not None:
            assert self._suite is not None
            secret = keys.get(self.client_random, d.need13)
            if secret is None:
                return None
            d.secret = secret
            d.need13 = None
            d.cipher = tls13_cipher(
                secret, self._suite, aad_header=self._aad_header, prefix=self._prefix
            )
            return d.cipher
        p = d.need12
        if p is None:
            return None
        if p.ciphers is None:
            master = (
                keys.get(p.client_random, "CLIENT_RANDOM")
                or self.cache.get(b"id", p.client_session_id)
                or self.cache.get(b"tk", p.offered_ticket)
            )
            if master is None:
                return None
            p.master = master
            p.ciphers = tls12_key_block(
                master, p.client_random, p.server_random, p.suite, p.version
            )
            for c in p.ciphers:
                if isinstance(c, Cbc):
                    c.etm = p.etm
            self.cache.put(b"id", p.server_session_id, master)
            self.cache.put(b"tk", p.new_ticket, master)
        d.cipher = p.ciphers[0] if from_client else p.ciphers[1]
        return d.cipher

    def _ccs(self, from_client: bool, d: _Dir) -> None:
        p = self._pending
        if p is None:
            if from_client and self.hello and not self.keyed:
                return  # TLS 1.3 middlebox-compatibility CCS before the ServerHello (0-RTT)
            self._fail("cut_before_handshake")
            return
        if not from_client and not self._server_done and not self.resumed:
            self.resumed = True  # abbreviated handshake: the server's CCS comes first
            self.stats.resumed += 1
        d.need12 = p
        d.cipher = None
        d.encrypted = True

    # -- handshake ----------------------------------------------------------------------------
    def _handshake(self, from_client: bool, d: _Dir, data: bytes, ts: int) -> None:
        hs = d.hs + data if d.hs else data
        pos = 0
        while len(hs) - pos >= 4 and self.failed is None:
            t = hs[pos]
            n = int.from_bytes(hs[pos + 1 : pos + 4], "big")
            if n > _MAX_HANDSHAKE:
                self._fail("bad_record")
                return
            if len(hs) - pos - 4 < n:
                break
            body = hs[pos + 4 : pos + 4 + n]
            pos += 4 + n
            try:
                self._message(from_client, d, t, body)
            except _Bad:
                self._fail("bad_record")
                return
        d.hs = hs[pos:]

    def _message(self, from_client: bool, d: _Dir, t: int, body: bytes) -> None:
        if from_client and t == 1:
            self._client_hello(body)
        elif not from_client and t == 2:
            self._server_hello(body)
        elif not from_client and t == 14:
            self._server_done = True
        elif not from_client and t == 4 and not self.tls13 and self._pending is not None:
            r = _Reader(body)
            r.take(4)
            p = self._pending
            p.new_ticket = r.vec(2)
            if p.master is not None:
                self.cache.put(b"tk", p.new_ticket, p.master)
        elif not from_client and t == 8 and self.tls13:
            ext = _extensions(_Reader(body))
            if 16 in ext:
                self._set_alpn(ext[16])
        elif t == 20 and self.tls13 and not d.app and d.cipher is not None:
            # Finished: this side's application traffic secret is next
            d.need13 = "CLIENT_TRAFFIC_SECRET_0" if from_client else "SERVER_TRAFFIC_SECRET_0"
            d.cipher = None
            d.app = True
        elif t == 24 and self.tls13 and d.secret is not None:
            assert self._suite is not None
            d.secret = tls13_next_secret(d.secret, self._suite, self._prefix)
            d.cipher = tls13_cipher(
                d.secret, self._suite, aad_header=self._aad_header, prefix=self._prefix
            )
            self.stats.key_updates += 1

    def _client_hello(self, body: bytes) -> None:
        r = _Reader(body)
        r.take(2)
        random = r.take(32)
        if self.keyed and not self.tls13:
            self.stats.renegotiations += 1
        self.hello = True
        self.client_random = random
        self._client_session_id = r.vec(1)
        r.vec(2)  # cipher suites
        r.vec(1)  # compression methods
        ext = _extensions(r)
        self._early_offered = 42 in ext
        self._offered_ticket = ext.get(35, b"")
        if 0 in ext:
            sr = _Reader(ext[0])
            lr = _Reader(sr.vec(2))
            while lr.rest():
                kind = lr.num(1)
                name = lr.vec(2)
                if kind == 0:
                    self.sni = name.decode("ascii", "replace")
                    break

    def _server_hello(self, body: bytes) -> None:
        if not self.hello:
            raise _Bad("ServerHello before ClientHello")
        r = _Reader(body)
        version = r.num(2)
        random = r.take(32)
        if random == _HRR_RANDOM:
            # HelloRetryRequest (TLS 1.3 only): a second ClientHello follows, with the same
            # client random, maybe after a compatibility ChangeCipherSpec
            self.tls13 = True
            return
        old_draft = version >> 8 == 0x7F and (version & 0xFF) < 22
        sid = b"" if old_draft else r.vec(1)
        suite_id = r.num(2)
        if not old_draft:
            r.take(1)  # compression
        ext = _extensions(r)
        if 43 in ext and len(ext[43]) >= 2:
            version = int.from_bytes(ext[43][:2], "big")
        self.version = version
        self._server_done = False
        suite = SUITES.get(suite_id)
        self.suite_name = suite.name if suite is not None else f"0x{suite_id:04x}"
        if 16 in ext:
            self._set_alpn(ext[16])
        self.keyed = True
        if version == 0x0304 or version >> 8 == 0x7F:
            self.tls13 = True
            draft = version & 0xFF if version >> 8 == 0x7F else 0
            self._prefix = b"TLS 1.3, " if draft and draft < 20 else b"tls13 "
            self._aad_header = draft == 0 or draft >= 25
            if suite is None or not suite.tls13:
                self._fail("unsupported_suite")
                return
            self._suite = suite
            if 41 in ext:
                self.resumed = True
                self.stats.resumed += 1
            self._s.need13 = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
            self._c.need13 = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
            for d in (self._c, self._s):
                d.encrypted = True
                d.cipher = None
            if self._early_offered:
                early = self.config.keys.get(self.client_random, "CLIENT_EARLY_TRAFFIC_SECRET")
                if early is not None:
                    self._early_cipher = tls13_cipher(
                        early, suite, aad_header=self._aad_header, prefix=self._prefix
                    )
                held, self._early_held = self._early_held, []
                for version, frag, ts in held:
                    self._early_record(version, frag, ts)
            return
        if not 0x0301 <= version <= 0x0303:
            self._fail("unsupported_version")
            return
        if suite is None or suite.tls13:
            self._fail("unsupported_suite")
            return
        if sid and sid == self._client_session_id:
            self.resumed = True
            self.stats.resumed += 1
        self._pending = _Params(
            self.client_random,
            random,
            suite,
            version,
            22 in ext,
            self._client_session_id,
            sid,
            self._offered_ticket,
        )

    def _set_alpn(self, data: bytes) -> None:
        protos = _alpn_list(data)
        if protos:
            self.alpn = protos[0]
            if self.alpn == "h2" and not self.http2:
                self.http2 = True
                if not self.parse_http2:
                    self.stats.http2 += 1
