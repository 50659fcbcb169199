"""The REST API under /api/v1: send a message, stream a reply, read and export a conversation."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from queue import Queue
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from dialog.errors import EventNotFound
from dialog.messages import Message, new_conversation_id
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
    return request.app.state.runtime  # type: ignore[no-any-return]


def _message(body: MessageIn) -> Message:
    return Message(body.text, body.conversation_id or new_conversation_id(), channel="api")


@router.post("/messages", response_model=ReplyOut, summary="Send a message, get the whole answer")
async def send_message(body: MessageIn, request: Request) -> dict[str, Any]:
    reply = await runtime_of(request).run_turn(_message(body))
    return {**reply.as_json(), "handoff": reply.handoff}


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
async def stream_message(body: MessageIn, request: Request) -> StreamingResponse:
    """Events: `sources` (known before the first word), `delta` (text), `done` (the final reply:
    its sources are the ones the answer kept, with their quotes) or `error`."""
    runtime = runtime_of(request)
    message = _message(body)
    turn = await runtime.blocking(runtime.assistant.start, message)
    runtime.metrics.inc("assistant_turns_total", channel=message.channel)

    async def events() -> AsyncIterator[str]:
        sources = [s.as_json() for s in turn.sources]
        yield _sse("sources", {"conversation_id": turn.conversation_id, "sources": sources})
        queue: Queue[tuple[str, Any]] = Queue()
        stop = threading.Event()
        threading.Thread(target=_pump, args=(turn, queue, stop), daemon=True).start()
        try:
            while True:
                kind, value = await anyio.to_thread.run_sync(queue.get, abandon_on_cancel=True)
                if kind == "delta":
                    yield _sse("delta", {"text": value})
                elif kind == "error":  # the turn has stored it as answer_failed
                    yield _sse("error", {"error": type(value).__name__})
                    return
                else:
                    yield _sse("done", {**value.as_json(), "handoff": value.handoff})
                    return
        finally:  # the client may be gone: the generating thread stops at the next word
            stop.set()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


def _pump(turn: Any, queue: Queue[tuple[str, Any]], stop: threading.Event) -> None:
    """Iterate the (blocking) turn in its own thread; a departed client stops it, which the turn
    records as a failed answer, releasing the conversation's lock."""
    deltas = iter(turn)
    try:
        for delta in deltas:
            if stop.is_set():
                return
            queue.put(("delta", delta))
        queue.put(("done", turn.reply))
    except Exception as err:
        queue.put(("error", err))
    finally:
        deltas.close()


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No conversation with that id."}}


async def _require(runtime: Runtime, conversation_id: str) -> None:
    if not await runtime.blocking(runtime.components.store.exists, conversation_id):
        raise HTTPException(404, f"no conversation with id {conversation_id!r}")


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    summary="Read a conversation",
    responses=NOT_FOUND,
)
async def read_conversation(conversation_id: str, request: Request) -> dict[str, Any]:
    runtime = runtime_of(request)
    await _require(runtime, conversation_id)
    events = await runtime.blocking(runtime.assistant.history, conversation_id)
    state = await runtime.blocking(runtime.assistant.state, conversation_id)
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
    format: Annotated[Literal["json", "markdown"], Query()] = "json",
) -> Response:
    conversation = await read_conversation(conversation_id, request)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in conversation_id)
    if format == "markdown":
        events = await runtime_of(request).blocking(
            runtime_of(request).assistant.history, conversation_id
        )
        return PlainTextResponse(
            export_markdown(conversation_id, events),
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="conversation-{safe}.md"'},
        )
    return Response(
        json.dumps(conversation, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="conversation-{safe}.json"'},
    )


@router.post(
    "/conversations/{conversation_id}/feedback",
    status_code=204,
    summary="Thumbs up or down on an answer",
    responses={404: {"description": "No conversation with that id, or no event `seq` in it."}},
)
async def give_feedback(conversation_id: str, body: FeedbackIn, request: Request) -> Response:
    runtime = runtime_of(request)
    await _require(runtime, conversation_id)
    feedback = getattr(runtime.assistant, "feedback", None)
    if feedback is None:
        raise HTTPException(501, "this version of the dialog manager does not record feedback")
    try:
        await anyio.to_thread.run_sync(feedback, conversation_id, body.seq, body.positive)
    except EventNotFound as err:
        raise HTTPException(404, str(err)) from err
    return Response(status_code=204)
