"""``replaygate demo``: the whole story in under a minute, on loopback only."""

from __future__ import annotations

import click

from ._flags import flags
from ._report_options import print_verdict


@click.command("demo")
@flags("out_dir", "strict", "requests", "seed")
def command(out_dir: str, strict: bool, requests: int, seed: int) -> None:
    """Run the end-to-end demo: a "production" app and a candidate with planted regressions
    (a changed JSON field, a slower endpoint, a new 500 on an edge case, a harmless volatile
    field), traffic captured by the recording proxy, replayed to the candidate and to a
    baseline copy, compared and judged. Prints the verdict and where the report is."""
    from ..demo import run_demo

    res = run_demo(out_dir, requests=requests, seed=seed, echo=click.echo)
    click.echo("")
    print_verdict(res.summary, [])
    html = res.out_dir / "report.html"
    click.echo(
        f"  report: {html.resolve()}  (open it in a browser; JSON, Markdown and JUnit next to it)"
    )
    click.echo(
        f"  re-judge later: replaygate compare {res.out_dir / 'replayed.gor'} --config {res.out_dir / 'replaygate.toml'}"
    )
    click.get_current_context().exit(1 if strict and not res.passed else 0)
