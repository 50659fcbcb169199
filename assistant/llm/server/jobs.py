"""One request from prompt ids to text deltas: batched or serial, with stop strings, deadline and
cancel."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

from assistant.llm.server.batching import Engine, Generation, Sampling


class DeadlineExceeded(Exception):
    """The request ran past the server's per-request deadline."""


class GenerationFailed(Exception):
    """The engine reported an error for this request."""


@dataclass
class Job:
    """Runs one generation; after `deltas()` is exhausted, `finish_reason` and the counts are set.

    >>> job = Job(engine, ids, Sampling(max_tokens=32), stop=["\\n"], deadline_s=60)
    >>> async for delta in job.deltas(): print(delta, end="")
    """

    engine: Engine
    ids: list[int]
    sampling: Sampling
    stop: list[str] = field(default_factory=list)
    deadline_s: float = 120.0
    schema: dict[str, Any] | None = None
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    completion_tokens: int = 0
    finish_reason: str = "stop"
    text: str = ""

    @property
    def serial(self) -> bool:
        """Grammar, seeded sampling, or no batching: the serial path."""
        seeded = self.sampling.seed is not None and self.sampling.temperature > 0
        return self.schema is not None or seeded or not self.engine.batches(self.sampling)

    async def deltas(self) -> AsyncIterator[str]:
        """Text as it is generated, stop strings removed."""
        try:
            async with asyncio.timeout(self.deadline_s):
                source = self._serial() if self.serial else self._batched()
                async for delta in source:
                    yield delta
        except TimeoutError as err:
            raise DeadlineExceeded(f"no complete answer within {self.deadline_s:g} s") from err

    async def _serial(self) -> AsyncIterator[str]:
        cancelled = threading.Event()
        try:
            tokens = await asyncio.to_thread(
                self.engine.generate_serial, self.ids, self.sampling, self.schema, cancelled
            )
        except (RuntimeError, ValueError, IndexError, MemoryError) as err:
            raise GenerationFailed(f"{type(err).__name__}: {err}") from err
        finally:
            cancelled.set()
        self.first_token_at = time.perf_counter()
        text, _ = self._accept(tokens, finished=True)
        if text:
            yield text

    async def _batched(self) -> AsyncIterator[str]:
        generation: Generation = self.engine.submit(self.ids, self.sampling)
        done = False
        try:
            while not done:
                output = await generation.queue.get()
                if isinstance(output, Exception):  # BatchLost: the loop died under us
                    raise output
                if output.error is not None:
                    raise GenerationFailed(str(output.error))
                done = output.is_finished()
                if output.generated_tokens and self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                delta, hit_stop = self._accept(list(output.generated_tokens), finished=done)
                if delta:
                    yield delta
                done = done or hit_stop
        finally:
            self.engine.cancel(generation)  # a no-op once the request finished on its own

    def _accept(self, tokens: list[int], *, finished: bool) -> tuple[str, bool]:
        """New text since the last call; holds back what may be the start of a stop string."""
        eos = set(self.engine.eos_ids)
        ended_on_eos = bool(tokens) and tokens[-1] in eos
        kept = [t for t in tokens if t not in eos]
        self.completion_tokens = len(kept)
        full = cast(
            str, self.engine.tokenizer.decode(kept, skip_special_tokens=True)
        )  # one sequence
        for stop in self.stop:
            cut = full.find(stop)
            if cut >= 0:
                full, finished, ended_on_eos = full[:cut], True, True
        if not finished:
            hold = max((len(s) - 1 for s in self.stop), default=0)
            full = full[: len(full) - hold] if hold else full
            full = full.rstrip("\ufffd")
        else:
            self.finish_reason = (
                "stop" if ended_on_eos or len(kept) < self.sampling.max_tokens else "length"
            )
        delta = full[len(self.text) :] if full.startswith(self.text) else ""
        self.text = full if full.startswith(self.text) else self.text
        return delta, finished
