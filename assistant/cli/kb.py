"""`assistant kb`: list, stats, remove and rebuild the knowledge base."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.cli.app import App, friendly_errors, pass_app


@click.group()
def kb() -> None:
    """Inspect and maintain the knowledge base."""


@kb.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per document.")
@pass_app
def list_documents(app: App, as_json: bool) -> None:
    """Every ingested document: chunks, kind, version, source."""
    with friendly_errors():
        documents = app.components.knowledge.documents()
    for doc in documents:
        if as_json:
            click.echo(
                json.dumps(
                    {**asdict(doc), "ingested_at": doc.ingested_at.isoformat()}, ensure_ascii=False
                )
            )
        else:
            click.echo(
                f"{doc.chunks:6d}  {doc.kind:8s}  v{doc.kb_version:<5d} {doc.title}  ({doc.source})"
            )
    if not as_json:
        click.echo(f"{len(documents)} document(s)", err=True)


@kb.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@pass_app
def stats(app: App, as_json: bool) -> None:
    """Documents, chunks, version, index structure and size, embedding model."""
    with friendly_errors():
        figures = app.components.knowledge.stats()
    if as_json:
        click.echo(json.dumps(asdict(figures)))
        return
    for name, value in asdict(figures).items():
        click.echo(f"{name.replace('_', ' '):16s} {value}")


@kb.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--missing", is_flag=True, help="Also remove documents whose file no longer exists.")
@pass_app
def remove(app: App, paths: tuple[Path, ...], missing: bool) -> None:
    """Remove documents (a file, or every document under a folder); their vectors leave the
    index."""
    if not paths and not missing:
        raise click.UsageError("give at least one PATH, or --missing")
    with friendly_errors():
        removed = app.components.knowledge.remove(paths, missing=missing)
    for source in removed:
        click.echo(f"removed {source}")
    click.echo(f"removed {len(removed)} document(s)", err=True)
    if not removed:
        raise SystemExit(1)


@kb.command()
@pass_app
def rebuild(app: App) -> None:
    """Re-embed every chunk from the database into a new index (after corruption or a model
    change)."""
    columns = (TextColumn("re-embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        friendly_errors(),
        Progress(*columns, console=Console(stderr=True), transient=True) as progress,
    ):
        task = progress.add_task("rebuild", total=None)
        vectors = app.components.knowledge.rebuild(
            lambda done, total: progress.update(task, completed=done, total=total)
        )
    click.echo(f"rebuilt the index: {vectors} vectors")
