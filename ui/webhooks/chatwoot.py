"""`POST /webhooks/chatwoot`: a Chatwoot agent bot.

Chatwoot posts every event of the bot's inboxes here. We answer `message_created` events whose
message is `incoming` from a `contact` (never our own or an agent's outgoing messages, never
private notes) through Chatwoot's messages API, and on handoff set the conversation's status to
`open` so a human takes it. Deliveries are signed by Chatwoot (`X-Chatwoot-Signature:
sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`, `X-Chatwoot-Timestamp`) when the
bot has a secret; set the same one as ASSISTANT_CHATWOOT_WEBHOOK_SECRET.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from dialog.messages import Message, Reply, Source
from ui.channel import webhook_caller
from ui.channel.citations import quote_lines
from ui.jobs import DeliveryQueue, Job
from ui.runtime import Runtime
from ui.webhooks.common import count, read_body, secrets_of, verify_delivery
from ui.webhooks.delivery import SendError
from ui.webhooks.worker import DeliveryWorkers

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
SOURCE = "chatwoot"


class ChatwootError(Exception):
    """Chatwoot's API refused a call or could not be reached; `permanent` for a 4xx refusal."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class ChatwootClient:
    """The two calls of Chatwoot's application API an agent bot needs; the HTTP client is injected.

    >>> await ChatwootClient("https://chat.example.com", token, http).send_message(1, 42, "Hello")
    """

    base_url: str
    api_token: str
    http: httpx.AsyncClient

    def _url(self, account_id: int, conversation_id: int, action: str) -> str:
        return (
            f"{self.base_url.rstrip('/')}/api/v1/accounts/{account_id}"
            f"/conversations/{conversation_id}/{action}"
        )

    async def _post(self, url: str, payload: dict[str, Any]) -> None:
        try:
            response = await self.http.post(
                url, json=payload, headers={"api_access_token": self.api_token}, timeout=15.0
            )
        except httpx.HTTPError as err:
            raise ChatwootError(f"Chatwoot unreachable: {type(err).__name__}") from err
        if response.status_code >= 300:
            code = response.status_code
            raise ChatwootError(
                f"Chatwoot answered {code} to {url}",
                permanent=code < 500 and code not in (408, 429),
            )

    async def send_message(self, account_id: int, conversation_id: int, content: str) -> None:
        payload = {"content": content, "message_type": "outgoing", "private": False}
        await self._post(self._url(account_id, conversation_id, "messages"), payload)

    async def set_status(self, account_id: int, conversation_id: int, status: str) -> None:
        await self._post(
            self._url(account_id, conversation_id, "toggle_status"), {"status": status}
        )


@dataclass(frozen=True)
class ContactMessage:
    """The parts of a `message_created` event we act on."""

    account_id: int
    conversation_id: int
    message_id: int
    content: str
    sender: str
    status: str = ""
    """The conversation's status the event carries (`pending`, `resolved`, ...)."""

    @property
    def internal_conversation_id(self) -> str:
        return f"chatwoot-{self.account_id}-{self.conversation_id}"


def contact_message(event: dict[str, Any]) -> ContactMessage | str:
    """The contact's message, or why this event is none of ours to answer."""
    if event.get("event") != "message_created":
        return f"event {event.get('event')!r}"
    if event.get("message_type") not in ("incoming", 0):
        return "not an incoming message (ours or an agent's)"
    if event.get("private"):
        return "private note"
    sender = event.get("sender") or {}
    if sender.get("type") not in (None, "contact"):
        return f"sender is a {sender.get('type')}"
    conversation = event.get("conversation") or {}
    if conversation.get("status") == "open":
        return "a human has the conversation (status open)"
    content = event.get("content")
    if not isinstance(content, str) or not content.strip():
        return "no text"
    try:
        account = int((event.get("account") or {})["id"])
        conversation_id = int(conversation["id"])  # the display id, the one the API takes
        message_id = int(event["id"])
    except (KeyError, TypeError, ValueError):
        return "missing account, conversation or message id"
    return ContactMessage(
        account,
        conversation_id,
        message_id,
        content,
        str(sender.get("id") or "contact"),
        str(conversation.get("status") or ""),
    )


QUOTE_CHARS = 160
"""A chat message is no place for a whole passage: the evidence is cut to about this length."""


def reply_text(reply: Reply) -> str:
    """The answer, the titles of its sources on one line, then a short quote of each source's
    evidence so the customer sees what the answer rests on."""
    titles = list(dict.fromkeys(_cited(s) for s in reply.sources))
    quotes = dict.fromkeys(
        f"“{short_quote(s.quote)}” ({_title(s)})" for s in reply.sources if s.quote.strip()
    )
    sources = f"\n\nSources: {'; '.join(titles)}" if titles else ""
    return reply.answer + sources + "".join(f"\n{line}" for line in quotes)


def short_quote(quote: str, limit: int = QUOTE_CHARS) -> str:
    """The quote on one line (its lines joined by " / "), without control characters, cut at a
    word boundary with an ellipsis when longer than `limit`."""
    flat = " / ".join(quote_lines(quote))
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _cited(source: Source) -> str:
    """A source's title, with its link when it has one (Chatwoot makes URLs clickable)."""
    return f"{_title(source)} ({source.url})" if source.url else _title(source)


def _title(source: Source) -> str:
    return source.title or source.source.rsplit("/", 1)[-1]


