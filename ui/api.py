"""The REST API under /api/v1: send a message, stream a reply, read and export a conversation."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from dialog.events import Event
from dialog.messages import Message, new_conversation_id
from dialog.state import ConversationState
from ui.channel import (
    ANONYMOUS_API,
    Action,
    Caller,
    Delta,
    Done,
    Failed,
    Failure,
    Started,
    TurnEvent,
)
from ui.channel.citations import reply_json, sources_json
from ui.runtime import Runtime
from ui.views import event_json, export_markdown, state_json

router = APIRouter(prefix="/api/v1", tags=["chat"])
CONVERSATION_ID = r"^[A-Za-z0-9_.:\-]{1,64}$"


class MessageIn(BaseModel):
    """A customer's message; leave `conversation_id` out to start a new conversation."""

    text: str = Field(min_length=1, max_length=100_000)
    conversation_id: str | None = Field(default=None, pattern=CONVERSATION_ID)


class SourceOut(BaseModel):
    source: str
    chunk_id: int
    score: float
    text: str
    kb_version: int = Field(
        0, description="The knowledge base's version when the passage was retrieved."
    )
    quote: str = Field(
        "",
        description=(
            "The passage's sentence or line the answer rests on, verbatim; empty when the answer "
            "did not draw on this passage."
        ),
    )


class ReplyOut(BaseModel):
    conversation_id: str
    answer: str
    sources: list[SourceOut]
    handoff: bool = False


class ConversationOut(BaseModel):
    conversation_id: str
    events: list[dict[str, Any]]
    state: dict[str, Any]


class FeedbackIn(BaseModel):
    positive: bool
    seq: int | None = Field(
        default=None, description="The answer's event number; the last answer if left out."
    )


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def caller_of(request: Request) -> Caller:
    """Who is asking the REST API: anyone, while it has no keys (issue 17 reads the API key
    here)."""
    return ANONYMOUS_API


Asker = Annotated[Caller, Depends(caller_of)]


def failure_response(failure: Failure) -> JSONResponse:
    """A failed call as HTTP, the same for every route and for the exception handlers."""
    headers = {"Retry-After": str(failure.retry_after_s)} if failure.retry_after_s else None
    return JSONResponse({"detail": failure.message}, status_code=failure.status, headers=headers)


def _message(body: MessageIn) -> Message:
    return Message(body.text, body.conversation_id or new_conversation_id(), channel="api")


@router.post("/messages", response_model=ReplyOut, summary="Send a message, get the whole answer")
async def send_message(body: MessageIn, request: Request, caller: Asker) -> dict[str, object]:
    return reply_json(await runtime_of(request).channel.arun(caller, _message(body)))


@router.post(
    "/messages/stream",
    summary="Send a message, stream the answer (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": (
                "`sources` (the passages retrieved), then `delta`s, then `done` (the reply, whose "
                "`sources` carry their `quote`s)."
            ),
        }
    },
)
async def stream_message(body: MessageIn, request: Request, caller: Asker) -> Response:
    """Events: `sources` (known before the first word), `delta` (text), `done` (the final reply:
    its sources are the ones the answer kept, with their quotes) or `error`. A turn that cannot
    start (a busy conversation) is an HTTP error, not a stream."""
    events = runtime_of(request).channel.astream(caller, _message(body))
    first = await anext(events)
    if not isinstance(first, Started):
        await events.aclose()
        assert isinstance(first, Failed)
        return failure_response(first.failure)
    return StreamingResponse(
        _sse_events(first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )


async def _sse_events(
    started: Started, events: AsyncGenerator[TurnEvent, None]
) -> AsyncIterator[str]:
    """The turn's events as SSE; a client that hangs up stops the turn at its next word."""
    try:
        sources = sources_json(started.sources)
        yield _sse("sources", {"conversation_id": started.conversation_id, "sources": sources})
        async for event in events:
            if isinstance(event, Delta):
                yield _sse("delta", {"text": event.text})
            elif isinstance(event, Done):
                yield _sse("done", reply_json(event.reply))
            elif isinstance(event, Failed):  # the turn has stored it as answer_failed
                yield _sse("error", {"error": event.failure.kind})
    finally:
        await events.aclose()


def _sse(event: str, data: dict[str, object]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No conversation with that id."}}


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    summary="Read a conversation",
    responses=NOT_FOUND,
)
async def read_conversation(
    conversation_id: str, request: Request, caller: Asker
) -> dict[str, object]:
    runtime = runtime_of(request)
    events, state = await runtime.blocking(runtime.channel.conversation, caller, conversation_id)
    return _conversation_json(conversation_id, events, state)


def _conversation_json(
    conversation_id: str, events: list[Event], state: ConversationState
) -> dict[str, object]:
    return {
        "conversation_id": conversation_id,
        "events": [event_json(e) for e in events],
        "state": state_json(state),
    }


@router.get(
    "/conversations/{conversation_id}/export",
    summary="Export a conversation as a JSON or Markdown download",
    responses={200: {"content": {"application/json": {}, "text/markdown": {}}}, **NOT_FOUND},
)
async def export_conversation(
    conversation_id: str,
    request: Request,
    caller: Asker,
    format: Annotated[Literal["json", "markdown"], Query()] = "json",
) -> Response:
    runtime = runtime_of(request)
    events, state = await runtime.blocking(
        runtime.channel.conversation, caller, conversation_id, Action.EXPORT
    )
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in conversation_id)
    if format == "markdown":
        return PlainTextResponse(
            export_markdown(conversation_id, events),
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="conversation-{safe}.md"'},
        )
    return Response(
        json.dumps(
            _conversation_json(conversation_id, events, state), ensure_ascii=False, indent=2
        ),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="conversation-{safe}.json"'},
    )


@router.post(
    "/conversations/{conversation_id}/feedback",
    status_code=204,
    summary="Thumbs up or down on an answer",
    responses={404: {"description": "No conversation with that id, or no event `seq` in it."}},
)
async def give_feedback(
    conversation_id: str, body: FeedbackIn, request: Request, caller: Asker
) -> Response:
    runtime = runtime_of(request)
    await runtime.blocking(
        runtime.channel.feedback, caller, conversation_id, body.seq, body.positive
    )
    return Response(status_code=204)
