"""``replaygate proxy``: a recording reverse proxy in front of an upstream.

For when raw capture is not possible (no root, TLS terminated in the app): clients talk to
the proxy, every byte is forwarded unchanged and streamed both ways, and a copy is recorded.
SIGINT/SIGTERM: stop accepting, let open connections finish, flush, print counters, exit 0.
"""

from __future__ import annotations

import time

import click

from ..config import parse_duration, parse_size
from ..errors import ConfigError
from ..stages.defaults import TrafficOptions
from ._output import max_queue_option
from .capture import (
    StatsLine,
    check_output_flags,
    format_stats,
    metrics_server,
    open_output,
    output_options,
    overwrite_options,
    parse_stats_interval,
    remove_if_empty,
    run_options,
    stop_on_signals,
    traffic_stages,
    with_traffic_options,
)

__all__ = ["command"]


@click.command("proxy", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where clients connect ([::]:8080 or 0.0.0.0:8080 for all).",
)
@click.option(
    "--upstream",
    required=True,
    metavar="URL",
    help="The real server: http://HOST:PORT or https://HOST:PORT.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    metavar="FILE",
    help="Where to record (.gor[.gz|.zst], .har, .jsonl). An existing non-empty FILE is "
    "refused unless --force or --append.",
)
@output_options
@overwrite_options
@click.option(
    "--tls-cert",
    default=None,
    metavar="PEM",
    help="Terminate TLS on the listening side with this certificate (chain).",
)
@click.option(
    "--tls-key", default=None, metavar="PEM", help="Private key for --tls-cert (if not inside it)."
)
@click.option(
    "--upstream-insecure",
    is_flag=True,
    default=False,
    help="Do not verify the https upstream's certificate.",
)
@click.option(
    "--upstream-ca",
    default=None,
    metavar="PEM",
    help="CA bundle to verify the https upstream with.",
)
@click.option(
    "--http2/--no-http2",
    default=True,
    show_default=True,
    help="Accept HTTP/2 clients: ALPN h2 with --tls-cert, h2c by prior knowledge or "
    "Upgrade: h2c without; each stream is recorded as one HTTP/2 exchange.",
)
@click.option(
    "--upstream-http2",
    is_flag=True,
    default=False,
    help="Send HTTP/2 clients' streams upstream over HTTP/2 (h2c, or ALPN h2 for https; "
    "needed for gRPC). Default: HTTP/1.1, or h2 when an https upstream offers it by ALPN.",
)
@click.option(
    "--max-concurrent-streams",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10_000),
    metavar="N",
    help="Streams an HTTP/2 client may have open at once on one connection.",
)
@max_queue_option("Recordings waiting for the writer", "; traffic is never held")
@click.option(
    "--max-line-size",
    default="8kb",
    show_default=True,
    metavar="SIZE",
    help="Longest request line, header/trailer line or chunk-size line a client may send "
    "(414/431/400 and closed beyond; counted rejected_<reason>).",
)
@click.option(
    "--max-header-size",
    default="64kb",
    show_default=True,
    metavar="SIZE",
    help="Most header bytes (and trailer bytes) in one request (431 and closed beyond).",
)
@click.option("--duration", default=None, metavar="DURATION", help="Stop after DURATION.")
@run_options(stats_default=None, buffer=False)
@with_traffic_options
def command(
    listen: str,
    upstream: str,
    output: str,
    max_bytes: str | None,
    max_seconds: str | None,
    force: bool,
    append: bool,
    tls_cert: str | None,
    tls_key: str | None,
    upstream_insecure: bool,
    upstream_ca: str | None,
    http2: bool,
    upstream_http2: bool,
    max_concurrent_streams: int,
    max_queue: int,
    max_line_size: str,
    max_header_size: str,
    duration: str | None,
    stats: str | None,
    metrics_port: str | None,
    config_path: str | None,
    traffic: TrafficOptions,
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
    from ..sources.proxy import GRPC_NEEDS_HTTP2, ProxyConfig, ProxyServer

    check_output_flags(output, max_bytes, max_seconds, force=force, append=append)
    if max_queue <= 0:
        raise ConfigError("--max-queue: must be positive")
    until = parse_duration(duration, name="--duration") if duration else None
    interval = parse_stats_interval(stats)
    cfg = ProxyConfig(
        upstream=upstream,
        listen=listen,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_queue=max_queue,
        upstream_insecure=upstream_insecure,
        upstream_ca=upstream_ca,
        http2=http2,
        upstream_http2=upstream_http2,
        max_concurrent_streams=max_concurrent_streams,
        max_line_bytes=parse_size(max_line_size, name="--max-line-size"),
        max_header_bytes=parse_size(max_header_size, name="--max-header-size"),
    )
    stages = traffic_stages(traffic, config_path)
    sink = open_output(output, max_bytes, max_seconds, force=force, append=append)
    try:
        server = ProxyServer(cfg, sink, stages=stages)
        server.start()
    except Exception:
        remove_if_empty(output)
        raise
    line = StatsLine(interval, "proxy")
    metrics = None
    try:
        metrics = metrics_server(metrics_port, lambda: server.stats)
        scheme = "https" if tls_cert else "http"
        host = cfg.listen.rpartition(":")[0] or "0.0.0.0"
        click.echo(
            f"replaygate: proxy on {scheme}://{host}:{server.port} -> {upstream}, "
            f"recording to {output}",
            err=True,
        )
        deadline = time.monotonic() + until if until else None
        reported = grpc_warned = False
        with stop_on_signals() as stop:
            while not stop.wait(0.2):
                line(server.stats)
                failure = server.recording_failure
                if failure is not None and not reported:
                    reported = True
                    click.echo(f"replaygate: proxy: {failure}", err=True)
                if server.stats.get("grpc_needs_http2_upstream") and not grpc_warned:
                    grpc_warned = True
                    click.echo(f"replaygate: proxy: {GRPC_NEEDS_HTTP2}", err=True)
                if deadline is not None and time.monotonic() >= deadline:
                    break
    finally:
        if metrics is not None:
            metrics.close()
        try:
            server.stop()  # raises if the output failed: the counters come first
        finally:
            click.echo(f"replaygate: proxy: {format_stats(server.stats)}", err=True)
