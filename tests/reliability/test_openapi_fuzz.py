"""schemathesis over the OpenAPI spec of the REST and webhook endpoints: no 5xx, responses as
documented; with no key at all (an anonymous customer), with a customer's and an admin's key, and
with keys configured but none sent (every REST call a documented 401)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import SECRET, free_port, write_docs
from ui.access import Role
from ui.access_keys import KeyStore
from ui.server import create_app

pytestmark = pytest.mark.integration

LOYALTY = "Loyalty points expire after eighteen months."
"""What the fake model always answers, for generated traffic."""


@dataclass
class Fuzzed:
    """The schema to fuzz and the headers every generated request carries."""

    schema: Any
    headers: dict[str, str]


KEYS = ["no keys", "customer key", "admin key", "keys, none sent"]


@pytest.fixture(params=KEYS)
def fuzzed(request: pytest.FixtureRequest, api_schema: Any, parts: Components) -> Fuzzed:
    """One access setting: the keys the server holds and the one the client sends."""
    if request.param == "no keys":
        return Fuzzed(api_schema, {})
    keys = KeyStore(parts.database.session)
    role = Role.ADMIN if request.param == "admin key" else Role.CUSTOMER
    created = keys.create(role, "fuzz")
    if request.param == "keys, none sent":
        return Fuzzed(api_schema, {})
    return Fuzzed(api_schema, {"Authorization": f"Bearer {created.secret}"})


@pytest.fixture
def parts(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Components]:
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
    yield parts
    parts.close()


@pytest.fixture
def api_schema(parts: Components) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(parts, web=False))


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_spec_lists_the_rest_and_webhook_endpoints(api_schema: Any) -> None:
    paths = {op.path for op in _operations(api_schema)}
    assert {"/api/v1/messages", "/webhooks/generic", "/webhooks/chatwoot"} <= paths


def test_every_operation_conforms_and_never_fails(fuzzed: Fuzzed) -> None:
    """Generated requests (valid and invalid) for every operation: documented responses, never a
    5xx."""
    failures: dict[str, str] = {}
    for operation in _operations(fuzzed.schema):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=fuzzed.headers)

        try:
            check()
        except (Exception, BaseExceptionGroup) as err:
            # gather every operation's failures, report together
            failures[operation.label] = repr(getattr(err, "exceptions", [err]))[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
