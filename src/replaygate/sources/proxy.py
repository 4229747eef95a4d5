"""The recording reverse proxy: forward every byte unchanged, record a copy.

Each client connection gets its own upstream connection (so keep-alive, pipelining and
``Expect: 100-continue`` behave exactly as without the proxy); chunks are forwarded as they
arrive (asyncio Protocols with explicit flow control, see ``_proxy_conn``): bodies stream
both ways, nothing waits for a whole message. A copy of
each chunk goes to a :class:`~replaygate.protocol.h1recorder.ConnectionRecorder` that cuts it
into exchanges with exact raw bytes. Upgrades (WebSocket) and CONNECT become blind tunnels
once the upstream agrees; their handshake is recorded.

Recording never stops traffic: exchanges go through a bounded queue (``_recording``)
(stages run in its writer thread; with no stages and a ``.gor`` output the loop encodes the
records and the writer thread only writes batches, see ``RecordingSink._run_encoded``). The writer shares the interpreter (the GIL) with the
event loop, so under a load that keeps the loop busy it gets too few turns: when more than
:data:`CATCH_UP` exchanges wait, the loop lends it a few milliseconds (counted
``recorder_waits``), which slows traffic a little instead of losing recordings. A writer
that makes no progress while lent the time (a stuck disk, a slow sink) is not waited for
again until it catches up: recordings are then dropped whole and counted as
``dropped_recordings``, while traffic keeps flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import CaptureError, ConfigError
from ..model import Exchange
from ..pipeline import Sink, Stage
from ..protocol.h1rules import Limits
from ._proxy_conn import ClientSide, _Shared
from ._proxy_h2_front import GRPC_NEEDS_HTTP2, H2Front
from ._recording import RecordingSink

__all__ = ["GRPC_NEEDS_HTTP2", "ProxyConfig", "ProxyServer", "parse_hostport"]


@dataclass
class ProxyConfig:
    """Settings of :class:`ProxyServer` (``replaygate proxy`` flags map one to one)."""

    upstream: str = ""
    listen: str = "127.0.0.1:8080"
    tls_cert: str | None = None
    tls_key: str | None = None
    max_queue: int = 10_000
    upstream_insecure: bool = False  # https upstream: skip certificate verification
    upstream_ca: str | None = None  # https upstream: CA bundle to trust
    connect_timeout_s: float = 10.0
    max_record_bytes: int = 256 << 20  # per message; longer ones are recorded cut, flagged
    max_line_bytes: int = 8 << 10  # request line, header/trailer line, chunk-size line
    max_header_bytes: int = 64 << 10  # all header lines of a request (and all its trailers)
    drain_timeout_s: float = 5.0  # on stop, how long open connections may finish
    tls_handshake_timeout_s: float = 10.0  # a client that does not finish it is counted
    http2: bool = True  # accept HTTP/2: ALPN h2 on TLS, h2c (prior knowledge, Upgrade)
    upstream_http2: bool = False  # HTTP/2 clients' streams go upstream over HTTP/2
    max_concurrent_streams: int = 100  # per HTTP/2 client connection


def parse_hostport(text: str, *, name: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or ``:PORT`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ConfigError(f"{name}: expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(f"{name}: bad port in {text!r}") from None
    if not 0 <= p <= 65535:
        raise ConfigError(f"{name}: port {p} out of range")
    return host, p


def _parse_upstream(url: str) -> tuple[str, int, bool]:
    u = urlsplit(url if "://" in url else "http://" + url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(f"--upstream: expected http(s)://HOST[:PORT], got {url!r}")
    tls = u.scheme == "https"
    try:
        port = u.port or (443 if tls else 80)
    except ValueError:
        raise ConfigError(f"--upstream: bad port in {url!r}") from None
    return u.hostname, port, tls


class ProxyServer:
    """A recording reverse proxy running its own event loop in a background thread.

    ``start()`` returns once the socket is bound (``port`` is then the real port);
    ``stop()`` stops accepting, lets open connections finish for ``drain_timeout_s``,
    records what completed, and closes the sink.
    """

    def __init__(self, config: ProxyConfig, sink: Sink, *, stages: Sequence[Stage] = ()) -> None:
        self.config = config
        if not 256 <= config.max_line_bytes <= 1 << 20:
            raise ConfigError("--max-line-size: must be between 256b and 1mb")
        if not config.max_line_bytes <= config.max_header_bytes <= 64 << 20:
            raise ConfigError("--max-header-size: must be between --max-line-size and 64mb")
        self._host, self._port = parse_hostport(config.listen)
        self._up_host, self._up_port, up_tls = _parse_upstream(config.upstream)
        self._server_ssl = self._make_server_ssl()
        self._up_ssl: ssl.SSLContext | None = self._make_client_ssl() if up_tls else None
        h = f"[{self._up_host}]" if ":" in self._up_host else self._up_host
        # recorded with every exchange (meta "upstream"): the replay safety rule needs it
        self.upstream_url = f"{'https' if up_tls else 'http'}://{h}:{self._up_port}"
        self._recording = RecordingSink(sink, stages, max_queue=config.max_queue, encode_here=True)
        self._catch_up = max(1, min(CATCH_UP, config.max_queue // 2))
        self._writer_stalled = False
        self.port = self._port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[ClientSide] = set()
        self._h2: H2Front | None = None
        self._shared = _Shared()
        self._shared.connecting = set()
        self._stopped = False
        self._counts: dict[str, int] = {
            "connections": 0,
            "active_connections": 0,
            "forwarded": 0,
            "requests_without_response": 0,
            "tunnels": 0,
            "bytes_from_clients": 0,
            "bytes_from_upstream": 0,
            "errors": 0,
            "upstream_connect_errors": 0,
            "tls_handshake_errors": 0,
            "rejected_requests": 0,
            "unframed_responses": 0,
            "closed_idle_on_stop": 0,
            "aborted_on_stop": 0,
            "recorder_waits": 0,
        }

    # -- TLS -------------------------------------------------------------------------------
    def _make_server_ssl(self) -> ssl.SSLContext | None:
        c = self.config
        if not c.tls_cert and not c.tls_key:
            return None
        if not c.tls_cert:
            raise ConfigError("--tls-key given without --tls-cert")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_alpn_protocols(["h2", "http/1.1"] if c.http2 else ["http/1.1"])
        try:
            ctx.load_cert_chain(c.tls_cert, c.tls_key)
        except FileNotFoundError as e:
            raise ConfigError(f"--tls-cert/--tls-key: {e.filename}: file not found") from None
        except (ssl.SSLError, OSError) as e:
            raise ConfigError(f"--tls-cert/--tls-key: cannot load certificate/key: {e}") from None
        return ctx

    def _make_client_ssl(self, alpn: Sequence[str] = ("http/1.1",)) -> ssl.SSLContext:
        c = self.config
        try:
            ctx = ssl.create_default_context(cafile=c.upstream_ca)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"--upstream-ca: cannot load {c.upstream_ca}: {e}") from None
        ctx.set_alpn_protocols(list(alpn))
        if c.upstream_insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = _new_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                try:
                    self._server = loop.run_until_complete(self._listen())
                except BaseException as e:
                    failure.append(e)
                    return
                finally:
                    ready.set()
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="replaygate-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._recording.close()
            e = failure[0]
            if isinstance(e, OSError):
                raise CaptureError(
                    f"--listen {self.config.listen}: cannot listen: {e.strerror or e}"
                ) from None
            raise e

    async def _listen(self) -> asyncio.base_events.Server:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        sh = self._shared
        sh.up_host, sh.up_port, sh.up_ssl = self._up_host, self._up_port, self._up_ssl
        sh.connect_timeout = self.config.connect_timeout_s
        sh.upstream_url = self.config.upstream
        sh.max_record = self.config.max_record_bytes
        sh.server_ssl = self._server_ssl
        sh.tls_handshake_timeout = self.config.tls_handshake_timeout_s
        sh.limits = Limits(
            max_line=self.config.max_line_bytes, max_head=self.config.max_header_bytes
        )
        sh.counts = self._counts
        sh.conns = self._conns
        sh.record = self._record
        if self._recording.whole_encoder(None, {}) is not None:
            meta = {"upstream": self.upstream_url}
            sh.encoder_for = lambda conn: self._recording.whole_encoder(conn, meta)
            sh.record_encoded = self._record_encoded
        factory: Any = lambda: ClientSide(sh)  # noqa: E731
        if self.config.http2:
            self._h2 = H2Front(
                sh,
                max_streams=self.config.max_concurrent_streams,
                upstream_http2=self.config.upstream_http2,
                up_tls=self._up_ssl is not None,
                make_up_ssl=self._make_client_ssl,
            )
            sh.h2_accept = self._h2.accept_tls
            if self._server_ssl is None:
                factory = self._h2.sniffer
        server = await loop.create_server(
            factory,
            self._host,
            self._port,
            reuse_address=True,
            backlog=1024,
        )
        sock = server.sockets[0]
        self.port = int(sock.getsockname()[1])
        return server

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Count what asyncio would log (failed TLS handshakes, resets) instead of printing
        tracebacks for every bad client."""
        exc = context.get("exception")
        if isinstance(exc, ssl.SSLError) or "SSL" in str(context.get("message", "")):
            self._counts["tls_handshake_errors"] += 1
        else:
            self._counts["errors"] += 1

    def stop(self) -> None:
        """Graceful: stop accepting, let connections finish, flush recordings, close sink."""
        if self._stopped:
            return
        self._stopped = True
        loop = self._loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                fut.result(self.config.drain_timeout_s + 10)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
        self._recording.close()

    async def _shutdown(self) -> None:
        sh = self._shared
        if self._server is not None:
            self._server.close()
        # idle keep-alive connections go now; those with a request in flight may finish
        deadline = time.monotonic() + self.config.drain_timeout_s
        h2 = self._h2.conns if self._h2 is not None else set()
        if self._h2 is not None:
            self._h2.drain()  # HTTP/2: GOAWAY, close once the streams in flight are done
        while (self._conns or h2) and time.monotonic() < deadline:
            for c in list(self._conns):
                if c.up is not None and c.rec.idle and not c.rec.req.tunnelled:
                    self._counts["closed_idle_on_stop"] += 1
                    c.close()
            if self._conns:
                await asyncio.sleep(0.02)
        for t in list(sh.connecting):
            t.cancel()
        for c in list(self._conns):
            self._counts["aborted_on_stop"] += 1
            c.abort()
        if self._h2 is not None:
            self._h2.abort()
        # the event loop may only close once every transport has really gone
        for _ in range(200):
            if sh.open_transports <= 0 and not sh.connecting:
                break
            await asyncio.sleep(0.01)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def __enter__(self) -> ProxyServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stats(self) -> dict[str, int]:
        """Counters: forwarded, recorded, dropped_recordings, errors, connections, ..."""
        out = dict(self._counts)
        out.update(self._recording.stats())
        return out

    @property
    def recording_failure(self) -> str | None:
        """One line saying why recording stopped (disk full...), once it has; traffic is
        still forwarded and later recordings are counted ``lost_on_sink_error``."""
        err = self._recording.failed
        if err is None:
            return None
        what = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return (
            f"writing {self._recording.name} failed ({what}); still forwarding traffic, "
            "recordings from now on are lost (counted lost_on_sink_error)"
        )

    def _tunnel(self) -> None:
        self._counts["tunnels"] += 1

    def _record(self, ex: Exchange) -> None:
        self._counts["forwarded"] += 1
        ex.meta["upstream"] = self.upstream_url
        rs = self._recording
        rs.write(ex)
        if len(rs._q) > self._catch_up:
            if not self._writer_stalled:
                self._let_writer_catch_up()
        elif self._writer_stalled:
            self._writer_stalled = False

    def _record_encoded(self, parts: list[bytes]) -> None:
        """:meth:`_record` of a plain exchange the loop encoded (``_proxy_conn``)."""
        self._counts["forwarded"] += 1
        rs = self._recording
        rs.write_encoded(parts)
        if len(rs._q) > self._catch_up:
            if not self._writer_stalled:
                self._let_writer_catch_up()
        elif self._writer_stalled:
            self._writer_stalled = False

    def _let_writer_catch_up(self) -> None:
        """Lend the writer thread the interpreter until half the backlog is written (at most
        a few ms); if it wrote nothing meanwhile, stop lending until it has caught up."""
        rs = self._recording
        before = rs.pending
        self._counts["recorder_waits"] += 1
        rs.wait_below(self._catch_up // 2, CATCH_UP_WAIT_S)
        if rs.pending >= before:
            self._writer_stalled = True


# queued recordings beyond which the event loop lets the writer catch up (a few ms of work)
CATCH_UP = 512
CATCH_UP_WAIT_S = 0.005


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        loop: Any = uvloop.new_event_loop()
        return loop  # type: ignore[no-any-return]
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
