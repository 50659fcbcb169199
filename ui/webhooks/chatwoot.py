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
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from dialog.messages import Message, Reply, Source
from ui.runtime import Runtime
from ui.views import quote_lines
from ui.webhooks.common import claim_delivery, count, read_body, secrets_of, verify_delivery

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
SOURCE = "chatwoot"


class ChatwootError(Exception):
    """Chatwoot's API refused a call or could not be reached."""


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
            raise ChatwootError(f"Chatwoot answered {response.status_code} to {url}")

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
        account, conversation_id, message_id, content, str(sender.get("id") or "contact")
    )


QUOTE_CHARS = 160
"""A chat message is no place for a whole passage: the evidence is cut to about this length."""


def reply_text(reply: Reply) -> str:
    """The answer, the titles of its sources on one line, then a short quote of each source's
    evidence so the customer sees what the answer rests on."""
    titles = list(dict.fromkeys(_title(s) for s in reply.sources))
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
    if not await claim_delivery(runtime, SOURCE, delivery_id, found.internal_conversation_id):
        return JSONResponse({"status": "duplicate"})
    runtime.spawn(_answer(runtime, found, delivery_id), f"chatwoot {delivery_id}")
    count(runtime, SOURCE, "accepted")
    return JSONResponse({"status": "accepted"})


async def _answer(runtime: Runtime, found: ContactMessage, delivery_id: str) -> None:
    settings = runtime.settings
    assert runtime.http is not None and settings.chatwoot_api_token is not None
    client = ChatwootClient(
        settings.chatwoot_base_url, settings.chatwoot_api_token.get_secret_value(), runtime.http
    )
    message = Message(
        found.content,
        found.internal_conversation_id,
        channel="chatwoot",
        sender=found.sender,
        delivery_id=delivery_id,
    )
    try:
        reply = await runtime.run_turn(message)
    except Exception:
        await runtime.blocking(runtime.ledger.release, SOURCE, delivery_id)
        raise
    try:
        if reply.answer.strip():  # during a handoff the assistant stays silent
            await client.send_message(found.account_id, found.conversation_id, reply_text(reply))
        if reply.handoff:
            await client.set_status(found.account_id, found.conversation_id, "open")
    except ChatwootError as err:
        log.warning("could not answer Chatwoot conversation %s: %s", found.conversation_id, err)
        await runtime.blocking(runtime.ledger.finish, SOURCE, delivery_id, "undelivered")
        return
    await runtime.blocking(
        runtime.ledger.finish, SOURCE, delivery_id, "handed_off" if reply.handoff else "delivered"
    )


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
    hand_back = getattr(runtime.assistant, "hand_back", None)
    if hand_back is None:
        return {"status": "ignored", "reason": "this dialog manager cannot hand back"}
    handed = await runtime.blocking(hand_back, conversation_id)
    return {"status": "handed_back" if handed else "ignored"}
