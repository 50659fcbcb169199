"""The channel adapter every front end runs its turns through: the access hook sees every call with
its caller and action, turns run on the turn threads and are counted for every channel, and one
error mapping answers a failure the same way in REST, SSE, the web chat and the terminal."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import anyio
import httpx
import pytest

from assistant.wiring import Components
from assistant_core.errors import LLMTimeout
from dialog.errors import ConversationNotFound, EventNotFound
from dialog.locking import TurnLockTimeout
from dialog.messages import Message
from tests.fakes import FakeChatModel
from tests.ui.conftest import TOKEN_HEADER, ApiClient, scoped, serving, sse_events
from ui.channel import (
    ANONYMOUS_API,
    LOCAL,
    AccessDenied,
    Action,
    Caller,
    Channel,
    Delta,
    Done,
    Failed,
    Role,
    Started,
    failure_for,
)
from ui.runtime import Runtime
from ui.server import create_app
from ui.web import WebChat

pytestmark = pytest.mark.unit
Call = tuple[Caller, Action, str | None]


def recorder(calls: list[Call]) -> Any:
    """An access hook that allows everything and remembers what it was asked."""

    def authorize(caller: Caller, action: Action, conversation_id: str | None) -> None:
        calls.append((caller, action, conversation_id))

    return authorize


def test_every_rest_route_asks_the_access_hook_with_its_action(
    components: Components, model: FakeChatModel
) -> None:
    model.enqueue("Two years.", "Eighteen months.")
    app = create_app(components, web=False)
    calls: list[Call] = []
    app.state.runtime.channel.policy = recorder(calls)
    cid = scoped("c-7")
    with serving(app) as base, ApiClient(base) as api:
        body = {"text": "blender warranty", "conversation_id": "c-7"}
        assert api.post("/api/v1/messages", json=body).status_code == 200
        sse_events(api, {**body, "text": "loyalty points"})
        api.post("/api/v1/messages", json={**body, "text": "/help"})
        api.get(f"/api/v1/conversations/{cid}")
        api.get(f"/api/v1/conversations/{cid}/export")
        api.post(f"/api/v1/conversations/{cid}/feedback", json={"positive": True})
    assert all(caller.token for caller, _, _ in calls), "each call carries the conversation token"
    assert calls == [
        (ANONYMOUS_API, action, cid)
        for action in (
            Action.SEND,
            Action.STREAM,
            Action.COMMAND,
            Action.READ,
            Action.EXPORT,
            Action.FEEDBACK,
        )
    ]


def test_a_refusal_from_the_hook_is_the_answer_and_nothing_is_stored(
    components: Components, model: FakeChatModel
) -> None:
    model.enqueue("Two years.")
    theirs = scoped("theirs")
    components.assistant.handle(Message("blender warranty", theirs, channel="api"))

    def hide_others(caller: Caller, action: Action, conversation_id: str | None) -> None:
        if conversation_id == theirs:
            raise AccessDenied(f"no conversation with id {conversation_id!r}", status=404)

    app = create_app(components, web=False)
    app.state.runtime.channel.policy = hide_others
    token = {TOKEN_HEADER: app.state.access.owners.bind(theirs, "api", ANONYMOUS_API)}
    with serving(app) as base, ApiClient(base, headers=token) as api:  # the REST check passes
        read = api.get(f"/api/v1/conversations/{theirs}")
        sent = api.post("/api/v1/messages", json={"text": "hi", "conversation_id": "theirs"})
        streamed = api.post(
            "/api/v1/messages/stream", json={"text": "hi", "conversation_id": "theirs"}
        )
    for response in (read, sent, streamed):
        assert response.status_code == 404, response.text
        assert response.json() == {"detail": f"no conversation with id {theirs!r}"}
    assert [e.type for e in components.assistant.history(theirs)] == ["user", "bot"]


def test_streamed_rest_and_web_chat_turns_run_on_the_turn_threads(
    components: Components, model: FakeChatModel
) -> None:
    """ASSISTANT_TURN_THREADS=1: while an answer streams, the one turn thread is taken, for SSE
    and for the web chat alike (before, SSE used a raw thread and the web chat Gradio's)."""
    components.settings.turn_threads = 1
    app = create_app(components, web=False)
    web = Runtime(components)  # the web chat's own runtime, on this test's event loop
    channels = [app.state.runtime.channel]
    taken: list[int] = []
    model.before_chunk = lambda _n: taken.append(channels[-1].turn_limiter.borrowed_tokens)
    model.enqueue("Points expire after eighteen months.", "Two years.")
    with serving(app) as base:
        assert sse_events(base, {"text": "When do loyalty points expire?"})[-1][0] == "done"
        metrics = httpx.get(f"{base}/metrics").text
    assert taken and set(taken) == {1}
    assert 'assistant_turns_total{channel="api"} 1' in metrics
    assert 'assistant_turn_seconds_total{channel="api"} ' in metrics

    taken.clear()
    channels.append(web.channel)
    chat = WebChat(web)
    asyncio.run(_on_worker_thread(lambda: list(chat.respond("blender warranty", [], ""))))
    assert taken and set(taken) == {1}
    assert web.metrics.value("assistant_turns_total", channel="web") == 1
    assert web.metrics.value("assistant_turn_seconds_total", channel="web") > 0


async def _on_worker_thread(function: Any) -> Any:
    """As Gradio runs a synchronous handler: on a worker thread of the event loop."""
    return await anyio.to_thread.run_sync(function)


def test_a_busy_conversation_reads_the_same_in_the_web_chat_and_the_terminal(
    components: Components, model: FakeChatModel
) -> None:
    components.settings.turn_lock_timeout_s = 0.2
    expected = (
        "conversation c-busy is busy (waited 0.2 s); nothing was lost, please try again shortly"
    )
    chat = WebChat(Runtime(components))
    channel = Channel(components)
    with components.assistant.locks.acquire("c-busy", timeout=5):
        steps = asyncio.run(_on_worker_thread(lambda: list(chat.respond("hi", [], "c-busy"))))
        events = list(channel.stream(LOCAL, Message("hi", "c-busy", channel="terminal")))
    assert steps[-1][1][-1] == {"role": "assistant", "content": f"Sorry, {expected}."}
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert events[0].failure.sentence == expected[0].upper() + expected[1:] + "."
    assert components.assistant.history("c-busy") == []


def test_a_terminal_turn_streams_then_settles_and_is_counted(
    components: Components, model: FakeChatModel
) -> None:
    model.enqueue("Points expire after eighteen months.")
    channel = Channel(components)
    events = list(channel.stream(LOCAL, Message("loyalty points", "t-1", channel="terminal")))
    assert isinstance(events[0], Started) and events[0].conversation_id == "t-1"
    assert isinstance(events[-1], Done)
    text = "".join(e.text for e in events if isinstance(e, Delta))
    assert text == events[-1].reply.answer == "Points expire after eighteen months."
    assert channel.metrics.value("assistant_turns_total", channel="terminal") == 1
    assert channel.metrics.value("assistant_turn_seconds_total", channel="terminal") > 0
    assert channel.metrics.value("assistant_answers_total", action="passed") == 1


def test_closing_a_stream_early_records_the_answer_failed_and_frees_the_conversation(
    components: Components, model: FakeChatModel
) -> None:
    model.enqueue("Points expire after eighteen months.", "Two years.")
    channel = Channel(components)
    events = channel.stream(LOCAL, Message("loyalty points", "t-2", channel="terminal"))
    assert isinstance(next(events), Started) and isinstance(next(events), Delta)
    events.close()  # Ctrl-C, or a client gone
    assert channel.run(LOCAL, Message("blender warranty", "t-2")).answer == "Two years."
    assert [e.type for e in components.assistant.history("t-2")] == [
        "user",
        "answer_failed",
        "user",
        "bot",
    ]


@pytest.mark.parametrize(
    ("error", "status", "retry"),
    [
        (TurnLockTimeout("conversation c1 is busy (waited 60 s)"), 503, 5),
        (sqlite3.OperationalError("database is locked"), 503, 5),
        (LLMTimeout("no answer"), 503, 5),
        (ConversationNotFound("no conversation with id 'x'"), 404, None),
        (EventNotFound("conversation x has no event 9"), 404, None),
        (AccessDenied("not yours", status=404), 404, None),
        (AccessDenied("agents only"), 403, None),
        (ValueError("surprise"), 500, None),
    ],
)
def test_one_error_mapping(error: Exception, status: int, retry: int | None) -> None:
    failure = failure_for(error)
    assert (failure.status, failure.retry_after_s, failure.kind) == (
        status,
        retry,
        type(error).__name__,
    )
    assert failure.sentence[0].isupper() and failure.sentence.endswith(".")


def test_a_webhook_job_runs_its_turn_as_the_webhook_on_the_turn_threads(
    components: Components, model: FakeChatModel
) -> None:
    """`Runtime.run_turn` is what a delivery job calls: the hook sees the webhook's role."""
    components.settings.turn_threads = 1
    runtime = Runtime(components)
    calls: list[Call] = []
    runtime.channel.policy = recorder(calls)
    taken: list[int] = []
    model.before_chunk = lambda _n: taken.append(runtime.channel.turn_limiter.borrowed_tokens)
    model.enqueue("Two years.")
    message = Message("blender warranty", "chatwoot-1-7", channel="chatwoot")
    reply = asyncio.run(runtime.run_turn(message))
    assert reply.answer == "Two years." and taken and set(taken) == {1}
    assert calls == [(Caller(Role.WEBHOOK, "webhook:chatwoot"), Action.SEND, "chatwoot-1-7")]
    assert runtime.metrics.value("assistant_turns_total", channel="chatwoot") == 1
