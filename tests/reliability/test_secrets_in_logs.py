"""Secrets never reach the logs: every path that holds one is driven, failures included, at
DEBUG."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from assistant.cli import App, main
from assistant.wiring import Components
from assistant_core.settings import Settings
from dialog.messages import Message
from tests.fakes import HashingEmbedder
from tests.reliability.faulty_lm import Faults, faulty_app
from tests.ui.conftest import serving, write_docs
from tests.ui.fake_http import recording_server
from ui.server import create_app
from ui.signing import signed_headers

pytestmark = pytest.mark.integration

SECRETS = {
    "ASSISTANT_WEBHOOK_SECRET": "whsec-CURRENT-0a1b2c",
    "ASSISTANT_WEBHOOK_SECRET_PREVIOUS": "whsec-PREVIOUS-3d4e5f",
    "ASSISTANT_LLM_API_KEY": "sk-LLM-KEY-6a7b8c9d",
    "ASSISTANT_CHATWOOT_API_TOKEN": "cw-TOKEN-1f2e3d",
    "ASSISTANT_CHATWOOT_WEBHOOK_SECRET": "cwsec-4c5b6a",
}


def _assert_clean(text: str) -> None:
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} leaked"


def test_no_secret_in_logs_across_webhooks_llm_failures_and_chatwoot(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = Faults(mode="overloaded")
    with serving(faulty_app(faults)) as lm, recording_server() as chatwoot:
        chatwoot.statuses.extend([500] * 10)
        for name, value in SECRETS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", f"{lm}/v1")
        monkeypatch.setenv("ASSISTANT_LLM_TIMEOUT_S", "2")
        monkeypatch.setenv("ASSISTANT_CHATWOOT_BASE_URL", chatwoot.url)
        monkeypatch.setenv("ASSISTANT_CALLBACK_BACKOFF_S", "0.01")
        monkeypatch.setenv("ASSISTANT_CALLBACK_ATTEMPTS", "2")
        settings = Settings()
        _assert_clean(repr(settings) + str(settings.model_dump()))
        parts = Components(settings, {"embedder": HashingEmbedder()})
        parts.knowledge.ingest([write_docs(tmp_path / "docs")])
        parts.assistant.handle(Message("How long is the blender warranty?", "c1"))  # LM overloaded
        with serving(create_app(parts, web=False)) as base:
            body = json.dumps(
                {
                    "delivery_id": "d1",
                    "conversation_id": "c2",
                    "text": "blender warranty?",
                    "callback_url": f"{chatwoot.url}/callback",
                }
            ).encode()
            httpx.post(
                f"{base}/webhooks/generic",
                content=body,
                headers={
                    **signed_headers(SECRETS["ASSISTANT_WEBHOOK_SECRET_PREVIOUS"], body),
                    "content-type": "application/json",
                },
            )
            httpx.post(
                f"{base}/webhooks/generic",
                content=body,
                headers={"X-Assistant-Timestamp": "1", "X-Assistant-Signature": "sha256=00"},
            )
            event = {
                "event": "message_created",
                "id": 1,
                "content": "blender warranty?",
                "message_type": "incoming",
                "private": False,
                "sender": {"id": 7, "type": "contact"},
                "conversation": {"id": 42, "status": "pending"},
                "account": {"id": 1},
            }
            raw = json.dumps(event).encode()
            httpx.post(
                f"{base}/webhooks/chatwoot",
                content=raw,
                headers={
                    **signed_headers(
                        SECRETS["ASSISTANT_CHATWOOT_WEBHOOK_SECRET"], raw, prefix="X-Chatwoot"
                    ),
                    "content-type": "application/json",
                },
            )
            httpx.post(
                f"{base}/webhooks/chatwoot",
                content=raw,
                headers={"X-Chatwoot-Timestamp": "1", "X-Chatwoot-Signature": "sha256=bad"},
            )
            deadline = time.monotonic() + 20
            while len(chatwoot.received) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            httpx.get(f"{base}/metrics")
        parts.close()
    assert len(chatwoot.received) >= 3, (
        "the failing callback and Chatwoot calls were made (and logged)"
    )
    assert any(r.levelno >= logging.WARNING for r in caplog.records), "failures were logged"
    _assert_clean(caplog.text)
    _assert_clean("\n".join(caplog.handler.format(r) for r in caplog.records))


def test_a_wrong_setting_never_echoes_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "assistant.toml"
    config.write_text(
        f'llm_api_kye = "{SECRETS["ASSISTANT_LLM_API_KEY"]}"\n'
        f'webhook_secret = ["{SECRETS["ASSISTANT_WEBHOOK_SECRET"]}"]\n'
    )
    monkeypatch.setenv("ASSISTANT_CONFIG", str(config))
    result = CliRunner().invoke(main, ["ask", "hi"], obj=App())
    assert (
        result.exit_code == 1
        and "LLM_API_KYE" in result.output
        and "WEBHOOK_SECRET" in result.output
    )
    _assert_clean(result.output)
