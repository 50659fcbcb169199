"""`POST /webhooks/generic`: a signed message in, the answer back (or to a signed callback)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from dialog.messages import Message, Reply
from ui.api import CONVERSATION_ID
from ui.jobs import DeliveryQueue, Job
from ui.runtime import Runtime
from ui.signing import signed_headers
from ui.webhooks.common import count, read_body, secrets_of, verify_delivery
from ui.webhooks.delivery import SendError
from ui.webhooks.worker import DeliveryWorkers

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
    workers: DeliveryWorkers = request.app.state.deliveries
    with workers.intake():
        accepted = await _accept(request, workers)
    if isinstance(accepted, JSONResponse):
        return accepted
    outcome = await workers.run(accepted, inline=True)  # no callback: the answer in the response
    assert outcome is not None and outcome.reply is not None, "a generic sender answers inline"
    count(request.app.state.runtime, SOURCE, "answered")
    return JSONResponse(outcome.reply.as_json())


async def _accept(request: Request, workers: DeliveryWorkers) -> Job | JSONResponse:
    """Check and store the delivery: the acknowledgement when a callback answers it (or it is a
    duplicate), else the job to answer in this response."""
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
    sender = delivery.sender or {}
    payload = {
        "text": delivery.text,
        "conversation_id": delivery.conversation_id,
        "sender": str(sender.get("id") or sender.get("name") or "user")[:200],
        "callback_url": delivery.callback_url,
    }
    held_by = None if delivery.callback_url else workers.worker_id
    job = await runtime.blocking(
        lambda: workers.queue.enqueue(
            SOURCE,
            delivery.delivery_id,
            delivery.conversation_id,
            payload,
            held_by=held_by,
            lease_s=settings.delivery_lease_s,
        )
    )
    if job is None:
        count(runtime, SOURCE, "duplicate")
        return JSONResponse({"status": "duplicate", "delivery_id": delivery.delivery_id})
    if not delivery.callback_url:
        return job
    workers.wake()  # stored before this answer: a worker in some process sends it
    count(runtime, SOURCE, "accepted")
    return JSONResponse(
        {"status": "accepted", "delivery_id": delivery.delivery_id}, status_code=202
    )


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


class GenericSender:
    """Generic deliveries: the answer in the HTTP response, or POSTed, signed, to callback_url."""

    source = SOURCE

    def message(self, job: Job) -> Message:
        return Message(
            str(job.payload["text"]),
            job.conversation_id,
            channel="webhook",
            sender=str(job.payload.get("sender") or "user"),
            delivery_id=job.delivery_id,
        )

    async def before_turn(self, runtime: Runtime, queue: DeliveryQueue, job: Job) -> None:
        return None

    def steps(self, job: Job, reply: Reply) -> list[str]:
        return ["callback"] if job.payload.get("callback_url") else []

    async def send(self, runtime: Runtime, job: Job, reply: Reply, step: str) -> None:
        payload = {"delivery_id": job.delivery_id, **reply.as_json()}
        try:
            await post_signed(runtime, str(job.payload["callback_url"]), payload)
        except SendError:
            runtime.metrics.inc("assistant_callbacks_total", outcome="failed")
            raise
        runtime.metrics.inc("assistant_callbacks_total", outcome="delivered")

    def done_status(self, job: Job, reply: Reply) -> str:
        return "delivered" if job.payload.get("callback_url") else "answered"


SENDER = GenericSender()


async def post_signed(runtime: Runtime, url: str, payload: dict[str, Any]) -> None:
    """One POST, signed like incoming requests; SendError says whether a retry can help (network
    errors, 408, 429 and 5xx) or not (any other 4xx, a redirect)."""
    secret = secrets_of(runtime.settings.webhook_secret)[0]
    body = json.dumps(payload, ensure_ascii=False).encode()
    client = runtime.http
    assert client is not None, "the app's lifespan opens the HTTP client"
    headers = {"Content-Type": "application/json", **signed_headers(secret, body)}
    try:
        response = await client.post(url, content=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as err:
        raise SendError(f"callback to {url} failed: {type(err).__name__}") from err
    if response.status_code < 300:
        return
    retryable = response.status_code >= 500 or response.status_code in (408, 429)
    raise SendError(f"callback to {url} answered {response.status_code}", permanent=not retryable)
