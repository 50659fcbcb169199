"""`assistant bench`: every figure that matters, each beside its baseline."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from assistant.cli.app import friendly_errors


@click.command()
@click.argument(
    "suites", nargs=-1, type=click.Choice(["retrieval", "ingest", "lm", "turn", "webhook"])
)
@click.option(
    "--quick", is_flag=True, help="Smaller sizes; finishes within about 5 minutes on 2 cores."
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("docs/bench"), show_default=True
)
@click.option(
    "--doc",
    type=click.Path(path_type=Path),
    default=Path("docs/benchmarks.md"),
    show_default=True,
    help="Page whose `assistant bench` section is rewritten with this run's goals.",
)
@click.option("--no-doc", is_flag=True, help="Leave the page alone.")
def bench(suites: tuple[str, ...], quick: bool, out: Path, doc: Path, no_doc: bool) -> None:
    """Run benchmark SUITES (all by default); write OUT/results.json, report.md and plot.png."""
    from assistant.wiring import quiet_model_libraries
    from benchmarks.suite import SUITES, run_suites

    quiet_model_libraries()
    console = Console(stderr=True)
    chosen = list(suites) or list(SUITES)
    with friendly_errors(), console.status("benchmarking…") as status:

        def progress(text: str) -> None:
            status.update(text)
            console.log(text)

        results = run_suites(
            chosen, quick=quick, out=out, progress=progress, doc=None if no_doc else doc
        )
    click.echo((out / "report.md").read_text())
    if results.get("errors"):
        raise SystemExit(1)
