"""Run the model server inside this process (uvicorn on a background thread) so users never start
one."""

from __future__ import annotations

import asyncio
import atexit
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from assistant.llm.server.app import create_app
from assistant.llm.server.batching import Engine
from assistant.llm.server.config import ServerConfig
from assistant_core.errors import ModelError
from assistant_core.openai_client import OpenAIChatModel

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stop_before_thread_joins(stop: Callable[[], None]) -> None:
    """The batching loop is a non-daemon thread: stop it at exit before Python waits for it, or exit
    hangs.

    `threading._register_atexit` (what concurrent.futures uses) runs before non-daemon threads are
    joined; plain `atexit` runs after, which is too late.
    """
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is not None:
            register(stop)
            return
    except RuntimeError:  # already shutting down
        pass
    atexit.register(stop)


class GracefulServer(uvicorn.Server):
    """uvicorn that first ends the engine's in-flight answers (a 503, or an error event in a
    stream), so that its own graceful shutdown has nothing left to wait for or cancel."""

    def __init__(self, config: uvicorn.Config, engine: Engine) -> None:
        super().__init__(config)
        self.engine = engine

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await asyncio.to_thread(self.engine.close)
        await super().shutdown(sockets=sockets)


class BackgroundServer:
    """The app served by uvicorn on a daemon thread; `stop()` (or the end of the main thread) shuts
    it down.

    >>> with BackgroundServer(ServerConfig(model_path=path)) as server:
    ...     OpenAIChatModel(server.base_url).complete([{"role": "user", "content": "Hi"}])
    """

    def __init__(
        self, config: ServerConfig, *, host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.config = config
        self.host, self.port = host, port or free_port(host)
        self.engine = Engine(config, on_fatal=self._fatal)
        self.app = app = create_app(self.engine, config)
        self._server = GracefulServer(
            uvicorn.Config(
                app,
                host=self.host,
                port=self.port,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=max(1, round(config.shutdown_s)),
            ),
            self.engine,
        )
        self._thread = threading.Thread(target=self._server.run, name="lm-server", daemon=True)
        self._stopped = False

    @staticmethod
    def _fatal(reason: str) -> None:
        """Inside the assistant there is no supervisor to exit for: answers fail with a 503 that
        names the reason (the client reports the model as unavailable) until it is restarted."""
        log.error("the embedded model server failed: %s; restart the assistant", reason)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout_s: float = 600.0) -> BackgroundServer:
        """Load the model, then listen; returns once requests are served."""
        self.engine.start()
        self._thread.start()
        _stop_before_thread_joins(self.stop)
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ModelError(
                    f"the embedded model server did not start on {self.host}:{self.port}"
                )
            time.sleep(0.02)
        log.info("embedded model server on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and free the model's batching loop; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._server.should_exit = True
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.config.shutdown_s + 2)
        self.engine.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedChatModel(OpenAIChatModel):
    """The client plus the in-process model server it talks to; `close()` stops both.

    >>> model = EmbeddedChatModel.start(ServerConfig(model_path=path)); model.close()
    """

    def __init__(self, server: BackgroundServer, **options: Any) -> None:
        super().__init__(server.base_url, **options)
        self.server = server

    @classmethod
    def start(cls, config: ServerConfig, **options: Any) -> EmbeddedChatModel:
        """Load the model and serve it on a free loopback port, on a background thread."""
        server = BackgroundServer(config).start()
        return cls(server, model=config.model_name, api_key=config.api_key, **options)

    def close(self) -> None:
        super().close()
        self.server.stop()
