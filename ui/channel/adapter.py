"""The channel adapter: the one place a front end runs a turn or touches a conversation.

Every call names its `Caller` and passes `authorize` (issue 17's access rules plug in there), turns
run on the turn threads (`ASSISTANT_TURN_THREADS`) when served, every turn is counted in /metrics
by channel, and every failure is mapped by `failure_for`. REST, SSE, the web chat, the terminal,
`assistant ask` and the webhooks all come through here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Protocol

import anyio

from assistant_core.settings import Settings
from dialog.errors import ConversationNotFound
from dialog.events import Event
from dialog.messages import Grounding, Message, Reply, Source
from dialog.state import ConversationState
from ui.channel.caller import Action, Authorize, Caller, allow_everything
from ui.channel.failures import DATABASE_UNAVAILABLE, Failure, failure_for
from ui.channel.service import DialogService
from ui.metrics import Metrics
from ui.ratelimit import RateLimits, Verdict, path_group

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    """The turn holds its conversation; the passages it retrieved are known before any word."""

    conversation_id: str
    sources: list[Source]


@dataclass(frozen=True)
class Delta:
    """The next piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class Done:
    """The stored reply: its sources are the ones the answer kept, with their quotes."""

    reply: Reply


@dataclass(frozen=True)
class Failed:
    """The turn failed (anything it had begun is recorded as failed, the conversation unlocked)."""

    failure: Failure
    error: Exception


TurnEvent = Started | Delta | Done | Failed
"""What `Channel.stream` yields: Started, Delta…, then Done or Failed (Failed alone when the turn
could not start)."""


class Serves(Protocol):
    """What the channel runs on (`ui.backend.Backend` provides it): the dialog manager, built on
    first use, and the settings."""

    @property
    def settings(self) -> Settings: ...

    @property
    def assistant(self) -> DialogService: ...


def turn_threads_for(setting: int, cpus: int | None = None) -> int:
    """The `turn_threads` setting resolved: 0 means twice the CPU cores, at most 8."""
    if setting > 0:
        return setting
    return max(1, min(8, 2 * (cpus or os.cpu_count() or 1)))


