"""Rate limits shared through Redis: two servers, each with its own limiter, count together."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import serving
from ui.ratelimit import RateLimits
from ui.server import create_app

pytestmark = pytest.mark.integration

REDIS = ("127.0.0.1", 6379)


def _redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(
    not _redis_answers(), reason=f"no Redis answers PING at {REDIS[0]}:{REDIS[1]}"
)


@pytest.fixture
def two_servers(data_dir: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """Two apps on one SQLite file and one Redis, under a key prefix of this test's own."""
    monkeypatch.setenv("ASSISTANT_REDIS_URL", f"redis://{REDIS[0]}:{REDIS[1]}/0")
    monkeypatch.setenv("ASSISTANT_REDIS_PREFIX", f"test-{uuid.uuid4().hex}")
    monkeypatch.setenv("ASSISTANT_RATE_LIMIT_API_PER_MINUTE", "6")
    parts = [
        Components(Settings(), {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()})
        for _ in range(2)
    ]
    with serving(create_app(parts[0], web=False)) as first:
        with serving(create_app(parts[1], web=False)) as second:
            yield first, second
    for part in parts:
        part.close()


@needs_redis
def test_the_limit_holds_across_two_servers(two_servers: tuple[str, str]) -> None:
    first, second = two_servers
    codes = []
    with httpx.Client(timeout=30) as client:
        for number in range(8):
            base = (first, second)[number % 2]
            codes.append(client.get(f"{base}/api/v1/conversations/x").status_code)
    # 6 a minute in all: each server alone would have let 8 through (4 each, under its 6)
    assert codes == [404] * 6 + [429] * 2


@needs_redis
def test_each_client_has_its_own_shared_count() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    one, two = (
        RateLimits({"api": 2}, redis_url=f"redis://{REDIS[0]}:{REDIS[1]}/0", key_prefix=prefix)
        for _ in range(2)
    )
    assert one.shared and two.shared
    assert [one.check("/api/v1/x", "a").allowed, two.check("/api/v1/x", "a").allowed] == [
        True,
        True,
    ]
    refused = one.check("/api/v1/x", "a")
    assert not refused.allowed and 1 <= refused.retry_after_s <= 61
    assert two.check("/api/v1/x", "b").allowed, "another client is not affected"


def test_redis_down_fails_open_to_this_process_counts(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limits = RateLimits({"api": 2}, redis_url=f"redis://127.0.0.1:{port}/0")
    with caplog.at_level(logging.WARNING, logger="ui.ratelimit"):
        verdicts = [limits.check("/api/v1/x", "a").allowed for _ in range(3)]
    assert verdicts == [True, True, False], "still limited, by this process's memory"
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1, "warned once, not at every request"
