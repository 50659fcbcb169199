"""schemathesis over the OpenAPI spec of the REST and webhook endpoints: no 5xx, responses as
documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from assistant.core.settings import Settings
from assistant.wiring import Components
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import SECRET, free_port, write_docs
from ui.server import create_app

pytestmark = pytest.mark.integration

LOYALTY = "Loyalty points expire after eighteen months."
"""What the fake model always answers, for generated traffic."""


@pytest.fixture
def api_schema(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("ASSISTANT_WEBHOOK_SECRET", SECRET)
    # this test floods on purpose; test_rate_limits covers the limits
    for group in ("API", "WEBHOOK", "WEB"):
        monkeypatch.setenv(f"ASSISTANT_RATE_LIMIT_{group}_PER_MINUTE", "0")
    monkeypatch.setenv("ASSISTANT_CHATWOOT_BASE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ASSISTANT_CHATWOOT_API_TOKEN", "fuzz-token")
    parts = Components(
        Settings(), {"chat_model": FakeChatModel(default=LOYALTY), "embedder": HashingEmbedder()}
    )
    parts.knowledge.ingest([write_docs(tmp_path / "docs")])
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(parts, web=False))
    parts.close()


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_spec_lists_the_rest_and_webhook_endpoints(api_schema: Any) -> None:
    paths = {op.path for op in _operations(api_schema)}
    assert {"/api/v1/messages", "/webhooks/generic", "/webhooks/chatwoot"} <= paths


def test_every_operation_conforms_and_never_fails(api_schema: Any) -> None:
    """Generated requests (valid and invalid) for every operation: documented responses, never a
    5xx."""
    failures: dict[str, str] = {}
    for operation in _operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: Any) -> None:
            case.call_and_validate()

        try:
            check()
        except (Exception, BaseExceptionGroup) as err:
            # gather every operation's failures, report together
            failures[operation.label] = repr(getattr(err, "exceptions", [err]))[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
