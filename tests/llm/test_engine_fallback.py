"""Older transformers (e.g. 5.17) without per-request sampling: greedy still batches, sampled goes
serial."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.llm.server.batching import Engine, Sampling
from assistant.llm.server.config import ServerConfig
from tests.llm.fakes import CharTokenizer

pytestmark = pytest.mark.unit


class OldContinuousBatchingConfig:
    """The config class as an older transformers has it: no per_request_processors, no padding
    knobs."""

    def __init__(
        self,
        page_size: int = 256,
        num_blocks: int | None = None,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.options = {
            "page_size": page_size,
            "num_blocks": num_blocks,
            "max_batch_tokens": max_batch_tokens,
        }


class FakeManager:
    def __init__(self, config: Any) -> None:
        self.config, self.started = config, threading.Event()
        self.batch_processor: object | None = None
        self.background_thread_status = type("S", (), {"fatal_error": None})()

    def start(self) -> None:
        self.started.set()
        self.batch_processor = type("Processor", (), {"cache": None})()

    def is_running(self) -> bool:
        return self.started.is_set()

    def get_result(self, timeout: float | None = None) -> None:
        self.started.wait(timeout)

    def stop(self, block: bool = True, timeout: float | None = None) -> None:
        self.started.clear()


class FakeModel:
    def __init__(self) -> None:
        self.managers: list[FakeManager] = []

    def init_continuous_batching(
        self, generation_config: Any, continuous_batching_config: Any
    ) -> FakeManager:
        self.managers.append(FakeManager(continuous_batching_config))
        return self.managers[-1]


def test_without_per_request_sampling_only_greedy_requests_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import transformers.generation

    monkeypatch.setattr(
        transformers.generation, "ContinuousBatchingConfig", OldContinuousBatchingConfig
    )
    engine = Engine(ServerConfig(model_path=Path("unused"), device="cpu"))
    engine.model, engine.tokenizer, engine.eos_ids = FakeModel(), CharTokenizer(), [0]
    engine._start_batching()
    engine.ready.set()
    try:
        assert engine.batching and engine.alive()
        assert engine.batches(Sampling(max_tokens=8, temperature=0.0))
        assert not engine.batches(Sampling(max_tokens=8, temperature=0.7))
        [greedy] = engine.model.managers
        assert greedy.config.options == {
            "page_size": 32,
            "num_blocks": 256,
            "max_batch_tokens": 512,
        }
    finally:
        engine.close()
    assert not engine.alive() and not greedy.is_running()
