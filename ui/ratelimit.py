"""Per-client rate limits on what customers and senders reach: web chat submissions, REST API,
webhooks.

Built on the `limits` library (moving window). In memory the counts are one process's; with
`ASSISTANT_REDIS_URL` they live in Redis and every process and host sharing it counts together.
Redis unreachable: fail open to this process's own counts (a warning a minute), so a cache outage
is not an outage of the service; Redis is tried again every `REDIS_RETRY_S`. Health, metrics and
documentation are never limited, nor are the web chat's static files.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.25
"""Connect and reply timeout of a Redis call: it runs on the event loop, so a dead Redis must cost
little."""
REDIS_RETRY_S = 5.0
"""After a Redis failure, how long this process counts in memory before trying Redis again."""
WARN_EVERY_S = 60.0

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

    def __init__(
        self, per_minute: dict[str, int], *, redis_url: str = "", key_prefix: str = "assistant"
    ) -> None:
        self._items: dict[str, RateLimitItem] = {
            group: RateLimitItemPerMinute(amount)
            for group, amount in per_minute.items()
            if amount > 0
        }
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        if redis_url and self._items:
            storage = RedisStorage(
                redis_url,
                key_prefix=f"{key_prefix}:ratelimit",
                wrap_exceptions=True,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                socket_timeout=REDIS_TIMEOUT_S,
            )
            self._shared = MovingWindowRateLimiter(storage)
        self._redis_down_until = 0.0
        self._warned_at = -WARN_EVERY_S
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether the counts are kept in Redis (shared by every process using it)."""
        return self._shared is not None

    def check(self, path: str, client: str) -> Verdict:
        group = path_group(path)
        item = self._items.get(group or "")
        if item is None:
            return Verdict(True)
        limiter = self._limiter()
        try:
            return _verdict(limiter, item, group or "", client)
        except StorageError as err:
            self._redis_failed(err)
            return _verdict(self._memory, item, group or "", client)

    def _limiter(self) -> MovingWindowRateLimiter:
        """Redis when configured and not known to be down, else this process's memory."""
        if self._shared is not None and time.monotonic() >= self._redis_down_until:
            return self._shared
        return self._memory

    def _redis_failed(self, err: StorageError) -> None:
        now = time.monotonic()
        with self._lock:
            self._redis_down_until = now + REDIS_RETRY_S
            warn = now - self._warned_at >= WARN_EVERY_S
            if warn:
                self._warned_at = now
        if warn:
            log.warning(
                "rate limits: Redis unreachable (%s); counting in this process only until it "
                "answers again",
                type(err.storage_error).__name__,
            )


def _verdict(
    limiter: MovingWindowRateLimiter, item: RateLimitItem, group: str, client: str
) -> Verdict:
    """Count one hit; when over the limit, say when the window lets the client in again."""
    if limiter.hit(item, group, client):
        return Verdict(True)
    reset_at, _ = limiter.get_window_stats(item, group, client)
    return Verdict(False, max(1, int(reset_at - time.time()) + 1))
