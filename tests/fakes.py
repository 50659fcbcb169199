"""Fakes for fast unit tests: one configurable chat model, a hashing embedder.

Every test that needs a chat model uses `FakeChatModel`: scripted replies (text, a `Completion`
with tool calls, an exception, a reply computed from the prompt, a stream that breaks off), a
default for when the script runs out, and a hook before each streamed chunk for tests that pace,
hold or gate the stream.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from assistant_core.chat_model import ChatMessages, Completion


@dataclass(frozen=True)
class BreakOff:
    """A stream that yields `partial` and then raises `error`, like a server killed mid-answer."""

    partial: str
    error: BaseException


Reply = str | Completion | BaseException | BreakOff | Callable[[ChatMessages], "str | Completion"]
"""One scripted reply; a callable computes it from the request's messages."""


@dataclass
class Gate:
    """A `before_chunk` hook that holds each stream before its first chunk until released, so a
    test can act while a turn is inside the model.

    >>> gate = Gate(); model = FakeChatModel(before_chunk=gate).enqueue("Two years.")
    >>> gate.entered.wait(20); ...; gate.release.set()
    """

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    timeout_s: float = 20.0

    def __call__(self, number: int) -> None:
        if number == 0:
            self.entered.set()
            assert self.release.wait(self.timeout_s), "the test never released the gate"


def words(text: str) -> list[str]:
    """How the fake streams a text: word by word, each with the spaces after it."""
    return re.findall(r"\S+\s*", text)


class FakeChatModel:
    """A ChatModel whose replies a test scripts; it records every request to assert on prompts.

    >>> model = FakeChatModel().enqueue("Hello!", LLMOverloaded("busy"))
    >>> echo = FakeChatModel(default=lambda messages: messages[-1]["content"])
    >>> paced = FakeChatModel(before_chunk=lambda n: time.sleep(0.05)).enqueue("Slowly now.")
    """

    def __init__(
        self,
        *replies: Reply,
        default: Reply | None = None,
        complete_default: Reply | None = None,
        before_chunk: Callable[[int], None] | None = None,
        chunk_delay_s: float = 0.0,
    ) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.default = default
        """The reply once the queue is empty; None: running out is a test failure."""
        self.complete_default = complete_default
        """What `complete` (routing, extraction, summaries) answers once the queue is empty, when
        it differs from `default`."""
        self.before_chunk = before_chunk
        """Called with the chunk's number (0 first) before each streamed chunk: hold or gate."""
        self.chunk_delay_s = chunk_delay_s
        self.requests: list[dict[str, Any]] = []
        self.streams = 0

    def enqueue(self, *replies: Reply) -> FakeChatModel:
        self.replies.extend(replies)
        return self

    def _next(
        self, messages: ChatMessages, default: Reply | None, **options: Any
    ) -> str | Completion | BaseException | BreakOff:
        self.requests.append({"messages": list(messages), **options})
        reply = self.replies.popleft() if self.replies else default
        if reply is None:
            raise AssertionError("FakeChatModel: no scripted reply left")
        return reply(messages) if callable(reply) else reply

    def stream(
        self, messages: ChatMessages, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        self.streams += 1
        reply = self._next(messages, self.default, max_tokens=max_tokens, temperature=temperature)
        if isinstance(reply, BaseException):
            raise reply
        text = reply.text if isinstance(reply, Completion) else reply
        chunks = words(text.partial if isinstance(text, BreakOff) else text)
        for number, chunk in enumerate(chunks):
            self._pace(number)
            yield chunk
        if isinstance(reply, BreakOff):
            raise reply.error

    def _pace(self, number: int) -> None:
        if self.chunk_delay_s:
            time.sleep(self.chunk_delay_s)
        if self.before_chunk is not None:
            self.before_chunk(number)

    def complete(
        self,
        messages: ChatMessages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        reply = self._next(
            messages,
            self.default if self.complete_default is None else self.complete_default,
            max_tokens=max_tokens,
            tools=tools,
            response_format=response_format,
        )
        if isinstance(reply, BreakOff):
            raise reply.error
        if isinstance(reply, BaseException):
            raise reply
        return reply if isinstance(reply, Completion) else Completion(text=reply)


class HashingEmbedder:
    """Bag-of-words vectors by hashing: texts sharing words are near, no model needed."""

    name = "hashing-test"

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                if len(word) > 2:
                    bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension
                    out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out
