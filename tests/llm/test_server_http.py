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


@pytest.mark.parametrize("field", ["logprobs", "top_logprobs", "logit_bias", "made_up"])
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


RAW = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'{"messages": [{"role": "user", "content": "\\ud800 hi"}]}', "invalid Unicode"),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "seed": 1208925819614629174706176}',
            "seed",
        ),
        (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "NaN"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5.5}', "max_tokens"),
        (b"[1, 2]", "JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}', "text"),
        (b'{"messages": [{"role": "assistant", "tool_calls": [5]}]}', "tool_calls"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], '
            b'"tools": [{"type": "function", "function": "f"}]}',
            "tools",
        ),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "frequency_penalty": 2.5}',
            "frequency_penalty",
        ),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "repetition_penalty": 0}',
            "repetition_penalty",
        ),
        (b'{"messages": [{"role": "robot", "content": "x"}]}', "role"),
    ],
)
def test_client_mistakes_are_400_in_openais_shape(raw: bytes, named: str) -> None:
    engine = FakeEngine()
    reply = client(engine).post("/v1/chat/completions", content=raw, headers=RAW)
    body = reply.json()
    assert reply.status_code == 400 and body["error"]["type"] == "invalid_request_error"
    assert named in body["error"]["message"]
    assert not engine.calls


def test_an_oversized_body_is_413_before_it_is_read_whole() -> None:
    http = client(FakeEngine(), max_body_bytes=1000)
    reply = http.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 2000}]}
    )
    assert reply.status_code == 413 and "1000 bytes" in reply.json()["error"]["message"]


def test_prompt_plus_budget_past_the_context_is_context_length_exceeded_with_numbers() -> None:
    engine = FakeEngine()
    engine.context_tokens = 100
    long = [{"role": "user", "content": "x" * 90}]  # 90 + the template's "user: ...\n" = 97 tokens
    reply = client(engine).post("/v1/chat/completions", json={"messages": long, "max_tokens": 10})
    error = reply.json()["error"]
    assert reply.status_code == 400 and error["code"] == "context_length_exceeded"
    assert "100 tokens" in error["message"] and "97 in the messages" in error["message"]
    assert error["param"] == "messages" and not engine.calls


def test_without_max_tokens_the_answer_gets_what_the_context_leaves() -> None:
    engine = FakeEngine("abcdef")
    engine.context_tokens = 100
    long = [{"role": "user", "content": "x" * 90}]
    reply = client(engine).post("/v1/chat/completions", json={"messages": long})
    assert reply.status_code == 200 and engine.calls[0]["sampling"].max_tokens == 3


def test_penalties_reach_the_engine_over_the_servers_loop_guard() -> None:
    engine = FakeEngine()
    http = client(engine)
    http.post("/v1/chat/completions", json={"messages": HI})
    chosen = {"frequency_penalty": 0.5, "presence_penalty": -0.5, "repetition_penalty": 1.3}
    http.post("/v1/chat/completions", json={"messages": HI, **chosen})
    fmt = {"type": "json_object"}
    http.post("/v1/chat/completions", json={"messages": HI, "response_format": fmt})
    default, asked, constrained = (call["sampling"].penalties for call in engine.calls)
    assert (default.repetition, default.frequency, default.loop_ngram) == (1.0, 0.0, 6)
    assert (asked.repetition, asked.frequency, asked.presence, asked.loop_ngram) == (
        1.3,
        0.5,
        -0.5,
        6,
    )
    assert not constrained.active  # JSON repeats its keys by design: no guard unless asked


class BrokenGrammars(FakeEngine):
    """A bug of ours: the grammar compiler raises something nobody expected."""

    def __init__(self) -> None:
        super().__init__()
        self.grammars.processor = self._boom  # type: ignore[method-assign]

    @staticmethod
    def _boom(schema: object) -> None:
        raise KeyError("boom")


def test_a_fault_of_the_server_is_a_json_500_and_counted() -> None:
    http = client(BrokenGrammars())
    fmt = {"type": "json_object"}
    reply = http.post("/v1/chat/completions", json={"messages": HI, "response_format": fmt})
    assert reply.status_code == 500 and reply.json()["error"]["type"] == "server_error"
    assert 'assistant_lm_requests_total{status="500"} 1.0' in http.get("/metrics").text


class FailingEngine(FakeEngine):
    def generate_serial(self, *args: object, **kwargs: object) -> list[int]:
        raise RuntimeError("CUDA error: device-side assert triggered")


def test_an_engine_failure_is_a_json_500_and_the_next_request_works() -> None:
    engine = FailingEngine()
    http = client(engine)
    reply = http.post("/v1/chat/completions", json={"messages": HI})
    assert reply.status_code == 500 and reply.json()["error"]["type"] == "server_error"
    assert "device-side assert" in reply.json()["error"]["message"]
    engine.__class__ = FakeEngine
    assert http.post("/v1/chat/completions", json={"messages": HI}).status_code == 200


def test_health_says_restarting_and_failed_and_requests_get_503() -> None:
    engine = FakeEngine()
    http = client(engine)
    engine.status = lambda: "restarting"  # type: ignore[method-assign]
    assert http.get("/health").json() == {"status": "restarting"}
    reply = http.post("/v1/chat/completions", json={"messages": HI})
    assert reply.status_code == 503 and reply.headers["retry-after"]
    engine.failure = "out of memory"
    engine.status = lambda: "failed"  # type: ignore[method-assign]
    assert http.get("/health").json() == {"status": "failed", "error": "out of memory"}
    assert "out of memory" in http.post("/v1/chat/completions", json={"messages": HI}).text


def test_tokenize_counts_the_chat_prompt_against_the_context() -> None:
    body = client(FakeEngine()).post("/tokenize", json={"messages": HI}).json()
    assert body["count"] == len("user: Hi\n") and body["max_model_len"] == 4096
    models = client(FakeEngine()).get("/v1/models").json()
    assert models["data"][0]["max_model_len"] == 4096


def test_restarts_are_a_metric() -> None:
    engine = FakeEngine()
    engine.restarts = 2
    assert "assistant_lm_batch_restarts_total 2.0" in client(engine).get("/metrics").text
