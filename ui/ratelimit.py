"""Per-client rate limits on what customers and senders reach: web chat submissions, REST API,
webhooks.

Built on the `limits` library (moving window, in memory: one server process). Health, metrics and
documentation are never limited, nor are the web chat's static files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

_WEB_SUBMISSIONS = ("/queue/join", "/call/", "/run/")


def path_group(path: str) -> str | None:
    """Which limit a request counts against, or None when it is not limited."""
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/webhooks/"):
        return "webhook"
    if any(marker in path for marker in _WEB_SUBMISSIONS):
        return "web"
    return None


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go on, and if not, when to try again."""

    allowed: bool
    retry_after_s: int = 0


class RateLimits:
    """One moving window per (group, client).

    >>> limits = RateLimits({"api": 120, "webhook": 1200, "web": 60})
    >>> limits.check("/api/v1/messages", "203.0.113.7").allowed
    True
    """

    def __init__(self, per_minute: dict[str, int]) -> None:
        self._items: dict[str, RateLimitItem] = {
            group: RateLimitItemPerMinute(amount)
            for group, amount in per_minute.items()
            if amount > 0
        }
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, path: str, client: str) -> Verdict:
        group = path_group(path)
        item = self._items.get(group or "")
        if item is None:
            return Verdict(True)
        if self._limiter.hit(item, group or "", client):
            return Verdict(True)
        reset_at, _ = self._limiter.get_window_stats(item, group or "", client)
        return Verdict(False, max(1, int(reset_at - time.time()) + 1))
