"""`assistant ingest`: files, folders and websites into the knowledge base, with a progress bar of
files (or pages) and chunks."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.cli.app import App, friendly_errors, pass_app
from knowledge.base import is_url
from knowledge.errors import UnreadableDocument
from knowledge.loaders import iter_files
from knowledge.website import CrawlPolicy, SyncReport, Website


def _count_files(targets: list[Path]) -> int:
    total = 0
    for target in targets:
        try:
            total += sum(1 for _ in iter_files([target]))
        except UnreadableDocument:
            continue
    return total


def website(app: App) -> Website:
    """The crawler, as the settings make it (`ASSISTANT_WEB_*`)."""
    s = app.components.settings
    hosts = tuple(h.strip().lstrip(".").lower() for h in s.web_hosts.split(",") if h.strip())
    policy = CrawlPolicy(
        user_agent=s.web_user_agent,
        concurrency=s.web_concurrency,
        delay_s=s.web_delay_s,
        max_pages=s.web_max_pages,
        timeout_s=s.web_timeout_s,
        max_bytes=s.max_document_bytes,
        allowed_hosts=hosts,
    )
    return Website(app.components.database.session, app.components.knowledge, policy)


def page_progress(console: Console) -> Progress:
    """A bar for a crawl: pages seen so far (a crawl's total is not known in advance)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} pages, {task.fields[what]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, transient=True)


def crawl_summary(report: SyncReport, console: Console) -> None:
    """What a crawl or sync did: failures on stderr, one line of figures on stdout."""
    for failure in report.failed:
        console.print(f"[yellow]failed[/]: {failure}", markup=True, highlight=False)
    for removed in report.removed:
        console.print(f"removed {removed}", markup=False, highlight=False)
    click.echo(
        f"{report.pages} page(s) from {report.sites} site(s): {report.updated} updated "
        f"({report.chunks} chunks), {report.unchanged} unchanged, {len(report.removed)} removed, "
        f"{len(report.failed)} failed"
    )


@click.command()
@click.argument("targets", nargs=-1)
@click.option("--demo", is_flag=True, help="Ingest the bundled demo help centre (assistant/demo).")
@pass_app
def ingest(app: App, targets: tuple[str, ...], demo: bool) -> None:
    """Add files, folders (Markdown, text, HTML, PDF, DOCX, FAQ .csv/.jsonl) or websites to the
    knowledge base.

    Folders are read recursively; unchanged files are skipped (content hashes), changed files
    replace their chunks, unreadable files are reported and the rest goes on. A URL
    (`https://help.example.com/`) is crawled within its host and folder, a `sitemap.xml` URL
    gives the pages to read; `assistant kb sync` keeps them up to date.
    """
    urls = [t for t in targets if is_url(t)]
    paths = [Path(t) for t in targets if not is_url(t)]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.UsageError(f"no such file or folder: {', '.join(missing)}")
    if demo:
        from assistant.demo import HELP_CENTRE

        paths.append(HELP_CENTRE)
    if not paths and not urls:
        raise click.UsageError("give at least one PATH or URL, or --demo")
    console = Console(stderr=True)
    if paths:
        _ingest_files(app, paths, console)
    if urls:
        _ingest_sites(app, urls, console)


def _ingest_files(app: App, targets: list[Path], console: Console) -> None:
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


def _ingest_sites(app: App, urls: list[str], console: Console) -> None:
    with friendly_errors():
        site = website(app)
        total = SyncReport()
        with page_progress(console) as progress:
            task = progress.add_task("crawling", total=None, what="")

            def advance(url: str, what: str) -> None:
                progress.update(task, advance=1, description=url[-50:], what=what)

            for url in urls:
                report = site.ingest(url, progress=advance)
                _add(total, report)
        site.close()
    crawl_summary(total, console)
    if total.pages and total.updated + total.unchanged == 0:
        raise SystemExit(1)


def _add(total: SyncReport, report: SyncReport) -> None:
    for name in ("sites", "pages", "updated", "unchanged", "chunks"):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    total.removed += report.removed
    total.skipped += report.skipped
    total.failed += report.failed
    total.kb_version = report.kb_version or total.kb_version
