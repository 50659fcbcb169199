"""`assistant kb`: list, stats, remove, rebuild the knowledge base, and sync its websites."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.cli.app import App, friendly_errors, pass_app
from assistant.cli.ingest import crawl_summary, page_progress, website
from knowledge.base import is_url


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
@click.argument("paths", nargs=-1)
@click.option("--missing", is_flag=True, help="Also remove documents whose file no longer exists.")
@pass_app
def remove(app: App, paths: tuple[str, ...], missing: bool) -> None:
    """Remove documents (a file, every document under a folder, a web page, or a whole site by
    its start URL); their vectors leave the index."""
    if not paths and not missing:
        raise click.UsageError("give at least one PATH, or --missing")
    with friendly_errors():
        urls = [str(p) for p in paths if is_url(str(p))]
        removed = []
        if urls:  # a site's start URL: sync no longer visits it either
            site = website(app)
            removed = [page for url in urls for page in site.forget(url)]
            site.close()
        removed += app.components.knowledge.remove(paths, missing=missing)
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


@kb.command()
@click.argument("urls", nargs=-1)
@pass_app
def sync(app: App, urls: tuple[str, ...]) -> None:
    """Re-crawl every website source (or those named by start URL) incrementally.

    Pages are fetched with conditional requests (ETag / Last-Modified): unchanged ones embed
    nothing, changed ones replace their chunks, pages gone (404/410, excluded by robots.txt,
    dropped from the sitemap) leave the knowledge base.
    """
    console = Console(stderr=True)
    with friendly_errors():
        site = website(app)
        if not site.sites():
            raise click.ClickException("no website sources: add one with `assistant ingest URL`")
        with page_progress(console) as progress:
            task = progress.add_task("syncing", total=None, what="")
            report = site.sync(
                urls,
                progress=lambda url, what: progress.update(
                    task, advance=1, description=url[-50:], what=what
                ),
            )
        site.close()
    crawl_summary(report, console)


@kb.command()
@pass_app
def sites(app: App) -> None:
    """The website sources that `kb sync` re-crawls."""
    with friendly_errors():
        site = website(app)
        for _, url in site.sites():
            click.echo(url)
        site.close()
