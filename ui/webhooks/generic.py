"""`POST /webhooks/generic`: a signed message in, the answer back (or to a signed callback)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from dialog.messages import Message, Reply
from ui.api import CONVERSATION_ID
from ui.runtime import Runtime
from ui.signing import signed_headers
from ui.webhooks.common import claim_delivery, count, read_body, secrets_of, verify_delivery

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
SOURCE = "generic"


class GenericDelivery(BaseModel):
    """One customer message delivered by your system."""

    delivery_id: str = Field(
        min_length=1, max_length=200, description="Unique per delivery; a repeat is answered once."
    )
    conversation_id: str = Field(
        pattern=CONVERSATION_ID, description="Your conversation id (1-64 of A-Z a-z 0-9 _ . : -)."
    )
    text: str = Field(min_length=1)
    sender: dict[str, Any] | None = Field(
        default=None, description='Who wrote it, e.g. {"id": "c-17", "name": "Ada"}.'
    )
    callback_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="If set: 202 at once, the answer is POSTed here, signed.",
    )


_HEADERS = [
    {
        "name": "X-Assistant-Timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": (
            "Unix seconds when you sent it; more than 300 s away from our clock is refused."
        ),
    },
    {
        "name": "X-Assistant-Signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": 'sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>',
    },
]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            '`{"conversation_id", "answer", "sources"}`, '
            'or `{"status": "duplicate"}` for a repeated delivery_id.'
        )
    },
    202: {"description": "Accepted; the answer is POSTed to callback_url, signed the same way."},
    400: {
        "description": (
            "Malformed JSON, missing fields, or a callback_url host outside "
            "ASSISTANT_CALLBACK_HOSTS."
        )
    },
    401: {
        "description": "Missing, malformed or wrong signature, or a timestamp outside the window."
    },
    413: {"description": "Body larger than ASSISTANT_MAX_BODY_BYTES."},
    503: {"description": "No ASSISTANT_WEBHOOK_SECRET configured."},
}


@router.post(
    "/generic",
    summary="Generic signed webhook",
    responses=_RESPONSES,
    openapi_extra={
        "parameters": _HEADERS,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": GenericDelivery.model_json_schema()}},
        },
    },
)
async def generic_webhook(request: Request) -> JSONResponse:
    """Answer one customer message. Duplicates (same delivery_id), even concurrent, get no second
    answer."""
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    body = await read_body(request, settings.max_body_bytes)
    secrets = secrets_of(settings.webhook_secret, settings.webhook_secret_previous)
    if not secrets:
        raise HTTPException(503, "the generic webhook is off: set ASSISTANT_WEBHOOK_SECRET")
    verify_delivery(request, body, secrets, source=SOURCE, header_prefix="x-assistant")
    delivery = _parse(body)
    if delivery.callback_url and not callback_allowed(
        delivery.callback_url, settings.callback_hosts
    ):
        count(runtime, SOURCE, "callback_refused")
        raise HTTPException(
            400,
            f"callback_url host {urlsplit(delivery.callback_url).hostname!r} is not allowed "
            "(ASSISTANT_CALLBACK_HOSTS)",
        )
    if not await claim_delivery(runtime, SOURCE, delivery.delivery_id, delivery.conversation_id):
        return JSONResponse({"status": "duplicate", "delivery_id": delivery.delivery_id})
    sender = delivery.sender or {}
    message = Message(
        delivery.text,
        delivery.conversation_id,
        channel="webhook",
        sender=str(sender.get("id") or sender.get("name") or "user")[:200],
        delivery_id=delivery.delivery_id,
    )
    if delivery.callback_url:
        runtime.spawn(
            _answer_to_callback(runtime, message, delivery.callback_url),
            f"callback {delivery.delivery_id}",
        )
        count(runtime, SOURCE, "accepted")
        return JSONResponse(
            {"status": "accepted", "delivery_id": delivery.delivery_id}, status_code=202
        )
    reply = await _answer(runtime, message)
    count(runtime, SOURCE, "answered")
    return JSONResponse(reply.as_json())


def callback_allowed(url: str, allowed: str) -> bool:
    """Whether the URL's host is in the comma-separated allow-list (".example.com" takes its
    subdomains too); an empty list allows any host."""
    entries = [e.strip().lower() for e in allowed.split(",") if e.strip()]
    if not entries:
        return True
    host = (urlsplit(url).hostname or "").lower()
    return any(
        host == entry or (entry.startswith(".") and (host.endswith(entry) or host == entry[1:]))
        for entry in entries
    )


def _parse(body: bytes) -> GenericDelivery:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise HTTPException(400, f"malformed JSON: {err}") from err
    if not isinstance(data, dict):
        raise HTTPException(400, "the body must be a JSON object")
    try:
        return GenericDelivery.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in err.errors()
        )
        raise HTTPException(400, f"invalid delivery: {problems}") from err


async def _answer(runtime: Runtime, message: Message) -> Reply:
    """Run the turn; if it fails before an answer exists, release the claim so a retry can
    succeed."""
    assert message.delivery_id is not None
    try:
        reply = await runtime.run_turn(message)
    except Exception:
        await runtime.blocking(runtime.ledger.release, SOURCE, message.delivery_id)
        raise
    await runtime.blocking(runtime.ledger.finish, SOURCE, message.delivery_id, "answered")
    return reply


async def _answer_to_callback(runtime: Runtime, message: Message, url: str) -> None:
    reply = await _answer(runtime, message)
    payload = {"delivery_id": message.delivery_id, **reply.as_json()}
    delivered = await post_signed(runtime, url, payload)
    assert message.delivery_id is not None
    await runtime.blocking(
        runtime.ledger.finish,
        SOURCE,
        message.delivery_id,
        "delivered" if delivered else "undelivered",
    )
    runtime.metrics.inc(
        "assistant_callbacks_total", outcome="delivered" if delivered else "undelivered"
    )


async def post_signed(runtime: Runtime, url: str, payload: dict[str, Any]) -> bool:
    """POST, signed like incoming requests; retry network errors, 408, 429 and 5xx with exponential
    backoff."""
    settings = runtime.settings
    secret = secrets_of(settings.webhook_secret)[0]
    body = json.dumps(payload, ensure_ascii=False).encode()
    client = runtime.http
    assert client is not None, "the app's lifespan opens the HTTP client"
    for attempt in range(settings.callback_attempts):
        headers = {"Content-Type": "application/json", **signed_headers(secret, body)}
        try:
            response = await client.post(url, content=body, headers=headers, timeout=10.0)
            if response.status_code < 300:
                return True
            if response.status_code < 500 and response.status_code not in (408, 429):
                log.warning(
                    "callback to %s refused with %s; not retrying", url, response.status_code
                )
                return False
            log.info(
                "callback to %s answered %s (attempt %d)", url, response.status_code, attempt + 1
            )
        except httpx.HTTPError as err:
            log.info("callback to %s failed: %s (attempt %d)", url, type(err).__name__, attempt + 1)
        if attempt + 1 < settings.callback_attempts:
            await anyio.sleep(settings.callback_backoff_s * 2**attempt)
    log.warning("callback to %s undelivered after %d attempts", url, settings.callback_attempts)
    return False
