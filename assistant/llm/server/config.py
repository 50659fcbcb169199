"""Server knobs in one value object, so the CLI, the embedded mode and tests build servers alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServerConfig:
    """How to load the model and how much work to admit.

    >>> ServerConfig(model_path=Path("models/SmolLM2-135M-Instruct.Q4_1"), max_batch=16)
    """

    model_path: Path
    model_name: str = "default"
    device: str = "auto"
    dtype: str = "auto"
    max_batch: int = 32
    max_queue: int = 64
    request_timeout_s: float = 120.0
    max_tokens_limit: int = 2048
    kv_blocks: int = 256
    page_size: int = 32
    api_key: str | None = None
    cpu_threads: int = 0
    loop_ngram: int = 6
    """Loop guard for free-text answers: no run of this many tokens a third time (0 is off)."""
    repetition_penalty: float = 1.0
    """Default for requests that do not set `repetition_penalty`; off (1.0), as it also pushes the
    answer away from the prompt's words, i.e. from the passages it should quote."""
    max_body_bytes: int = 8 * 1024 * 1024
    max_restarts: int = 5
    """Batch-loop restarts allowed within `restart_window_s`; one more and the engine has failed."""
    restart_window_s: float = 300.0
    shutdown_s: float = 3.0
    """How long stopping waits for in-flight requests and for the batch loops."""

    @property
    def max_pending(self) -> int:
        """Requests admitted at once: those generating plus those waiting; past it, 429."""
        return self.max_batch + self.max_queue


def server_config(settings: Any, model_path: Path | None = None, **overrides: Any) -> ServerConfig:
    """The server's knobs from the assistant's settings (`ASSISTANT_LLM_*`, `ASSISTANT_DEVICE`)."""
    from assistant.models import chat_model_path

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    options: dict[str, Any] = {
        "model_path": model_path or chat_model_path(settings),
        "model_name": settings.llm_model,
        "device": settings.device,
        "dtype": settings.llm_dtype,
        "max_batch": settings.llm_max_batch,
        "max_queue": settings.llm_max_queue,
        "request_timeout_s": settings.llm_request_timeout_s,
        "api_key": key,
        "cpu_threads": settings.llm_cpu_threads,
        "loop_ngram": settings.llm_loop_ngram,
    }
    options.update({k: v for k, v in overrides.items() if v is not None})
    return ServerConfig(**options)
