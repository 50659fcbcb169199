"""Hostile requests to the REST API: refused with a clear status, or stored and shown safely."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.reliability.test_openapi_fuzz import LOYALTY
from tests.ui.conftest import ApiClient, serving, write_docs
from ui.server import create_app

pytestmark = pytest.mark.integration
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def base(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ASSISTANT_MAX_BODY_BYTES", "20000")
    parts = Components(
        Settings(), {"chat_model": FakeChatModel(default=LOYALTY), "embedder": HashingEmbedder()}
    )
    parts.knowledge.ingest([write_docs(tmp_path / "docs")])
    with serving(create_app(parts, web=False)) as url:
        yield url
    parts.close()


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"text": "hi"', "application/json", 422),
        (b"text=hi", "application/x-www-form-urlencoded", 422),
        (b'{"text": ""}', "application/json", 422),
        (b'{"text": "hi", "conversation_id": "../../etc"}', "application/json", 422),
        (json.dumps({"text": "x" * 30000}).encode(), "application/json", 413),
        (b"\xff\xfe\x00garbage", "application/json", 422),
    ],
)
def test_malformed_requests_get_a_clear_status(
    base: str, content: bytes, content_type: str, status: int
) -> None:
    response = httpx.post(
        f"{base}/api/v1/messages", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "text",
    [
        "NUL\u0000byte",
        "lone \ud800 surrogate",
        "zero\u200bwidth",
        "bidi \u202eevil\u202c text",
        "ansi \u001b[2J\u001b]0;title\u0007 escapes",
        "isolate \u2066x\u2069 marks",
    ],
)
def test_hostile_characters_are_stored_and_shown_safely(base: str, text: str) -> None:
    body = json.dumps({"text": f"blender warranty {text}"})
    api = ApiClient(base)
    response = api.post(
        "/api/v1/messages",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    if "\ud800" in text:  # not valid Unicode: refused clearly, not a crash
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
            "body",
            "text",
        ]
        return
    assert response.status_code == 200, response.text
    hostile = response.json()["conversation_id"]
    conversation = api.get(f"/api/v1/conversations/{hostile}").json()
    said = [e["text"] for e in conversation["events"] if e["type"] == "user"]
    assert said and not _UNSAFE.search(said[-1]) and "\ud800" not in said[-1]
    assert "blender warranty" in said[-1]
    exported = api.get(
        f"/api/v1/conversations/{hostile}/export", params={"format": "markdown"}
    ).text
    assert not _UNSAFE.search(exported)
