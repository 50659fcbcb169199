import json

import httpx
import pytest

from assistant.core.errors import LLMOverloaded, LLMUnavailable
from assistant.core.openai_client import OpenAIChatModel

pytestmark = pytest.mark.unit

MESSAGES = [{"role": "user", "content": "Hi"}]


def _sse(*texts: str) -> bytes:
    chunks = [
        {
            "id": "1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}],
        }
        for t in texts
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return body.encode()


def _model(handler: httpx.MockTransport) -> OpenAIChatModel:
    return OpenAIChatModel(
        "http://llm.test/v1", max_retries=0, http_client=httpx.Client(transport=handler)
    )


def test_stream_yields_deltas_and_sends_the_request() -> None:
    seen: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200, content=_sse("Hel", "lo"), headers={"content-type": "text/event-stream"}
        )

    assert list(_model(httpx.MockTransport(handle)).stream(MESSAGES, max_tokens=5)) == ["Hel", "lo"]
    assert seen[0]["stream"] is True and seen[0]["max_tokens"] == 5


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
    model = _model(httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    completion = model.complete(
        MESSAGES, tools=[{"type": "function", "function": {"name": "order_status"}}]
    )
    assert completion.tool_calls[0].name == "order_status"
    assert json.loads(completion.tool_calls[0].arguments) == {"order_id": "NW-1042"}
    assert completion.usage.completion_tokens == 5


def test_server_down_says_so() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(LLMUnavailable, match="cannot reach"):
        list(_model(httpx.MockTransport(refuse)).stream(MESSAGES))


def test_overload_says_so() -> None:
    model = _model(
        httpx.MockTransport(lambda r: httpx.Response(429, json={"error": {"message": "busy"}}))
    )
    with pytest.raises(LLMOverloaded):
        model.complete(MESSAGES)
