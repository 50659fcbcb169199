"""The real server on the real packaged model refuses what cannot run (too long, bad values) at
once, keeps serving after it, and keeps its answers out of repetition loops."""

from __future__ import annotations

import httpx
import pytest

from assistant.llm.server.batching import Sampling
from assistant.llm.server.embedded import EmbeddedChatModel
from assistant.llm.server.prompts import prompt_ids
from assistant.llm.server.repetition import repeats
from assistant_core.chat_model import ContextTooLong

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HI = [{"role": "user", "content": "What is the capital of France?"}]
LOOPS = [  # greedy SmolLM2-135M answers these with one line over and over
    {"role": "user", "content": "Give me a list of 25 fruit names."},
    {"role": "user", "content": "List 30 different options for the ls command."},
]


def test_a_20k_word_prompt_is_refused_at_once_and_the_server_keeps_serving(
    lm: EmbeddedChatModel, base_url: str
) -> None:
    flood = [{"role": "user", "content": " ".join(["customer"] * 20_000)}]
    reply = httpx.post(
        f"{base_url}/chat/completions", json={"messages": flood, "max_tokens": 16}, timeout=60
    )
    error = reply.json()["error"]
    assert reply.status_code == 400 and error["code"] == "context_length_exceeded"
    assert f"maximum context length is {lm.server.engine.context_tokens} tokens" in error["message"]
    assert "16 in the completion" in error["message"]
    with pytest.raises(ContextTooLong):
        lm.complete(flood, max_tokens=16)
    after = httpx.post(
        f"{base_url}/chat/completions",
        json={"messages": HI, "max_tokens": 8, "temperature": 0},
        timeout=120,
    )
    assert after.status_code == 200 and "Paris" in after.json()["choices"][0]["message"]["content"]
    root = base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health").json()["status"] == "ok"
    assert lm.server.engine.restarts == 0


def test_the_context_is_the_smaller_of_the_model_and_the_kv_cache(lm: EmbeddedChatModel) -> None:
    engine = lm.server.engine
    assert 0 < engine.context_tokens <= engine.model.config.max_position_embeddings
    assert engine.context_tokens <= engine.config.kv_blocks * engine.config.page_size
    assert lm.context_window() == engine.context_tokens
    assert lm.count_tokens(HI) == len(prompt_ids(engine.tokenizer, HI, None))


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'{"messages": [{"role": "user", "content": "\\ud800 hi"}]}', "invalid Unicode"),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 0.5, '
            b'"seed": 1208925819614629174706176}',
            "seed",
        ),
    ],
)
def test_bad_values_are_400_on_the_real_tokenizer(raw: bytes, named: str, base_url: str) -> None:
    headers = {"content-type": "application/json"}
    reply = httpx.post(f"{base_url}/chat/completions", content=raw, headers=headers, timeout=60)
    assert reply.status_code == 400 and named in reply.json()["error"]["message"]


def test_the_loop_guard_stops_greedy_loops_in_the_batch(lm: EmbeddedChatModel) -> None:
    """Without control (model.generate: deterministic) the model loops on these prompts; through
    the server, as clients get it, no 8-token run comes a third time (list numbers equal)."""
    engine = lm.server.engine
    assert engine.batch_penalties and engine.penalties.loop_ngram > 0
    for message in LOOPS:
        ids = prompt_ids(engine.tokenizer, [message], None)
        uncontrolled = engine.generate_serial(ids, Sampling(max_tokens=48))
        assert repeats(uncontrolled, 8, 3, engine.markers), "the prompt no longer loops"
        text = lm.complete([message], max_tokens=48).text
        controlled = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert text and not repeats(controlled, 8, 3, engine.markers), text
