"""The OpenAI-compatible client (assistant_core/openai_client.py) over mock transports: requests as
sent, tool calls, retries only before the first token, errors in words."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from assistant_core.errors import LLMError, LLMOverloaded, LLMTimeout, LLMUnavailable
from assistant_core.openai_client import OpenAIChatModel

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

HI = [{"role": "user", "content": "Hi"}]


def _chunk(text: str) -> str:
    body = {
        "id": "1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(body)}\n\n"


def _sse(*texts: str) -> httpx.Response:
    """A whole stream: one chunk per text, then [DONE]."""
    body = "".join(_chunk(t) for t in texts) + "data: [DONE]\n\n"
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def _model(handler: Callable[[httpx.Request], httpx.Response], retries: int = 2) -> OpenAIChatModel:
    return OpenAIChatModel(
        "http://llm.test/v1",
        max_retries=retries,
        retry_backoff_s=0.0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_stream_yields_deltas_and_sends_the_request() -> None:
    seen: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return _sse("Hel", "lo")

    assert list(_model(handle).stream(HI, max_tokens=5)) == ["Hel", "lo"]
    assert seen[0]["stream"] is True and seen[0]["max_tokens"] == 5
    assert "stop" not in seen[0]
    assert list(_model(handle).stream(HI, stop=["\n\n"])) == ["Hel", "lo"]
    assert seen[1]["stop"] == ["\n\n"]


def test_a_stream_that_ends_without_text_yields_nothing() -> None:
    assert list(_model(lambda request: _sse()).stream(HI)) == []


def test_complete_returns_tool_calls() -> None:
    body = {
        "id": "1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {
                                "name": "order_status",
                                "arguments": '{"order_id": "NW-1042"}',
                            },
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    model = _model(lambda r: httpx.Response(200, json=body))
    completion = model.complete(
        HI, tools=[{"type": "function", "function": {"name": "order_status"}}]
    )
    assert completion.tool_calls[0].name == "order_status"
    assert json.loads(completion.tool_calls[0].arguments) == {"order_id": "NW-1042"}
    assert completion.usage.completion_tokens == 5


def test_overload_before_the_first_token_is_retried() -> None:
    answers = iter(
        [
            httpx.Response(429, json={"error": {"message": "busy"}}),
            httpx.Response(
                200,
                text=_chunk("ok") + "data: [DONE]\n\n",
                headers={"content-type": "text/event-stream"},
            ),
        ]
    )
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return next(answers)

    assert list(_model(handle).stream(HI)) == ["ok"]
    assert len(calls) == 2


def test_a_stream_broken_before_its_first_token_is_retried() -> None:
    calls: list[int] = []

    def body() -> Iterator[bytes]:
        raise httpx.ReadError("connection reset")
        yield b""  # a generator: the error comes while the body is read

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(
                200, content=body(), headers={"content-type": "text/event-stream"}
            )
        return _sse("Hello")

    assert list(_model(handle).stream(HI)) == ["Hello"]
    assert len(calls) == 2


def test_a_stream_broken_after_the_first_token_is_not_retried() -> None:
    calls: list[int] = []

    def body() -> Iterator[bytes]:
        yield _chunk("Partial").encode()
        raise httpx.ReadError("connection reset")

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    received: list[str] = []
    with pytest.raises(LLMUnavailable, match="broke off"):
        for delta in _model(handle).stream(HI):
            received.append(delta)
    assert received == ["Partial"] and len(calls) == 1


def test_server_down_is_retried_then_named() -> None:
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(
        LLMUnavailable, match="cannot reach the language model at http://llm.test/v1"
    ):
        _model(refuse, retries=2).complete(HI)
    assert len(calls) == 3
    with pytest.raises(LLMUnavailable, match="cannot reach"):
        list(_model(refuse, retries=2).stream(HI))
    assert len(calls) == 6


def test_timeouts_say_timed_out() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(LLMTimeout, match="did not answer in time"):
        _model(slow).complete(HI)
    with pytest.raises(LLMTimeout):
        _model(lambda r: httpx.Response(504, json={"error": {"message": "deadline"}})).complete(HI)


def test_overload_after_retries_says_overloaded() -> None:
    with pytest.raises(LLMOverloaded, match="overloaded"):
        _model(
            lambda r: httpx.Response(429, json={"error": {"message": "busy"}}), retries=1
        ).complete(HI)
    with pytest.raises(LLMOverloaded):
        _model(lambda r: httpx.Response(429, json={"error": {"message": "busy"}}), 0).complete(HI)


def test_bad_request_is_not_retried_and_keeps_the_servers_reason() -> None:
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"error": {"message": "unsupported fields: logprobs"}})

    with pytest.raises(LLMError, match="unsupported fields: logprobs"):
        _model(handle).complete(HI)
    assert len(calls) == 1


def test_complete_sends_tools_tool_choice_and_schema() -> None:
    seen: list[dict[str, object]] = []
    reply = {
        "id": "1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{}"}}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=reply)

    tools = [{"type": "function", "function": {"name": "f"}}]
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    _model(handle).complete(HI, tools=tools, tool_choice="required", response_format=fmt)
    assert (
        seen[0]["tools"] == tools
        and seen[0]["tool_choice"] == "required"
        and seen[0]["response_format"] == fmt
    )


def test_context_length_exceeded_is_its_own_error_with_the_servers_numbers() -> None:
    from assistant_core.chat_model import ContextTooLong

    message = "This model's maximum context length is 8192 tokens. However, you requested 9000"
    body = {"error": {"message": message, "code": "context_length_exceeded", "param": "messages"}}
    model = _model(lambda request: httpx.Response(400, json=body))
    with pytest.raises(ContextTooLong, match="maximum context length is 8192"):
        model.complete(HI)
    with pytest.raises(ContextTooLong):
        list(model.stream(HI))


def test_token_count_and_context_come_from_the_server_or_a_safe_bound() -> None:
    from assistant_core.openai_client import byte_bound

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize":
            assert json.loads(request.content)["messages"] == HI
            return httpx.Response(200, json={"count": 7, "max_model_len": 8192, "tokens": []})
        card = {"id": "default", "object": "model", "created": 0, "owned_by": "x"}
        return httpx.Response(
            200, json={"object": "list", "data": [dict(card, max_model_len=8192)]}
        )

    model = _model(handle)
    assert model.count_tokens(HI) == 7 and model.context_window() == 8192
    plain = _model(lambda request: httpx.Response(404, json={"error": {"message": "no"}}))
    assert plain.count_tokens(HI) == byte_bound(HI) >= len(b"Hi")
    text = [{"role": "user", "content": "日本語のテキスト" * 50}]
    assert byte_bound(text) >= 3 * len(text[0]["content"])  # a CJK character can be 3 tokens
