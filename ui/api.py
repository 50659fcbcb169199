"""The REST API under /api/v1: send a message, stream a reply, read and export a conversation.

The caller is its bearer key's role (`caller_of`); a conversation started here is bound to that
caller by a token returned once (`X-Conversation-Token`) and required on every later call; the
channel's policy answers every call's 401/403/404.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from dialog.events import Event
from dialog.messages import Message
from dialog.state import ConversationState
from ui.access import Action, Principal, Role
from ui.access_http import access_of, caller_of, raise_for
from ui.access_owners import TOKEN_HEADER
from ui.access_routes import message_action
from ui.channel import Delta, Done, Failed, Failure, Started, TurnEvent
from ui.channel.citations import reply_json, sources_json
from ui.channel.failures import KNOWN
from ui.runtime import Runtime
from ui.views import event_json, export_markdown, state_json

BEARER = HTTPBearer(
    auto_error=False,
    description="An API key (`assistant keys create --role customer|agent|admin`).",
)
"""Declares the bearer key in the OpenAPI description; `caller_of` reads and checks it."""

router = APIRouter(prefix="/api/v1", tags=["chat"], dependencies=[Depends(BEARER)])
CONVERSATION_ID = r"^[A-Za-z0-9_.:\-]{1,64}$"


class MessageIn(BaseModel):
    """A customer's message; leave `conversation_id` out to start a new conversation, or name one:
    a customer's id is kept in its own namespace (`api:<key id>:<id>`), returned in the reply."""

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
    conversation_token: str | None = Field(
        None,
        description=(
            "Only in the reply that started the conversation (also the `X-Conversation-Token` "
            "header): send it as `X-Conversation-Token` with every later call on it."
        ),
    )


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


Asker = Annotated[Principal, Depends(caller_of)]
Token = Annotated[
    str | None,
    Header(
        alias=TOKEN_HEADER,
        description="The token the reply that started this conversation returned.",
    ),
]


def failure_response(failure: Failure, token: str | None = None) -> JSONResponse:
    """A failed call as HTTP, the same for every route and for the exception handlers; a new
    conversation's token still goes back, so its owner can reach it after a retry."""
    headers = {"Retry-After": str(failure.retry_after_s)} if failure.retry_after_s else {}
    if failure.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if token:
        headers[TOKEN_HEADER] = token
    return JSONResponse(
        {"detail": failure.message}, status_code=failure.status, headers=headers or None
    )


class Opened:
    """A message's turn, ready to run: its caller holding the conversation's token, the message
    under its scoped id, and the token to return when this call started the conversation."""

    def __init__(self, caller: Principal, message: Message, token: str | None) -> None:
        self.caller, self.message, self.token = caller, message, token

    @property
    def headers(self) -> dict[str, str]:
        """The conversation token header, only when this call created it."""
        return {TOKEN_HEADER: self.token} if self.token else {}


async def _open(request: Request, caller: Principal, body: MessageIn, stream: bool) -> Opened:
    """The policy's answer for this message (401/403/404 raised) and the conversation it goes to."""
    action = message_action(body.text, stream=stream)
    opening = await runtime_of(request).blocking(
        access_of(request).open, caller, "api", body.conversation_id, action
    )
    raise_for(opening.decision, caller, action, body.conversation_id)
    owner = caller.with_token(opening.token or caller.token)
    message = Message(body.text, opening.conversation_id, channel="api")
    return Opened(owner, message, opening.token)


async def _audit_command(request: Request, opened: Opened) -> None:
    """Staff commands (a /forget for a customer) go into the audit trail: the command word only."""
    if opened.caller.role in {Role.AGENT, Role.ADMIN} and opened.message.text.startswith("/"):
        command = opened.message.text.split()[0][:64]
        audit = access_of(request).audit
        await runtime_of(request).blocking(
            audit.record, opened.caller, "command", opened.message.conversation_id, command
        )