class Channel:
    """Runs turns and conversation calls for every front end, the same way.

    >>> channel = Channel(components)
    >>> for event in channel.stream(LOCAL, Message("Hi", channel="terminal")):
    ...     print(event)
    >>> reply = await channel.arun(webhook_caller("generic"), message)  # on the turn threads
    """

    def __init__(
        self,
        backend: Serves,
        *,
        metrics: Metrics | None = None,
        authorize: Authorize = allow_everything,
    ) -> None:
        self.backend = backend
        self.metrics = metrics or Metrics()
        self.policy: Authorize = authorize
        """The access check (the server installs `AccessControl.hook` here). It is always called off
        the event loop (turn threads, worker threads), so it may read the database."""
        settings = backend.settings
        self.rate_limits = RateLimits(
            {
                "api": settings.rate_limit_api_per_minute,
                "webhook": settings.rate_limit_webhook_per_minute,
                "web": settings.rate_limit_web_per_minute,
            },
            redis_url=settings.redis_url,
            key_prefix=settings.redis_prefix,
        )
        self._service: DialogService | None = None
        self._turn_limiter: anyio.CapacityLimiter | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    # ---- what every call passes through -----------------------------------------------------

    def authorize(self, caller: Caller, action: Action, conversation_id: str | None) -> None:
        """The one access check every call below makes first; raises AccessDenied."""
        self.policy(caller, action, conversation_id)

    def admit(self, path: str, client: str) -> Verdict:
        """The per-client rate limit of an HTTP request (checked before its body is read)."""
        verdict = self.rate_limits.check(path, client)
        if not verdict.allowed:
            self.metrics.inc("assistant_rate_limited_total", path=path_group(path) or "other")
        return verdict

    def failure(self, err: BaseException) -> Failure:
        """The one error mapping, counted where /metrics tracks it."""
        if isinstance(err, DATABASE_UNAVAILABLE):
            self.metrics.inc("assistant_database_unavailable_total")
        return failure_for(err)

    @property
    def service(self) -> DialogService:
        """The dialog manager, built on first use; its answers are counted by grounding action."""
        if self._service is None:
            self._service = self.backend.assistant
            self._service.answer_hooks.append(self._count_answer)
        return self._service

    def _count_answer(self, grounding: Grounding) -> None:
        self.metrics.inc("assistant_answers_total", action=grounding.action)

    # ---- turns ------------------------------------------------------------------------------

    def stream(
        self, caller: Caller, message: Message, *, streamed: bool = True
    ) -> Generator[TurnEvent, None, None]:
        """Run one turn in this thread: Started, Delta…, Done, or Failed. Closing the iterator early
        (a client gone, Ctrl-C) records the answer as failed and unlocks the conversation."""
        try:
            self.authorize(caller, turn_action(message, streamed), message.conversation_id)
        except Exception as err:
            yield Failed(self.failure(err), err)
            return
        began = time.perf_counter()
        try:
            turn = self.service.start(message)
            yield Started(turn.conversation_id, list(turn.sources))
            deltas = iter(turn)
            try:
                for delta in deltas:
                    yield Delta(delta)
            finally:
                if isinstance(deltas, Generator):
                    deltas.close()
            yield Done(turn.reply)
        except Exception as err:
            failure = self.failure(err)
            log.log(
                logging.ERROR if failure.status == 500 else logging.INFO,
                "turn in conversation %s failed: %s",
                message.conversation_id,
                failure.kind,
                exc_info=failure.status == 500,
            )
            yield Failed(failure, err)
        finally:
            self._count_turn(message.channel, began)

    def run(self, caller: Caller, message: Message) -> Reply:
        """Run one turn in this thread and return its reply; a failure raises its error."""
        for event in self.stream(caller, message, streamed=False):
            if isinstance(event, Done):
                return event.reply
            if isinstance(event, Failed):
                raise event.error
        raise AssertionError("a turn ends with Done or Failed")

    async def arun(self, caller: Caller, message: Message) -> Reply:
        """`run` on a turn thread: what REST and a webhook job call."""
        return await anyio.to_thread.run_sync(self.run, caller, message, limiter=self.turn_limiter)

    async def astream(self, caller: Caller, message: Message) -> AsyncGenerator[TurnEvent, None]:
        """`stream` on a turn thread, its events handed to the event loop as they come (SSE).
        Closing it stops the turn at its next word."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[TurnEvent | None] = asyncio.Queue()
        stop = threading.Event()

        def deliver(event: TurnEvent | None) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the event loop is gone: nobody is listening
                stop.set()

        self._start_pump(caller, message, deliver, stop)
        try:
            while (event := await events.get()) is not None:
                yield event
        finally:
            stop.set()

    def stream_from_worker(self, caller: Caller, message: Message) -> Iterator[TurnEvent]:
        """`astream` for a synchronous handler on one of the event loop's worker threads (the web
        chat's: Gradio closes a synchronous iterator when its page goes away, which stops the
        turn at its next word)."""
        events: queue.Queue[TurnEvent | None] = queue.Queue()
        stop = threading.Event()
        anyio.from_thread.run_sync(self._start_pump, caller, message, events.put, stop)
        try:
            while (event := events.get()) is not None:
                yield event
        finally:
            stop.set()

    def _start_pump(
        self,
        caller: Caller,
        message: Message,
        deliver: Callable[[TurnEvent | None], None],
        stop: threading.Event,
    ) -> None:
        """Run `stream` on a turn thread (called on the event loop): each event goes to `deliver`,
        then None; `stop` set ends the turn at its next event."""

        def pump() -> None:
            if stop.is_set():  # the client left while the turn waited for a thread
                return deliver(None)
            turn = self.stream(caller, message)
            try:
                for event in turn:
                    if stop.is_set():
                        return
                    deliver(event)
            finally:
                turn.close()
                deliver(None)

        async def on_turn_thread() -> None:
            await anyio.to_thread.run_sync(pump, limiter=self.turn_limiter)

        task = asyncio.get_running_loop().create_task(on_turn_thread(), name="turn pump")
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)

    @property
    def turn_limiter(self) -> anyio.CapacityLimiter:
        """Turns get their own worker threads, so a burst of them never queues the quick calls
        (signature checks, delivery claims, health) that acknowledge a webhook."""
        if self._turn_limiter is None:
            threads = turn_threads_for(self.backend.settings.turn_threads)
            self._turn_limiter = anyio.CapacityLimiter(threads)
        return self._turn_limiter

    async def drain(self) -> None:
        """Let streamed turns whose clients left finish closing (at shutdown)."""
        if self._pumps:
            await asyncio.wait(set(self._pumps))

    def _count_turn(self, channel: str, began: float) -> None:
        self.metrics.inc("assistant_turns_total", channel=channel)
        self.metrics.inc(
            "assistant_turn_seconds_total", time.perf_counter() - began, channel=channel
        )

    # ---- conversations ----------------------------------------------------------------------

    def history(
        self, caller: Caller, conversation_id: str, action: Action = Action.READ
    ) -> list[Event]:
        """The conversation's events (to read, export or resume); ConversationNotFound when it has
        none."""
        self.authorize(caller, action, conversation_id)
        events = self.service.history(conversation_id)
        if not events:
            raise ConversationNotFound(f"no conversation with id {conversation_id!r}")
        return events

    def conversation(
        self, caller: Caller, conversation_id: str, action: Action = Action.READ
    ) -> tuple[list[Event], ConversationState]:
        """Its events and replayed state (slots with provenance, handoff)."""
        events = self.history(caller, conversation_id, action)
        return events, self.service.state(conversation_id)

    def state(self, caller: Caller, conversation_id: str) -> ConversationState:
        self.authorize(caller, Action.READ, conversation_id)
        return self.service.state(conversation_id)

    def feedback(
        self, caller: Caller, conversation_id: str, seq: int | None, positive: bool
    ) -> int:
        """A thumbs up/down on event `seq` (None: the conversation); returns the event's seq."""
        self.authorize(caller, Action.FEEDBACK, conversation_id)
        return self.service.feedback(conversation_id, seq, positive)

    def hand_back(self, caller: Caller, conversation_id: str, agent: str = "") -> bool:
        """An agent returns a handed-off conversation to the bot; False if it was not handed off."""
        self.authorize(caller, Action.HAND_BACK, conversation_id)
        return self.service.hand_back(conversation_id, agent)


def turn_action(message: Message, streamed: bool) -> Action:
    """What a message asks to do, in the policy's words: a slash command, or a message."""
    if message.text.lstrip().startswith("/"):
        return Action.COMMAND
    return Action.STREAM if streamed else Action.SEND


def answer_seq(events: list[Event], nth: int) -> int | None:
    """The seq of the nth answer (from 1): a conversation's events are numbered 1, 2, 3 …"""
    answers = [seq for seq, event in enumerate(events, start=1) if event.type == "bot"]
    return answers[nth - 1] if 0 < nth <= len(answers) else None
