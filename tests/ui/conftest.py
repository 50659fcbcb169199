"""Front-end fixtures: components over fakes with a small knowledge base, and real servers on
loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.wiring import Components
from assistant_core.settings import Settings
from benchmarks.serving import free_port, serving
from tests.fakes import FakeChatModel, HashingEmbedder

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SECRET = "test-webhook-secret"
__all__ = [
    "SECRET",
    "TOKEN_HEADER",
    "ApiClient",
    "WithService",
    "free_port",
    "scoped",
    "serving",
    "sse_events",
    "write_docs",
]


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "warranty.md").write_text(
        "# Blender warranty\n\nThe warranty on blenders lasts two years from delivery.\n"
    )
    (folder / "loyalty.md").write_text(
        "# Loyalty points\n\nLoyalty points expire after eighteen months.\n"
    )
    return folder


class WithService:
    """Real components with a stand-in dialog manager: the backend a front-end test runs on when
    it needs answers the real manager would not give on cue."""

    def __init__(self, parts: Components, service: object) -> None:
        self._parts = parts
        self.assistant = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parts, name)


TOKEN_HEADER = "X-Conversation-Token"


def scoped(client_id: str, owner: str = "anonymous") -> str:
    """The id the REST API gives a client-chosen id (`api:<key id or anonymous>:<id>`)."""
    return f"api:{owner}:{client_id}"


class ApiClient(httpx.Client):
    """A REST client as a real one must be: its key on every call, and each conversation's token
    (returned when the conversation starts) sent with every later call on it."""

    def __init__(self, base: str, key: str | None = None, **kwargs: Any) -> None:
        headers = {
            **kwargs.pop("headers", {}),
            **({"Authorization": f"Bearer {key}"} if key else {}),
        }
        super().__init__(base_url=base, headers=headers, timeout=60, **kwargs)
        self.tokens: dict[str, str] = {}

    def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:
        cid = _conversation_named(str(url), kwargs.get("json"))
        token = self.tokens.get(cid) if cid else None
        if token:
            kwargs["headers"] = {TOKEN_HEADER: token, **(kwargs.get("headers") or {})}
        return super().build_request(method, url, **kwargs)

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = super().send(request, **kwargs)
        token = response.headers.get(TOKEN_HEADER)
        if token:
            named = _conversation_named(request.url.path, _json(request))
            for cid in {named, _reply_id(response)} - {None}:
                self.tokens[str(cid)] = token
        return response


def _conversation_named(url: str, body: object) -> str | None:
    """The conversation a request is about: its path's id, or the body's `conversation_id`."""
    path = httpx.URL(url).path
    if path.startswith("/api/v1/conversations/"):
        return path.split("/")[4]
    if isinstance(body, dict) and body.get("conversation_id"):
        return str(body["conversation_id"])
    return None


def _json(request: httpx.Request) -> object:
    try:
        return json.loads(request.content or b"null")
    except ValueError:
        return None


def _reply_id(response: httpx.Response) -> str | None:
    """A whole reply's conversation id (a stream's comes with its `sources` event)."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    response.read()
    body = response.json()
    return body.get("conversation_id") if isinstance(body, dict) else None


def sse_events(base: str | ApiClient, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """POST to the streaming endpoint and read its server-sent events as (name, data) pairs;
    with an ApiClient, the token a new conversation gets is kept for later calls."""
    client = base if isinstance(base, ApiClient) else ApiClient(base)
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("POST", "/api/v1/messages/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    if events and "conversation_token" in events[0][1]:
        started = events[0][1]
        client.tokens[started["conversation_id"]] = started["conversation_token"]
    if client is not base:
        client.close()
    return events


@pytest.fixture
def model() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def ui_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ASSISTANT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ASSISTANT_CALLBACK_BACKOFF_S", "0.05")
    return Settings()


@pytest.fixture
def components(ui_settings: Settings, model: FakeChatModel, tmp_path: Path) -> Iterator[Components]:
    parts = Components(ui_settings, {"chat_model": model, "embedder": HashingEmbedder()})
    parts.knowledge.ingest([write_docs(tmp_path / "docs")])
    yield parts
    parts.close()
