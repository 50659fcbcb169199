"""Fakes for fast unit tests: a chat model with a queue of scripted replies, a hashing embedder."""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from assistant.core.chat_model import ChatMessages, Completion


class FakeChatModel:
    """Replies from a queue; records every request so tests can assert on prompts.

    >>> model = FakeChatModel(); model.enqueue("Hello!")
    """

    def __init__(self) -> None:
        self.replies: deque[str | BaseException | Completion] = deque()
        self.requests: list[dict[str, Any]] = []

    def enqueue(self, *replies: str | BaseException | Completion) -> FakeChatModel:
        self.replies.extend(replies)
        return self

    def _next(self, messages: ChatMessages, **options: Any) -> str | BaseException | Completion:
        self.requests.append({"messages": list(messages), **options})
        if not self.replies:
            raise AssertionError("FakeChatModel: no scripted reply left")
        return self.replies.popleft()

    def stream(
        self, messages: ChatMessages, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        reply = self._next(messages, max_tokens=max_tokens, temperature=temperature)
        text = reply.text if isinstance(reply, Completion) else reply
        if isinstance(text, BaseException):
            raise text
        yield from re.findall(r"\S+\s*", text)

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
            messages, max_tokens=max_tokens, tools=tools, response_format=response_format
        )
        if isinstance(reply, BaseException):
            raise reply
        return reply if isinstance(reply, Completion) else Completion(text=reply)


class FailingMidStream(FakeChatModel):
    """Yields some words, then breaks, like a server killed mid-answer."""

    def stream(
        self, messages: ChatMessages, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        self.requests.append({"messages": list(messages)})
        yield "Partial "
        yield "answer "
        raise ConnectionError("stream broke")


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
