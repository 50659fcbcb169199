"""schemathesis over the LM server's own OpenAPI, against the real model: generated valid and
invalid requests get documented answers (never a 5xx), and after each one a normal request still
gets its 200."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from assistant.llm.server.config import ServerConfig
from assistant.llm.server.embedded import BackgroundServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
NORMAL = {
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 2,
    "temperature": 0,
}
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 12}


@pytest.fixture(scope="module")
def server(chat_model_dir: Path) -> Iterator[BackgroundServer]:
    """The real server, answers capped at 8 tokens so that generated requests stay quick."""
    config = ServerConfig(
        model_path=chat_model_dir, device="cpu", max_batch=4, max_queue=4, max_tokens_limit=8
    )
    with BackgroundServer(config) as running:
        yield running


def _still_serves(base_url: str) -> None:
    reply = httpx.post(f"{base_url}/chat/completions", json=NORMAL, timeout=120)
    assert reply.status_code == 200, reply.text


def test_spec_documents_the_bodies_and_the_context_error(server: BackgroundServer) -> None:
    root = server.base_url.removesuffix("/v1")
    spec = httpx.get(f"{root}/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert "messages" in chat["requestBody"]["content"]["application/json"]["schema"]["required"]
    assert {"200", "400", "413", "503"} <= set(chat["responses"])
    assert "/tokenize" in spec["paths"]


def test_generated_requests_never_break_the_server(server: BackgroundServer) -> None:
    root = server.base_url.removesuffix("/v1")
    schema = schemathesis.openapi.from_url(f"{root}/openapi.json")
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "POST":
            continue
        for mode, count in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=count,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case: Any) -> None:
                case.call_and_validate(base_url=root, checks=CHECKS, timeout=120)
                _still_serves(server.base_url)

            try:
                check()
            except (Exception, BaseExceptionGroup) as err:
                failures[f"{operation.label} {mode.value}"] = repr(
                    getattr(err, "exceptions", [err])
                )[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert server.engine.restarts == 0 and server.engine.status() == "ok"


@pytest.mark.parametrize(
    "extreme",
    [
        {"temperature": 5e-324},
        {"temperature": 1e-300},
        {"temperature": 1e-9},
        {"temperature": 0.7, "repetition_penalty": 1e-300},
        {"temperature": 0, "repetition_penalty": 1e-30},
        {"temperature": 0.7, "top_p": 1e-300},
    ],
)
def test_extreme_sampling_values_are_answered_and_the_batch_loop_lives(
    server: BackgroundServer, extreme: dict[str, float]
) -> None:
    """Found by the fuzz test above: a temperature near 0, or a repetition penalty near 0 on a
    prompt's tokens, pushed scores to inf and the sampler's probabilities to NaN; the batch loop
    died (a 503 for every request while it restarted)."""
    reply = httpx.post(
        f"{server.base_url}/chat/completions",
        json={
            **NORMAL,
            "messages": [{"role": "user", "content": "Paris, Paris, Paris?"}],
            **extreme,
        },
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    _still_serves(server.base_url)
