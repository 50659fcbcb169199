"""Signed webhooks: `sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>` with a time
window.

The same scheme signs requests coming in (generic webhook, Chatwoot) and callbacks going out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_TIMESTAMP = re.compile(r"\d{1,12}")


class SignatureError(Exception):
    """The request is not signed by a secret we know, or not recently; the reason is safe to log."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for this body sent at `timestamp` (unix seconds, as a string)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(
    secret: str, body: bytes, *, prefix: str = "X-Assistant", now: float | None = None
) -> dict[str, str]:
    """Timestamp and signature headers for an outgoing body."""
    timestamp = str(int(time.time() if now is None else now))
    return {f"{prefix}-Timestamp": timestamp, f"{prefix}-Signature": sign(secret, timestamp, body)}


def verify(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    secrets: Sequence[str],
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless one of `secrets` signed this body within `tolerance_s` of now."""
    if not timestamp or not _TIMESTAMP.fullmatch(timestamp.strip()):
        raise SignatureError("missing or malformed timestamp")
    if not signature or not (match := _SIGNATURE.fullmatch(signature.strip())):
        raise SignatureError("missing or malformed signature")
    skew = abs((time.time() if now is None else now) - int(timestamp))
    if skew > tolerance_s:
        raise SignatureError(f"timestamp is {int(skew)} s away from now (limit {tolerance_s} s)")
    given = match.group(1).lower()
    for secret in secrets:
        expected = sign(secret, timestamp.strip(), body).removeprefix("sha256=")
        if hmac.compare_digest(expected, given):
            return
    raise SignatureError("signature does not match")