def _refusals(forbidden: str, not_found: str) -> dict[int | str, dict[str, Any]]:
    """A route's 401/403/404 for the OpenAPI description, with what its 403 and 404 mean."""
    return {
        401: {"description": "Keys exist and none (or a revoked one) was sent."},
        403: {"description": forbidden},
        404: {"description": not_found},
    }


TOKEN_RETURNED = _refusals(
    "Staff writing into a conversation that is not theirs.",
    "No such conversation for this caller (or a wrong token).",
)


@router.post(
    "/messages",
    response_model=ReplyOut,
    summary="Send a message, get the whole answer",
    responses=TOKEN_RETURNED,
)
async def send_message(
    body: MessageIn, request: Request, caller: Asker, token: Token = None
) -> Response | dict[str, object]:
    """A reply that starts a conversation carries its token (body and header), once."""
    runtime = runtime_of(request)
    opened = await _open(request, caller.with_token(token), body, stream=False)
    try:
        reply = await runtime.channel.arun(opened.caller, opened.message)
    except KNOWN as err:
        if opened.token is None:
            raise
        return failure_response(runtime.channel.failure(err), opened.token)
    await _audit_command(request, opened)
    content = {**reply_json(reply), "conversation_token": opened.token}
    return JSONResponse(content, headers=opened.headers)


@router.post(
    "/messages/stream",
    summary="Send a message, stream the answer (server-sent events)",
    response_class=StreamingResponse,
    responses={
        **TOKEN_RETURNED,
        200: {
            "content": {"text/event-stream": {}},
            "description": (
                "`sources` (the passages retrieved), then `delta`s, then `done` (the reply, whose "
                "`sources` carry their `quote`s)."
            ),
        },
    },
)
async def stream_message(
    body: MessageIn, request: Request, caller: Asker, token: Token = None
) -> Response:
    """Events: `sources` (known before the first word; with `conversation_token` when this call
    started the conversation), `delta` (text), `done` (the final reply: its sources are the ones
    the answer kept, with their quotes) or `error`. A turn that cannot start (a busy
    conversation) is an HTTP error, not a stream."""
    opened = await _open(request, caller.with_token(token), body, stream=True)
    events = runtime_of(request).channel.astream(opened.caller, opened.message)
    first = await anext(events)
    if not isinstance(first, Started):
        await events.aclose()
        assert isinstance(first, Failed)
        return failure_response(first.failure, opened.token)
    await _audit_command(request, opened)
    return StreamingResponse(
        _sse_events(first, events, opened.token),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", **opened.headers},
    )


async def _sse_events(
    started: Started, events: AsyncGenerator[TurnEvent, None], token: str | None
) -> AsyncIterator[str]:
    """The turn's events as SSE; a client that hangs up stops the turn at its next word."""
    try:
        sources = sources_json(started.sources)
        first: dict[str, object] = {"conversation_id": started.conversation_id, "sources": sources}
        if token:
            first["conversation_token"] = token
        yield _sse("sources", first)
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


NOT_FOUND = _refusals(
    "The role may not do this in that conversation.",
    "No conversation with that id for this caller (or a wrong token).",
)


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationOut,
    summary="Read a conversation",
    responses=NOT_FOUND,
)
async def read_conversation(
    conversation_id: str, request: Request, caller: Asker, token: Token = None
) -> dict[str, object]:
    runtime = runtime_of(request)
    owner = caller.with_token(token)
    events, state = await runtime.blocking(runtime.channel.conversation, owner, conversation_id)
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
    token: Token = None,
    format: Annotated[Literal["json", "markdown"], Query()] = "json",
) -> Response:
    runtime = runtime_of(request)
    events, state = await runtime.blocking(
        runtime.channel.conversation, caller.with_token(token), conversation_id, Action.EXPORT
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
    responses={**NOT_FOUND, 404: {"description": "No such conversation, or no event `seq`."}},
)
async def give_feedback(
    conversation_id: str, body: FeedbackIn, request: Request, caller: Asker, token: Token = None
) -> Response:
    runtime = runtime_of(request)
    await runtime.blocking(
        runtime.channel.feedback, caller.with_token(token), conversation_id, body.seq, body.positive
    )
    return Response(status_code=204)
