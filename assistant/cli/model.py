"""`assistant model serve`: the OpenAI-compatible model server, for other processes or machines."""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from assistant.cli.app import App, friendly_errors, pass_app
from assistant.llm.server.batching import Engine
from assistant_core.errors import AssistantError


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


class Exit:
    """The process's exit status, set by whatever ends serving: 0 for a signal, 1 for a failure a
    supervisor should restart us for (a model that does not load, a batch loop that stays dead)."""

    def __init__(self) -> None:
        self.code = 0
        self.server: Any = None

    def fail(self, reason: str) -> None:
        click.echo(f"Error: {reason}; exiting so that a supervisor restarts the server", err=True)
        self.code = 1
        if self.server is not None:
            self.server.should_exit = True
        else:
            os.kill(os.getpid(), signal.SIGTERM)


def _load(engine: Engine, name: str, url: str, ending: Exit) -> None:
    """Load in the background so /health can say "loading"; a failed load stops the server."""
    try:
        engine.start()
    except AssistantError as err:
        ending.fail(str(err))
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
    from assistant.llm.server.embedded import GracefulServer
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
        ending = Exit()
        engine = Engine(config, on_fatal=ending.fail)
        url = f"http://{host}:{port or settings.llm_port}/v1"
        click.echo(
            f"loading {config.model_path}; {url} answers 503 until it is ready ...", err=True
        )
        ending.server = GracefulServer(
            uvicorn.Config(
                create_app(engine, config),
                host=host,
                port=port or settings.llm_port,
                log_level="warning",
                timeout_graceful_shutdown=max(1, round(config.shutdown_s)),
            ),
            engine,
        )
        loader = threading.Thread(target=_load, args=(engine, config.model_name, url, ending))
        loader.daemon = True
        loader.start()
        for handled in (signal.SIGINT, signal.SIGTERM):
            signal.signal(handled, _stopped)
        try:
            ending.server.run()
        except Stopped:  # uvicorn hands the signal back once its own shutdown is done
            pass
        finally:
            engine.close()
        _exit(ending.code, engine)


class Stopped(Exception):
    """SIGINT or SIGTERM, re-raised by uvicorn after its graceful shutdown."""


def _stopped(signum: int, frame: object) -> None:
    raise Stopped


def _exit(code: int, engine: Engine) -> None:
    """Leave now: a batch thread still inside a forward pass (non-daemon) would hold the
    interpreter at exit past any supervisor's patience."""
    if engine.threads_alive():
        click.echo("a batch loop is still busy; exiting without waiting for it", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        raise SystemExit(code)
