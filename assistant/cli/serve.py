"""`assistant serve`: the web chat, REST API and webhooks on one server."""

from __future__ import annotations

import click

from assistant.cli.app import App, friendly_errors, pass_app


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
@pass_app
def serve(app: App, host: str, port: int, no_web: bool) -> None:
    """Serve the web chat at /, the REST API at /api/v1, webhooks at /webhooks/, docs at /docs."""
    import uvicorn
    from rich.console import Console

    from ui.server import create_app

    console = Console(stderr=True)
    with friendly_errors():
        components = app.components
        with console.status("loading the knowledge base and the language model…"):
            _ = components.assistant
            documents, chunks = components.knowledge.count()
        application = create_app(components, web=not no_web)
    console.print(
        f"{documents} documents, {chunks} passages. Web chat: http://{host}:{port}/  API docs: http://{host}:{port}/docs"
    )
    try:
        uvicorn.run(application, host=host, port=port, log_level="info", ws="none")
    finally:
        app.close()
