"""The real server on the real packaged model, through the real `openai` client (CPU, small
budgets)."""

from __future__ import annotations

import concurrent.futures as futures
import json
import os
import threading
import time

import httpx
import openai
import pytest
from pydantic import BaseModel, Field

from assistant.llm.server.embedded import EmbeddedChatModel
from assistant_core.errors import LLMOverloaded
from assistant_core.openai_client import OpenAIChatModel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WORDS = [
    "apple",
    "river",
    "castle",
    "pencil",
    "tiger",
    "guitar",
    "window",
    "rocket",
    "banana",
    "garden",
    "silver",
    "planet",
    "candle",
    "forest",
    "yellow",
    "bottle",
]


def ask(word: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Repeat this word exactly once: {word}"}]


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)


def test_plain_request_answers_with_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=10,
        temperature=0,
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert (
        reply.usage is not None
        and 0 < reply.usage.completion_tokens <= 10
        and reply.usage.prompt_tokens > 10
    )


def test_stream_matches_the_whole_answer(client: openai.OpenAI, lm: EmbeddedChatModel) -> None:
    # the first request caches the prompt's KV blocks; in bf16 a prefill that reuses them can pick
    # another greedy token than one that does not, so compare two requests that both reuse them
    lm.complete(ask("apple"), max_tokens=6)
    whole = lm.complete(ask("apple"), max_tokens=6).text
    chunks = list(
        client.chat.completions.create(
            model="default", messages=ask("apple"), max_tokens=6, temperature=0, stream=True
        )
    )  # type: ignore[call-overload]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (
        text == whole and len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    )
    assert chunks[-1].usage is not None and chunks[-1].choices[0].finish_reason in {
        "stop",
        "length",
    }


def test_forced_tool_call_names_the_tool_with_json_arguments(lm: EmbeddedChatModel) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "order_status",
                "description": "Look up where an order is",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string", "maxLength": 12}},
                    "required": ["order_id"],
                    "additionalProperties": False,
                },
            },
        }
    ]
    completion = lm.complete(
        [{"role": "user", "content": "Where is my order NW-1042?"}],
        max_tokens=40,
        tools=tools,
        tool_choice="required",
    )
    assert completion.finish_reason == "tool_calls"
    call = completion.tool_calls[0]
    assert call.name == "order_status" and isinstance(json.loads(call.arguments)["order_id"], str)


class Contact(BaseModel):
    name: str = Field(max_length=24)
    age: int = Field(ge=0, le=150)
    member: bool


PEOPLE = [
    "Anna is 34 and a member.",
    "Bob, 51, not a member.",
    "Chen (age 27) joined as a member last year.",
    "Dora is ninety and has never been a member.",
    "Eli: 19, member.",
    "Fatima is 45; membership lapsed.",
    "Greg is 62 and a member.",
    "Hana, aged 8, is not a member.",
]


def test_every_json_schema_reply_parses_and_validates(lm: EmbeddedChatModel) -> None:
    count = 8 if os.environ.get("ASSISTANT_TEST_SLOW") else 3
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "contact", "schema": Contact.model_json_schema()},
    }
    for text in PEOPLE[:count]:
        prompt = [{"role": "user", "content": f"Extract name, age and membership as JSON: {text}"}]
        reply = lm.complete(prompt, max_tokens=48, response_format=fmt)
        assert reply.finish_reason == "stop", reply.text
        Contact.model_validate_json(reply.text)


def test_sixteen_concurrent_requests_get_their_own_answers(lm: EmbeddedChatModel) -> None:
    with futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda w: lm.complete(ask(w), max_tokens=6).text, WORDS))
    assert all(answers)
    for word, answer in zip(WORDS, answers, strict=True):
        others = [w for w in WORDS if w != word and w in answer.lower()]
        assert not others, f"{word!r} got an answer about {others}: {answer!r}"
    assert sum(word in answer.lower() for word, answer in zip(WORDS, answers, strict=True)) >= 6
    assert lm.complete(ask(WORDS[1]), max_tokens=6).text == answers[1]  # alone = batched (greedy)


def test_overload_gives_429_and_the_client_says_overloaded(
    lm: EmbeddedChatModel, base_url: str
) -> None:
    admission = lm.server.app.state.admission
    limit, admission.limit = admission.limit, admission.count  # full from now on
    try:
        reply = httpx.post(
            f"{base_url}/chat/completions",
            json={"messages": ask("apple"), "max_tokens": 2},
            timeout=30,
        )
        assert reply.status_code == 429 and reply.headers["retry-after"] == "1"
        with pytest.raises(LLMOverloaded):
            OpenAIChatModel(base_url, max_retries=0).complete(ask("apple"), max_tokens=2)
    finally:
        admission.limit = limit


def test_a_disconnect_mid_stream_frees_its_slot_and_stalls_nobody(
    lm: EmbeddedChatModel, base_url: str
) -> None:
    admission, engine = lm.server.app.state.admission, lm.server.engine
    received: list[str] = []

    def leave_early() -> None:
        body = {"messages": ask("river"), "max_tokens": 400, "temperature": 0, "stream": True}
        with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=120) as reply:
            for line in reply.iter_lines():
                if '"content"' in line:
                    received.append(line)
                if len(received) >= 3:
                    return  # closes the connection mid-answer

    leaver = threading.Thread(target=leave_early)
    leaver.start()
    started = time.monotonic()
    other = lm.complete(ask("castle"), max_tokens=6)
    leaver.join(timeout=120)
    assert other.text and len(received) == 3
    deadline = time.monotonic() + 20
    while (admission.count or engine._routes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert admission.count == 0 and not engine._routes, "the abandoned request still holds its slot"
    assert time.monotonic() - started < 100


def test_health_models_and_metrics(base_url: str) -> None:
    root = base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health").json()["status"] == "ok"
    assert httpx.get(f"{base_url}/models").json()["data"][0]["id"] == "default"
    text = httpx.get(f"{root}/metrics").text
    for name in (
        "assistant_lm_requests_total",
        "assistant_lm_tokens_total",
        "assistant_lm_queue_depth",
        "assistant_lm_time_to_first_token_seconds",
        "assistant_lm_tokens_per_second",
    ):
        assert name in text


def test_sampled_and_greedy_requests_run_side_by_side(client: openai.OpenAI) -> None:
    def one(i: int) -> tuple[str, str | None]:
        reply = client.chat.completions.create(
            model="default",
            messages=ask(WORDS[i]),
            max_tokens=6,
            temperature=0.8 if i % 2 else 0,
            top_p=0.9 if i % 2 else 1.0,
        )
        return reply.choices[0].message.content or "", reply.choices[0].finish_reason

    with futures.ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(one, range(6)))
    assert all(text and reason in {"stop", "length"} for text, reason in replies)
