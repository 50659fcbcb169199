"""`assistant ingest`: files and folders into the knowledge base, with a progress bar of files and
chunks."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.cli.app import App, friendly_errors, pass_app
from assistant.demo import HELP_CENTRE
from knowledge.errors import UnreadableDocument
from knowledge.loaders import iter_files


def _count_files(targets: list[Path]) -> int:
    total = 0
    for target in targets:
        try:
            total += sum(1 for _ in iter_files([target]))
        except UnreadableDocument:
            continue
    return total


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--demo", is_flag=True, help="Ingest the bundled Northwind Shop help centre.")
@pass_app
def ingest(app: App, paths: tuple[Path, ...], demo: bool) -> None:
    """Add files or folders (Markdown, text, HTML, PDF, DOCX, FAQ .csv/.jsonl) to the knowledge
    base.

    Folders are read recursively; unchanged files are skipped (content hashes), changed files
    replace their chunks, unreadable files are reported and the rest goes on.
    """
    targets = [*paths, *([HELP_CENTRE] if demo else [])]
    if not targets:
        raise click.UsageError("give at least one PATH, or --demo")
    console = Console(stderr=True)
    with friendly_errors():
        knowledge = app.components.knowledge
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files, {task.fields[chunks]} chunks"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("ingesting", total=_count_files(targets), chunks=0)
            added = 0

            def advance(name: str, chunks: int) -> None:
                nonlocal added
                added += chunks
                progress.update(task, advance=1, description=name[:40], chunks=added)

            report = knowledge.ingest(targets, progress=advance)
    for failure in report.failed:
        console.print(f"[yellow]skipped[/]: {failure}", markup=True, highlight=False)
    documents, chunks = knowledge.count()
    click.echo(
        f"ingested {report.files - report.unchanged} file(s), {report.chunks} chunk(s); "
        f"{report.unchanged} unchanged; knowledge base: {documents} documents, {chunks} chunks "
        f"(version {report.kb_version})"
    )
    if report.failed and report.files == 0:
        raise SystemExit(1)
