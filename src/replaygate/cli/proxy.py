"""``replaygate proxy``: a recording reverse proxy in front of an upstream.

For when raw capture is not possible (no root, TLS terminated in the app): clients talk to
the proxy, every byte is forwarded unchanged and streamed both ways, and a copy is recorded.
SIGINT/SIGTERM: stop accepting, let open connections finish, flush, print counters, exit 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from ..config import parse_size
from ..runner import ProxyInput, Run, RunConfig
from ..stages.defaults import TrafficOptions
from ._flags import bounded_duration, flags
from ._live import (
    LiveFlags,
    OutputFlags,
    live_options,
    output_options,
    run_live,
)

if TYPE_CHECKING:  # the proxy module loads the event loop and TLS; only for typing
    from ..sources.proxy import ProxyConfig

__all__ = ["command"]


@click.command("proxy", context_settings={"help_option_names": ["-h", "--help"]})
@flags("listen", "upstream", "record_output")
@output_options
@flags(
    "tls_cert",
    "tls_key",
    "upstream_insecure",
    "upstream_ca",
    "accept_http2",
    "upstream_http2",
    "max_concurrent_streams",
    "max_queue",
    "max_line_size",
    "max_request_header_size",
    "duration",
)
@live_options(buffer=False)
def command(
    upstream: str,
    output: OutputFlags,
    duration: str | None,
    live: LiveFlags,
    traffic: TrafficOptions,
    **proxy: Any,
) -> None:
    """Forward clients to --upstream unchanged and record every exchange into FILE.

    Bodies stream both ways, keep-alive and pipelining are kept, WebSockets and CONNECT
    pass through as tunnels (their handshake is recorded). If the recorder falls behind,
    traffic still flows and dropped recordings are counted. Requests whose framing is
    ambiguous (Content-Length with Transfer-Encoding, obs-fold, ...) or over the size
    limits are refused (400/414/431, counted) and never forwarded.

    \b
    Examples:
      replaygate proxy --listen :8080 --upstream http://127.0.0.1:9000 -o traffic.gor
      replaygate proxy --listen 0.0.0.0:443 --tls-cert site.pem --tls-key site.key \\
          --upstream http://127.0.0.1:8080 -o prod.gor.zst --stats 30s
      replaygate proxy --listen :50051 --upstream http://127.0.0.1:50052 \\
          --upstream-http2 -o grpc.gor
    """
    out = output.output()
    until = bounded_duration(duration, "--duration") if duration else None
    line = live.stats_line("proxy")
    cfg = _proxy_config(upstream, proxy)
    run = Run(RunConfig(ProxyInput(cfg, until), traffic, live.toml(), output=out))

    def ready() -> None:
        host = cfg.listen.rpartition(":")[0] or "0.0.0.0"
        where = f"{'https' if cfg.tls_cert else 'http'}://{host}:{run.port}"
        click.echo(
            f"replaygate: proxy on {where} -> {upstream}, recording to {output.path}", err=True
        )

    run_live(run, line, live.metrics_port, ready, metrics_when_ready=True)


def _proxy_config(upstream: str, flags: Mapping[str, Any]) -> ProxyConfig:
    """The ProxyConfig of the listening, TLS, HTTP/2 and size flags."""
    from ..sources.proxy import ProxyConfig

    return ProxyConfig(
        upstream=upstream,
        listen=flags["listen"],
        tls_cert=flags["tls_cert"],
        tls_key=flags["tls_key"],
        max_queue=flags["max_queue"],
        upstream_insecure=flags["upstream_insecure"],
        upstream_ca=flags["upstream_ca"],
        http2=flags["http2"],
        upstream_http2=flags["upstream_http2"],
        max_concurrent_streams=flags["max_concurrent_streams"],
        max_line_bytes=parse_size(flags["max_line_size"], name="--max-line-size"),
        max_header_bytes=parse_size(flags["max_header_size"], name="--max-header-size"),
    )
