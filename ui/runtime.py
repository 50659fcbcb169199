"""What the HTTP front ends share while the server runs: the channel, metrics, background
work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, TypeVarTuple

import anyio
import httpx

from assistant_core.settings import Settings
from dialog.messages import Message, Reply
from ui.access_http import AccessControl
from ui.backend import Backend
from ui.channel import (
    AccessDenied,
    Authorize,
    Channel,
    DialogService,
    allow_everything,
    webhook_caller,
)
from ui.channel import turn_threads_for as turn_threads_for
from ui.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass
class Runtime:
    """One per app: every front end of the server runs its turns through `channel`.

    >>> runtime = Runtime(components)
    >>> runtime.guard(access)  # the access policy, as create_app installs it
    >>> reply = await runtime.channel.arun(caller.with_token(token), Message("Hi", cid, "api"))
    """

    components: Backend
    http: httpx.AsyncClient | None = None
    metrics: Metrics = field(default_factory=Metrics)
    authorize: Authorize = allow_everything
    """The access check every channel call passes (the server installs the policy: `guard`)."""
    channel: Channel = field(init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.channel = Channel(self.components, metrics=self.metrics, authorize=self.authorize)

    @property
    def settings(self) -> Settings:
        return self.components.settings

    @property
    def assistant(self) -> DialogService:
        """The dialog manager the channel runs (its answers counted in /metrics)."""
        return self.channel.service

    def guard(self, access: AccessControl) -> None:
        """Install the access policy on the channel, the one place every front end passes."""
        self.channel.policy = access.hook(_denied)

    def handed_off(self, conversation_id: str) -> bool:
        """Whether an agent holds the conversation now (agents may reach it then)."""
        return self.assistant.state(conversation_id).handoff

    async def run_turn(self, message: Message) -> Reply:
        """A webhook delivery's turn, on the turn threads: the caller is the webhook it came
        through (`message.channel`)."""
        return await self.channel.arun(webhook_caller(message.channel), message)

    async def blocking(self, function: Callable[[*Ts], T], *args: *Ts) -> T:
        """Any other blocking call (database, index) in a worker thread: asyncio's executor, which
        costs the event loop a fraction of anyio's thread hop (a capacity limiter and a cancel
        scope per call), on the path that acknowledges webhooks."""
        return await asyncio.to_thread(function, *args)

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
        with anyio.move_on_after(timeout_s):
            await self.channel.drain()


def _denied(message: str, status: int) -> AccessDenied:
    """The policy's refusal as the channel's error (mapped to its HTTP status)."""
    return AccessDenied(message, status=status)
