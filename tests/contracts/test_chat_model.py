"""The ChatModel contract (assistant_core/chat_model.py), run against every chat model: the
configurable fake of the unit tests, the OpenAI client against a loopback OpenAI-compatible server
(tests/reliability/faulty_lm.py), and (integration) the in-process transformers model.

The fake and the client are scripted (what the next request answers, or how it fails), so the
suite also checks that the fake fails the way the real client does; the real model answers what
it answers, so only the generic part of the suite runs against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import pytest

from assistant_core.chat_model import ChatModel, Completion
from assistant_core.errors import LLMError, LLMOverloaded, LLMUnavailable
from assistant_core.openai_client import OpenAIChatModel
from benchmarks.serving import serving
from tests.fakes import BreakOff, FakeChatModel
from tests.reliability.faulty_lm import Faults, faulty_app

UNIT = [pytest.mark.unit]

ANSWER = "Standard shipping costs 4.95 euros within three business days."
ASK = [{"role": "user", "content": "How much does standard shipping cost?"}]


class Scripted(Protocol):
    """A chat model and the switches that decide what its next requests get."""

    model: ChatModel

    def answer(self, text: str) -> None:
        """Every request from now on answers `text`."""

    def overload(self) -> None:
        """Every request from now on is refused: the server is busy."""

    def break_off(self) -> None:
        """The next stream dies after a few words."""


@dataclass
class ScriptedFake:
    model: FakeChatModel = field(default_factory=FakeChatModel)

    def answer(self, text: str) -> None:
        self.model.replies.clear()
        self.model.default = text

    def overload(self) -> None:
        self.model.replies.clear()
        self.model.default = LLMOverloaded("the language model is overloaded; try again shortly")

    def break_off(self) -> None:
        self.model.enqueue(
            BreakOff("Standard shipping ", LLMUnavailable("the stream broke off: reset"))
        )


@dataclass
class ScriptedServer:
    model: OpenAIChatModel
    faults: Faults

    def answer(self, text: str) -> None:
        self.faults.mode, self.faults.answer = "ok", text

    def overload(self) -> None:
        self.faults.mode = "overloaded"

    def break_off(self) -> None:
        self.faults.mode = "die_mid_stream"


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[tuple[str, Faults]]:
    faults = Faults()
    with serving(faulty_app(faults)) as base:
        yield f"{base}/v1", faults


@contextmanager
def _scripted(name: str, faulty_server: tuple[str, Faults]) -> Iterator[Scripted]:
    harness: Scripted
    if name == "fake":
        harness = ScriptedFake()
    else:
        url, faults = faulty_server
        faults.mode, faults.requests[:] = "ok", []
        # one retry, without backoff: an overloaded server stays overloaded
        harness = ScriptedServer(OpenAIChatModel(url, max_retries=1, retry_backoff_s=0.0), faults)
    harness.answer(ANSWER)
    try:
        yield harness
    finally:
        if isinstance(harness.model, OpenAIChatModel):
            harness.model.close()


@pytest.fixture(
    params=[pytest.param("fake", marks=UNIT), pytest.param("openai-client", marks=UNIT)]
)
def scripted(
    request: pytest.FixtureRequest, faulty_server: tuple[str, Faults]
) -> Iterator[Scripted]:
    """Each scriptable chat model, answering ANSWER until a test says otherwise."""
    with _scripted(request.param, faulty_server) as harness:
        yield harness


@pytest.fixture(scope="module")
def in_process_model() -> ChatModel:
    from assistant.llm.engine import TransformersChatModel
    from assistant.models import chat_model_path
    from assistant.wiring import quiet_model_libraries
    from assistant_core.settings import Settings
    from tests.conftest import MODEL_CACHE

    quiet_model_libraries()
    path = chat_model_path(Settings(model_dir=MODEL_CACHE, data_dir=MODEL_CACHE.parent))
    return TransformersChatModel(path, device="cpu")


@pytest.fixture(
    params=[
        pytest.param("fake", marks=UNIT),
        pytest.param("openai-client", marks=UNIT),
        pytest.param("in-process", marks=[pytest.mark.integration, pytest.mark.slow]),
    ]
)
def chat_model(request: pytest.FixtureRequest) -> Iterator[ChatModel]:
    """Every chat model, for what holds whatever the model answers."""
    if request.param == "in-process":
        yield request.getfixturevalue("in_process_model")
        return
    with _scripted(request.param, request.getfixturevalue("faulty_server")) as harness:
        yield harness.model


# ---- whatever the model answers


def test_it_is_a_chat_model(chat_model: ChatModel) -> None:
    assert isinstance(chat_model, ChatModel)


def test_a_stream_and_a_completion_say_the_same_at_temperature_zero(chat_model: ChatModel) -> None:
    chunks = list(chat_model.stream(ASK, max_tokens=12, temperature=0.0))
    whole = chat_model.complete(ASK, max_tokens=12, temperature=0.0)
    assert chunks and all(isinstance(c, str) and c for c in chunks)
    assert isinstance(whole, Completion) and whole.text.strip()
    assert "".join(chunks).strip() == whole.text.strip()
    assert whole.finish_reason in {"stop", "length"} and whole.tool_calls == []


# ---- scripted: the fake behaves like the client


def test_the_stream_comes_in_pieces_that_make_the_answer(scripted: Scripted) -> None:
    chunks = list(scripted.model.stream(ASK, max_tokens=64))
    assert len(chunks) > 1
    assert "".join(chunks).strip() == ANSWER


def test_a_completion_is_the_whole_answer(scripted: Scripted) -> None:
    reply = scripted.model.complete(ASK, max_tokens=64)
    assert (reply.text, reply.finish_reason, reply.tool_calls) == (ANSWER, "stop", [])


def test_an_overloaded_model_fails_before_any_text(scripted: Scripted) -> None:
    scripted.overload()
    seen: list[str] = []
    with pytest.raises(LLMOverloaded):
        seen.extend(scripted.model.stream(ASK, max_tokens=64))
    assert seen == []
    with pytest.raises(LLMOverloaded):
        scripted.model.complete(ASK, max_tokens=64)


def test_a_stream_that_breaks_off_raises_after_its_first_words(scripted: Scripted) -> None:
    scripted.break_off()
    seen: list[str] = []
    with pytest.raises(LLMError) as failure:
        seen.extend(scripted.model.stream(ASK, max_tokens=64))
    assert isinstance(failure.value, LLMUnavailable)
    assert seen and ANSWER.startswith("".join(seen))
    assert "".join(seen).strip() != ANSWER


def test_the_model_works_again_after_a_failure(scripted: Scripted) -> None:
    scripted.overload()
    with pytest.raises(LLMOverloaded):
        scripted.model.complete(ASK)
    scripted.answer("Two years.")
    assert "".join(scripted.model.stream(ASK)).strip() == "Two years."
