"""`assistant ingest`: files and folders into the knowledge base."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.cli.app import App, friendly_errors, pass_app
from assistant.demo import HELP_CENTRE
from knowledge.loaders import iter_files


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--demo", is_flag=True, help="Ingest the bundled Northwind Shop help centre.")
@pass_app
def ingest(app: App, paths: tuple[Path, ...], demo: bool) -> None:
    """Add files or folders (Markdown, text) to the knowledge base; unchanged files are skipped."""
    targets = [*paths, *([HELP_CENTRE] if demo else [])]
    if not targets:
        raise click.UsageError("give at least one PATH, or --demo")
    console = Console(stderr=True)
    with friendly_errors():
        files = list(iter_files(targets))
        knowledge = app.components.knowledge
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("ingesting", total=len(files))

            def advance(name: str, chunks: int) -> None:
                progress.update(task, advance=1, description=f"{name} (+{chunks} chunks)")

            report = knowledge.ingest(targets, progress=advance)
    for failure in report.failed:
        console.print(f"[yellow]skipped[/]: {failure}")
    documents, chunks = knowledge.count()
    click.echo(
        f"ingested {report.files - report.unchanged} file(s), {report.chunks} chunk(s); "
        f"{report.unchanged} unchanged; knowledge base: {documents} documents, {chunks} chunks"
    )
    if report.failed and report.files == 0:
        raise SystemExit(1)
