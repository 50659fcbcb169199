"""The HTTP layer over a fake engine: validation, errors, admission, auth, SSE shape."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.llm.server.app import create_app
from assistant.llm.server.config import ServerConfig
from tests.llm.fakes import FakeEngine

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

HI = [{"role": "user", "content": "Hi"}]


def client(engine: FakeEngine, **options: object) -> TestClient:
    config = ServerConfig(model_path=Path("unused"), **options)  # type: ignore[arg-type]
    return TestClient(create_app(engine, config))  # type: ignore[arg-type]


def test_plain_reply_has_text_finish_reason_and_usage() -> None:
    reply = client(FakeEngine("Paris.")).post(
        "/v1/chat/completions", json={"messages": HI, "max_tokens": 20}
    )
    body = reply.json()
    assert reply.status_code == 200
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Paris."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 6 and body["usage"]["prompt_tokens"] > 0


def test_max_tokens_cuts_with_finish_reason_length() -> None:
    body = (
        client(FakeEngine("a long answer"))
        .post("/v1/chat/completions", json={"messages": HI, "max_tokens": 3})
        .json()
    )
    assert body["choices"][0]["message"]["content"] == "a l"
    assert body["choices"][0]["finish_reason"] == "length"


def test_stop_string_is_removed() -> None:
    body = (
        client(FakeEngine("one\ntwo"))
        .post("/v1/chat/completions", json={"messages": HI, "stop": "\n"})
        .json()
    )
    assert body["choices"][0]["message"]["content"] == "one"


@pytest.mark.parametrize("field", ["logprobs", "frequency_penalty", "logit_bias", "made_up"])
def test_unsupported_fields_are_refused_by_name(field: str) -> None:
    reply = client(FakeEngine()).post("/v1/chat/completions", json={"messages": HI, field: 1})
    assert reply.status_code == 400
    assert field in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": 10**6}, "limit"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"schema": {"type": "bogus"}},
                }
            },
            "schema",
        ),
        ({"tool_choice": "required"}, "tools"),
    ],
)
def test_bad_values_are_400_with_a_reason(extra: dict[str, object], named: str) -> None:
    reply = client(FakeEngine()).post("/v1/chat/completions", json={"messages": HI, **extra})
    assert reply.status_code == 400 and named in reply.json()["error"]["message"]


def test_stream_is_sse_with_usage_and_done() -> None:
    with client(FakeEngine("Hi!")).stream(
        "POST", "/v1/chat/completions", json={"messages": HI, "stream": True}
    ) as reply:
        lines = [line for line in reply.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hi!"
    assert (
        chunks[-1]["choices"][0]["finish_reason"] == "stop"
        and chunks[-1]["usage"]["completion_tokens"] == 3
    )


def test_tool_call_text_becomes_tool_calls() -> None:
    reply = '<tool_call>{"name": "order_status", "arguments": {"order_id": "NW-1"}}</tool_call>'
    tools = [
        {"type": "function", "function": {"name": "order_status", "parameters": {"type": "object"}}}
    ]
    body = (
        client(FakeEngine(reply))
        .post("/v1/chat/completions", json={"messages": HI, "tools": tools})
        .json()
    )
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert call["function"]["name"] == "order_status" and json.loads(
        call["function"]["arguments"]
    ) == {"order_id": "NW-1"}


def test_past_the_queue_bound_is_429_with_retry_after() -> None:
    engine = FakeEngine(delay_s=1.0)
    http = client(engine, max_batch=1, max_queue=0)
    first: list[int] = []
    worker = threading.Thread(
        target=lambda: first.append(
            http.post("/v1/chat/completions", json={"messages": HI}).status_code
        )
    )
    worker.start()
    while not engine.calls:
        pass
    second = http.post("/v1/chat/completions", json={"messages": HI})
    worker.join()
    assert second.status_code == 429 and second.headers["retry-after"] == "1"
    assert first == [200]
    assert 'assistant_lm_requests_total{status="429"} 1.0' in http.get("/metrics").text


def test_deadline_gives_504() -> None:
    reply = client(FakeEngine(delay_s=5), request_timeout_s=0.2).post(
        "/v1/chat/completions", json={"messages": HI}
    )
    assert reply.status_code == 504 and "0.2 s" in reply.json()["error"]["message"]


def test_bearer_key_is_required_when_set() -> None:
    http = client(FakeEngine(), api_key="s3cret")
    assert http.post("/v1/chat/completions", json={"messages": HI}).status_code == 401
    ok = http.post(
        "/v1/chat/completions", json={"messages": HI}, headers={"Authorization": "Bearer s3cret"}
    )
    assert ok.status_code == 200
    assert http.get("/health").status_code == 200


def test_health_is_503_until_loaded_and_models_lists_the_name() -> None:
    engine = FakeEngine()
    engine.ready.clear()
    http = client(engine, model_name="smol")
    assert http.get("/health").status_code == 503
    engine.ready.set()
    assert http.get("/health").json()["status"] == "ok"
    assert http.get("/v1/models").json()["data"][0]["id"] == "smol"
