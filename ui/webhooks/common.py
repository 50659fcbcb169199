"""What both webhooks need: a size-limited body, the secrets, signature checks, counting."""

from __future__ import annotations

from fastapi import HTTPException, Request
from pydantic import SecretStr

from ui.runtime import Runtime
from ui.signing import SignatureError, verify


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
    return bytes(body)


def secrets_of(*values: SecretStr | None) -> list[str]:
    """The non-empty secrets, current first (a previous one is kept while senders rotate)."""
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


def verify_delivery(
    request: Request, body: bytes, secrets: list[str], *, source: str, header_prefix: str
) -> None:
    """Check the `<prefix>-timestamp`/`<prefix>-signature` HMAC; a bad one is counted and refused
    (401)."""
    runtime: Runtime = request.app.state.runtime
    try:
        verify(
            body,
            request.headers.get(f"{header_prefix}-timestamp"),
            request.headers.get(f"{header_prefix}-signature"),
            secrets,
            tolerance_s=runtime.settings.webhook_tolerance_s,
        )
    except SignatureError as err:
        count(runtime, source, "unauthorized")
        raise HTTPException(401, f"bad signature: {err}") from err


def count(runtime: Runtime, source: str, outcome: str) -> None:
    """One delivery's outcome, for /metrics."""
    runtime.metrics.inc("assistant_webhook_deliveries_total", source=source, outcome=outcome)
