"""`assistant serve`: the web chat, REST API and webhooks on one server."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import click

from assistant.cli.app import App, friendly_errors, pass_app
from assistant.cli.model import is_loopback
from assistant_core.db import Database
from assistant_core.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

WEB_ENV = "_ASSISTANT_SERVE_WEB"
"""How `serve --workers N` tells its worker processes whether to mount the web chat."""
WORKERS_ENV = "_ASSISTANT_SERVE_WORKERS"
"""How `serve --workers N` tells each worker process how many share the machine's cores."""


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (0.0.0.0 for all).",
)
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
@click.option(
    "--no-web", is_flag=True, help="Leave the Gradio web chat out (REST API and webhooks only)."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port (uvicorn workers); more than one needs PostgreSQL.",
)
@pass_app
def serve(app: App, host: str, port: int, no_web: bool, workers: int) -> None:
    """Serve the web chat at /, the REST API at /api/v1, webhooks at /webhooks/, docs at /docs."""
    import uvicorn
    from rich.console import Console

    from ui.server import create_app

    console = Console(stderr=True)
    with friendly_errors():
        components = app.components
        refuse_open_serving(components.settings, components.database, host)
        refuse_workers_on_sqlite(components.database, workers)
        with console.status("loading the knowledge base and the language model…"):
            if workers == 1:  # with several, each worker loads its own: not this supervisor
                _ = components.assistant
            documents, chunks = components.knowledge.count()
        application = (
            None if workers > 1 else create_app(components, web=not no_web, freeze_warm_heap=True)
        )
    console.print(
        f"{documents} documents, {chunks} passages. Web chat: http://{host}:{port}/  API docs: http://{host}:{port}/docs"
    )
    from dialog.insights.retention import start_retention  # ASSISTANT_RETENTION_DAYS

    retention = start_retention(components.database.engine, components.settings.retention_days)
    try:
        if application is not None:
            uvicorn.run(application, host=host, port=port, log_level="info", ws="none")
        else:  # each worker builds its own app; this process only supervises (and runs retention)
            os.environ[WEB_ENV] = "0" if no_web else "1"
            os.environ[WORKERS_ENV] = str(workers)
            uvicorn.run(
                f"{__name__}:worker_app",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level="info",
                ws="none",
            )
    finally:
        if retention is not None:
            retention.stop()
        app.close()


def worker_app() -> FastAPI:
    """One `serve --workers N` process's app: its own components, delivery workers and index."""
    from assistant.wiring import Components
    from assistant_core.settings import load_settings
    from ui.server import create_app

    settings = share_of_cores(load_settings(), int(os.environ.get(WORKERS_ENV, "1")))
    web = os.environ.get(WEB_ENV, "1") == "1"
    return create_app(Components(settings), web=web, freeze_warm_heap=True)


def share_of_cores(settings: Settings, workers: int, cpus: int | None = None) -> Settings:
    """Turn threads sized by the worker's share of the cores when they are left to the default:
    N processes each sized for every core keep N times too many CPU-bound turns running, whose
    contention for each interpreter's lock slowed acknowledgements (docs/benchmarks.md)."""
    from ui.channel import turn_threads_for

    if settings.turn_threads or workers <= 1:
        return settings
    share = max(1, (cpus or os.cpu_count() or 1) // workers)
    return settings.model_copy(update={"turn_threads": turn_threads_for(0, share)})


def refuse_workers_on_sqlite(database: Database, workers: int) -> None:
    """SQLite takes one writer at a time: several server processes need PostgreSQL."""
    if workers > 1 and database.engine.dialect.name == "sqlite":
        raise click.UsageError(
            "--workers above 1 needs PostgreSQL (ASSISTANT_DATABASE_URL=postgresql://…): "
            "SQLite serves one process"
        )


def refuse_open_serving(settings: Settings, database: Database, host: str) -> None:
    """Beyond loopback only with API keys (or the loudly logged opt-out): the model server's rule,
    so nobody exposes an unauthenticated REST API by typing --host 0.0.0.0."""
    if is_loopback(host):
        return
    import ui.access_records  # noqa: F401  (register the tables)
    from ui.access_keys import KeyStore

    if KeyStore(database.session).any_active():
        return
    if settings.insecure_serve_without_keys:
        log.warning(
            "SERVING %s WITHOUT API KEYS (ASSISTANT_INSECURE_SERVE_WITHOUT_KEYS=true): anyone who "
            "reaches this port can use the REST API as a customer",
            host,
        )
        click.secho(
            f"WARNING: listening on {host} with no API key (ASSISTANT_INSECURE_SERVE_WITHOUT_KEYS)",
            fg="red",
            err=True,
        )
        return
    raise click.UsageError(
        f"refusing to listen on {host} without API keys; create one with "
        "`assistant keys create --role admin --name ops`, set "
        "ASSISTANT_INSECURE_SERVE_WITHOUT_KEYS=true (behind an authenticating gateway), "
        "or use 127.0.0.1"
    )
