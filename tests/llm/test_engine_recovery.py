"""The engine outlives its batch loop: a dying manager's requests fail with BatchLost (503), a fresh
manager takes over, and when that cannot happen the engine says it failed (fast fakes; the real
loop is killed in test_recovery_real)."""

from __future__ import annotations

import asyncio
import queue
import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.llm.server.batching import BatchLost, Engine, Sampling
from assistant.llm.server.config import ServerConfig
from tests.llm.fakes import CharTokenizer

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


class Output:
    def __init__(self, request_id: str, tokens: list[int], error: str | None = None) -> None:
        self.request_id, self.generated_tokens, self.error = request_id, tokens, error

    def is_finished(self) -> bool:
        return True


class Status:
    HARD_STOP = 2

    def __init__(self) -> None:
        self.fatal_error: Exception | None = None
        self.local_status = 0


class LoopManager:
    """transformers' manager as the engine sees it: a thread, an output queue, and death as in
    `_handle_critical_error`: hard stop, held requests failed, fatal error recorded, thread ends."""

    def __init__(self) -> None:
        self.background_thread_status = Status()
        self.batch_processor: Any = None
        self.outputs: queue.Queue[Output] = queue.Queue()
        self.held: list[str] = []
        self._die = threading.Event()
        self._generation_thread: threading.Thread | None = None

    def start(self) -> None:
        self._generation_thread = threading.Thread(target=self._loop)
        self._generation_thread.start()

    def _loop(self) -> None:
        self.batch_processor = object()
        self._die.wait()
        self.background_thread_status.local_status = Status.HARD_STOP
        for request_id in self.held:
            self.outputs.put(Output(request_id, [], error="No requests can be scheduled"))
        self.background_thread_status.fatal_error = RuntimeError("No requests can be scheduled")

    def die(self) -> None:
        self._die.set()

    def is_running(self) -> bool:
        thread = self._generation_thread
        return thread is not None and thread.is_alive()

    def add_request(self, ids: list[int], request_id: str, **options: Any) -> str | None:
        if self.background_thread_status.fatal_error is not None:
            return None
        if ids == [ord("!")]:
            self.held.append(request_id)  # never answered: it waits in the batch
        else:
            self.outputs.put(Output(request_id, [ord("o"), ord("k"), 0]))
        return request_id

    def get_result(self, timeout: float | None = None) -> Output | None:
        if self.outputs.empty() and self.background_thread_status.fatal_error is not None:
            return None
        try:
            return self.outputs.get(timeout=timeout) if timeout else self.outputs.get_nowait()
        except queue.Empty:
            return None

    def cancel_request(self, request_id: str) -> None:
        pass

    def stop(self, block: bool = True, timeout: float | None = None, **_: Any) -> None:
        self.die()
        if self._generation_thread is not None:
            self._generation_thread.join(timeout)


class Model:
    def __init__(self, fail_after: int = 99) -> None:
        self.managers: list[LoopManager] = []
        self.fail_after = fail_after

    def init_continuous_batching(self, **_: Any) -> LoopManager:
        if len(self.managers) >= self.fail_after:
            raise RuntimeError("CUDA out of memory")
        self.managers.append(LoopManager())
        return self.managers[-1]


def engine_with(model: Model, **options: Any) -> tuple[Engine, list[str]]:
    fatal: list[str] = []
    config = ServerConfig(model_path=Path("unused"), device="cpu", **options)
    engine = Engine(config, on_fatal=fatal.append)
    engine.model, engine.tokenizer, engine.eos_ids = model, CharTokenizer(), [0]
    engine.context_tokens = 4096
    engine._start_batching()
    engine.ready.set()
    return engine, fatal


async def answer(engine: Engine, prompt: str) -> list[int]:
    generation = engine.submit([ord(c) for c in prompt], Sampling(max_tokens=4))
    output = await asyncio.wait_for(generation.queue.get(), 20)
    if isinstance(output, Exception):
        raise output
    return list(output.generated_tokens)


def wait_for(condition: Any) -> None:
    event = threading.Event()
    for _ in range(400):
        if condition():
            return
        event.wait(0.05)
    raise AssertionError("condition not reached")


def test_a_dead_loop_fails_what_it_held_and_a_fresh_one_serves() -> None:
    model = Model()
    engine, fatal = engine_with(model)
    try:
        greedy = model.managers[0]

        async def scenario() -> None:
            held = asyncio.ensure_future(answer(engine, "!"))
            await asyncio.sleep(0.1)
            greedy.die()
            with pytest.raises(BatchLost, match="No requests can be scheduled"):
                await held
            await asyncio.to_thread(wait_for, lambda: engine.status() == "ok")
            assert await answer(engine, "hi") == [ord("o"), ord("k"), 0]

        asyncio.run(scenario())
        assert engine.restarts == 1 and len(model.managers) == 3 and not fatal
        assert engine._managers["greedy"] is model.managers[2]
    finally:
        engine.close()


def test_when_no_fresh_loop_can_be_built_the_engine_has_failed() -> None:
    model = Model(fail_after=2)
    engine, fatal = engine_with(model)
    try:
        model.managers[0].die()
        wait_for(lambda: engine.status() == "failed" and bool(fatal))
        assert (
            fatal
            and "CUDA out of memory" in fatal[0]
            and "CUDA out of memory" in str(engine.failure)
        )

        async def refused() -> None:
            with pytest.raises(BatchLost, match="out of memory"):
                await answer(engine, "hi")

        asyncio.run(refused())
    finally:
        engine.close()


def test_a_loop_that_keeps_dying_is_a_failure_not_a_restart_loop() -> None:
    model = Model()
    engine, fatal = engine_with(model, max_restarts=1)
    try:
        model.managers[0].die()
        wait_for(lambda: engine.restarts == 1 and engine.status() == "ok")
        model.managers[-1].die()
        wait_for(lambda: engine.status() == "failed" and bool(fatal))
        assert "2 restarts" in fatal[0]
    finally:
        engine.close()
