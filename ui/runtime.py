"""What the HTTP front ends share while the server runs: the assistant, metrics, ledger, background
work."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from dialog.messages import Grounding, Message, Reply
from ui.backend import Backend
from ui.deliveries import DeliveryLedger
from ui.metrics import Metrics

log = logging.getLogger(__name__)


def turn_threads_for(setting: int, cpus: int | None = None) -> int:
    """The `turn_threads` setting resolved: 0 means twice the CPU cores, at most 8."""
    if setting > 0:
        return setting
    return max(1, min(8, 2 * (cpus or os.cpu_count() or 1)))


@dataclass
class Runtime:
    """One per app; `run_turn` keeps the blocking dialog manager off the event loop.

    >>> runtime = Runtime(components); reply = await runtime.run_turn(Message("Hi", channel="api"))
    """

    components: Backend
    http: httpx.AsyncClient | None = None
    metrics: Metrics = field(default_factory=Metrics)
    assistant_override: Any = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _turn_limiter: anyio.CapacityLimiter | None = None
    _counted: set[int] = field(default_factory=set)

    @property
    def turn_limiter(self) -> anyio.CapacityLimiter:
        """Turns get their own worker threads, so a burst of them never queues the quick calls
        (signature checks, delivery claims, health) that acknowledge a webhook."""
        if self._turn_limiter is None:
            threads = turn_threads_for(self.settings.turn_threads)
            self._turn_limiter = anyio.CapacityLimiter(threads)
        return self._turn_limiter

    @property
    def settings(self) -> Any:
        return self.components.settings

    @property
    def assistant(self) -> Any:
        assistant = (
            self.assistant_override
            if self.assistant_override is not None
            else self.components.assistant
        )
        if id(assistant) not in self._counted:
            self._counted.add(id(assistant))
            assistant.answer_hooks.append(self._count_answer)
        return assistant

    def _count_answer(self, grounding: Grounding) -> None:
        self.metrics.inc("assistant_answers_total", action=grounding.action)

    @property
    def ledger(self) -> DeliveryLedger:
        import ui.records  # noqa: F401  (register the table)

        return DeliveryLedger(self.components.database.session)

    async def run_turn(self, message: Message) -> Reply:
        started = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(
                self.assistant.handle, message, limiter=self.turn_limiter
            )
        finally:
            self.metrics.inc("assistant_turns_total", channel=message.channel)
            self.metrics.inc(
                "assistant_turn_seconds_total",
                time.perf_counter() - started,
                channel=message.channel,
            )

    async def blocking(self, function: Any, *args: Any) -> Any:
        """Any other blocking call (database, index) in a worker thread."""
        return await anyio.to_thread.run_sync(function, *args)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Background work (webhook replies) that outlives the request; errors are logged, not
        lost."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Let background replies finish at shutdown, then cancel what is left."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()
