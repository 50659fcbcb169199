"""What the dialog manager needs from a language model, whatever serves it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from assistant_core.errors import LLMError

ChatMessages = Sequence[dict[str, Any]]
"""OpenAI-style messages: `{"role": "user", "content": "..."}`."""


class ContextTooLong(LLMError):
    """The prompt plus the answer's token budget exceed the model's context: shorten the prompt
    (the server refused it before doing any work)."""

    def __init__(self, message: str, prompt_tokens: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.prompt_tokens, self.limit = prompt_tokens, limit


@dataclass(frozen=True)
class ToolCall:
    """A function the model asked to call, with its JSON-encoded arguments."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    """Token counts of one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    """A whole answer: text, or tool calls, and why it stopped."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    usage: Usage = Usage()


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: streams text, or completes with tools or a JSON schema.

    >>> for delta in model.stream([{"role": "user", "content": "Hi"}], max_tokens=16):
    ...     print(delta, end="")
    """

    def stream(
        self, messages: ChatMessages, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated."""
        ...

    def complete(
        self,
        messages: ChatMessages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """Return the whole answer; `response_format` is OpenAI's `json_schema` shape."""
        ...
