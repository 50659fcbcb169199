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
    "--update-docs",
    is_flag=True,
    help="Also rewrite the `assistant bench` section of --doc with this run's goals.",
)
@click.option(
    "--doc",
    type=click.Path(path_type=Path),
    default=Path("docs/benchmarks.md"),
    show_default=True,
    help="The page --update-docs rewrites (relative to the current folder).",
)
@click.option("--no-doc", is_flag=True, hidden=True, help="Ignored: the page is left by default.")
def bench(
    suites: tuple[str, ...], quick: bool, out: Path, update_docs: bool, doc: Path, no_doc: bool
) -> None:
    """Run benchmark SUITES (all by default); write OUT/results.json, report.md and plot.png.

    The documentation page is left alone unless --update-docs is given: a run from another folder
    must not create or rewrite a docs/benchmarks.md there.

    The webhook suite also starts `assistant serve --workers 1` and `--workers 2` (stub LM) on fresh
    databases of the PostgreSQL server at ASSISTANT_BENCH_POSTGRES
    (postgresql://postgres@127.0.0.1:5432 by default), dropped afterwards; without one it keeps
    only its in-process figures.
    """
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
            chosen, quick=quick, out=out, progress=progress, doc=doc if update_docs else None
        )
    click.echo((out / "report.md").read_text())
    if results.get("errors"):
        raise SystemExit(1)
