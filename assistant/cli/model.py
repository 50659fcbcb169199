"""`assistant model serve`: the OpenAI-compatible model server, for other processes or machines."""

from __future__ import annotations

import ipaddress
import os
import signal
import threading
from pathlib import Path

import click

from assistant.cli.app import App, friendly_errors, pass_app
from assistant.errors import AssistantError
from assistant.llm.server.batching import Engine


@click.group()
def model() -> None:
    """The language-model server."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load(engine: Engine, name: str, url: str) -> None:
    """Load in the background so /health can say "loading"; a failed load stops the server."""
    try:
        engine.start()
    except AssistantError as err:
        click.echo(f"Error: {err}", err=True)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    batching = "on" if engine.batching else "off"
    click.echo(
        f"serving {name} on {url} (device {engine.device}, continuous batching {batching})",
        err=True,
    )


@model.command()
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    help="HF model folder or .gguf (default: packaged SmolLM2).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cuda", "cpu"]), help="auto: the GPU when there is one."
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
    help="auto: bf16 on GPU, fp32 on CPU.",
)
@click.option("--host", help="Bind address (default 127.0.0.1; others need ASSISTANT_LLM_API_KEY).")
@click.option("--port", type=int, help="Port (default 8000).")
@click.option("--max-batch", type=int, help="Requests generated together.")
@click.option("--max-queue", type=int, help="Requests waiting beyond the batch; past it, 429.")
@pass_app
def serve(
    app: App,
    model_path: Path | None,
    device: str | None,
    dtype: str | None,
    host: str | None,
    port: int | None,
    max_batch: int | None,
    max_queue: int | None,
) -> None:
    """Serve the chat model at /v1/chat/completions (streaming, tools, JSON schema), /health,
    /metrics."""
    import uvicorn

    from assistant.llm.server.app import create_app
    from assistant.llm.server.config import server_config
    from assistant.models import chat_model_path
    from assistant.wiring import quiet_model_libraries

    with friendly_errors():
        settings = app.components.settings
        host = host or settings.llm_host
        if not settings.llm_api_key and not is_loopback(host):
            raise click.UsageError(
                f"refusing to bind {host} without ASSISTANT_LLM_API_KEY; set a key or use 127.0.0.1"
            )
        quiet_model_libraries()
        path = None
        if model_path is not None:
            path = chat_model_path(settings.model_copy(update={"chat_model": str(model_path)}))
        config = server_config(
            settings, path, device=device, dtype=dtype, max_batch=max_batch, max_queue=max_queue
        )
        engine = Engine(config)
        url = f"http://{host}:{port or settings.llm_port}/v1"
        click.echo(
            f"loading {config.model_path}; {url} answers 503 until it is ready ...", err=True
        )
        threading.Thread(target=_load, args=(engine, config.model_name, url), daemon=True).start()
        try:
            uvicorn.run(
                create_app(engine, config),
                host=host,
                port=port or settings.llm_port,
                log_level="warning",
            )
        finally:
            engine.close()
