"""What both webhooks need: a size-limited body and the configured secrets."""

from __future__ import annotations

from fastapi import HTTPException, Request
from pydantic import SecretStr


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