@router.post(
    "/chatwoot",
    summary="Chatwoot agent bot",
    responses={
        200: {
            "description": (
                '`{"status": "accepted"|"ignored"|"duplicate"}`; '
                "the answer goes through Chatwoot's API."
            )
        },
        401: {
            "description": (
                "Signature missing or wrong (when ASSISTANT_CHATWOOT_WEBHOOK_SECRET is set)."
            )
        },
        400: {"description": "Malformed JSON."},
        413: {"description": "Body too large."},
        503: {
            "description": "ASSISTANT_CHATWOOT_BASE_URL or ASSISTANT_CHATWOOT_API_TOKEN not set."
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": (
                            "A Chatwoot agent-bot event "
                            "(message_created, conversation_status_changed, ...)."
                        ),
                        "properties": {"event": {"type": "string"}},
                        "required": ["event"],
                    }
                }
            },
        }
    },
)
async def chatwoot_webhook(request: Request) -> JSONResponse:
    """Acknowledge at once (Chatwoot waits 5 s at most); answer in the background."""
    workers: DeliveryWorkers = request.app.state.deliveries
    with workers.intake():
        return await _acknowledge(request, workers)


async def _acknowledge(request: Request, workers: DeliveryWorkers) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    body = await read_body(request, settings.max_body_bytes)
    if not settings.chatwoot_base_url or settings.chatwoot_api_token is None:
        raise HTTPException(
            503,
            (
                "the Chatwoot bot is off: set ASSISTANT_CHATWOOT_BASE_URL and "
                "ASSISTANT_CHATWOOT_API_TOKEN"
            ),
        )
    secrets = secrets_of(settings.chatwoot_webhook_secret)
    if secrets:
        verify_delivery(request, body, secrets, source=SOURCE, header_prefix="x-chatwoot")
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise HTTPException(400, f"malformed JSON: {err}") from err
    if isinstance(event, dict) and event.get("event") == "conversation_status_changed":
        return JSONResponse(await _status_changed(runtime, event))
    found = contact_message(event) if isinstance(event, dict) else "not a JSON object"
    if isinstance(found, str):
        count(runtime, SOURCE, "ignored")
        return JSONResponse({"status": "ignored", "reason": found})
    delivery_id = f"{found.account_id}:{found.message_id}"
    payload = asdict(found)
    job = await runtime.blocking(
        workers.queue.enqueue, SOURCE, delivery_id, found.internal_conversation_id, payload
    )
    if job is None:
        count(runtime, SOURCE, "duplicate")
        return JSONResponse({"status": "duplicate"})
    workers.wake()  # stored before this answer: a worker in some process answers it
    count(runtime, SOURCE, "accepted")
    return JSONResponse({"status": "accepted"})


class ChatwootSender:
    """Chatwoot deliveries: the answer through the messages API; a handoff opens the conversation
    for a human (tried even when posting the message fails, and each retried until done)."""

    source = SOURCE

    def message(self, job: Job) -> Message:
        found = ContactMessage(**job.payload)
        return Message(
            found.content,
            found.internal_conversation_id,
            channel="chatwoot",
            sender=found.sender,
            delivery_id=job.delivery_id,
        )

    async def before_turn(self, runtime: Runtime, queue: DeliveryQueue, job: Job) -> None:
        """An agent resolved (or set pending) a conversation we handed off, and Chatwoot did not
        tell the bot: the status this message carries says so, and the bot answers again."""
        if job.payload.get("status") not in ("pending", "resolved"):
            return
        if await runtime.blocking(queue.unfinished_before, job):
            return  # our own handoff may still be on its way to Chatwoot
        assistant = runtime.assistant
        state = await runtime.blocking(assistant.state, job.conversation_id)
        if state.handoff:
            await runtime.blocking(assistant.hand_back, job.conversation_id, "chatwoot")

    def steps(self, job: Job, reply: Reply) -> list[str]:
        steps = ["message"] if reply.answer.strip() else []  # during a handoff: silent
        return steps + (["status"] if reply.handoff else [])

    async def send(self, runtime: Runtime, job: Job, reply: Reply, step: str) -> None:
        settings = runtime.settings
        assert runtime.http is not None
        if not settings.chatwoot_base_url or settings.chatwoot_api_token is None:
            raise SendError("the Chatwoot bot is off (ASSISTANT_CHATWOOT_BASE_URL)")
        client = ChatwootClient(
            settings.chatwoot_base_url, settings.chatwoot_api_token.get_secret_value(), runtime.http
        )
        account, conversation = int(job.payload["account_id"]), int(job.payload["conversation_id"])
        try:
            if step == "message":
                await client.send_message(account, conversation, reply_text(reply))
            else:
                await client.set_status(account, conversation, "open")
        except ChatwootError as err:
            log.warning("could not %s Chatwoot conversation %s: %s", step, conversation, err)
            raise SendError(str(err), permanent=err.permanent) from err

    def done_status(self, job: Job, reply: Reply) -> str:
        return "handed_off" if reply.handoff else "delivered"


SENDER = ChatwootSender()


async def _status_changed(runtime: Runtime, event: dict[str, Any]) -> dict[str, str]:
    """An agent set a handed-off conversation back to `pending` (or resolved it): the bot answers
    again."""
    if event.get("status") not in ("pending", "resolved"):
        return {"status": "ignored", "reason": f"status {event.get('status')!r}"}
    messages = event.get("messages") or [{}]
    account = (
        (event.get("account") or {}).get("id")
        or event.get("account_id")
        or messages[0].get("account_id")
    )
    if account is None or event.get("id") is None:
        return {"status": "ignored", "reason": "missing account or conversation id"}
    conversation_id = f"chatwoot-{int(account)}-{int(event['id'])}"
    caller = webhook_caller("chatwoot")
    handed = await runtime.blocking(runtime.channel.hand_back, caller, conversation_id)
    return {"status": "handed_back" if handed else "ignored"}
