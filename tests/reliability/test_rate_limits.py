"""Per-client rate limits on the REST API and webhooks, against a real server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.reliability.test_openapi_fuzz import LOYALTY
from tests.ui.conftest import SECRET, serving
from ui.ratelimit import path_group
from ui.server import create_app
from ui.signing import signed_headers

pytestmark = pytest.mark.integration


@pytest.fixture
def base(data_dir: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ASSISTANT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ASSISTANT_RATE_LIMIT_API_PER_MINUTE", "5")
    monkeypatch.setenv("ASSISTANT_RATE_LIMIT_WEBHOOK_PER_MINUTE", "3")
    parts = Components(
        Settings(), {"chat_model": FakeChatModel(default=LOYALTY), "embedder": HashingEmbedder()}
    )
    with serving(create_app(parts, web=False)) as url:
        yield url
    parts.close()


def _client(address: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_api_limit_is_per_client_and_says_when_to_retry(base: str) -> None:
    with _client() as first, _client("127.0.0.2") as second:
        codes = [first.get(f"{base}/api/v1/conversations/x").status_code for _ in range(6)]
        assert codes == [404] * 5 + [429]
        limited = first.get(f"{base}/api/v1/conversations/x")
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 61
        assert "too many requests" in limited.json()["detail"]
        assert second.get(f"{base}/api/v1/conversations/x").status_code == 404, (
            "another client is not affected"
        )
        assert first.get(f"{base}/healthz").status_code == 200, "health checks are never limited"


def test_webhook_limit(base: str) -> None:
    with _client() as client:
        codes = []
        for number in range(4):
            body = json.dumps(
                {"delivery_id": f"d{number}", "conversation_id": "c1", "text": "hi"}
            ).encode()
            headers = {**signed_headers(SECRET, body), "content-type": "application/json"}
            codes.append(
                client.post(f"{base}/webhooks/generic", content=body, headers=headers).status_code
            )
    assert codes[:3] == [200, 200, 200] and codes[3] == 429


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/api/v1/messages", "api"),
        ("/webhooks/chatwoot", "webhook"),
        ("/gradio_api/queue/join", "web"),
        ("/gradio_api/call/chat", "web"),
        ("/assets/index.js", None),
        ("/healthz", None),
        ("/docs", None),
    ],
)
def test_what_counts_against_which_limit(path: str, group: str | None) -> None:
    assert path_group(path) == group
