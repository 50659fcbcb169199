"""The client for any OpenAI-compatible chat server: ours, vLLM, SGLang."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai

from assistant.errors import LLMError, LLMOverloaded, LLMTimeout, LLMUnavailable
from assistant.llm.protocol import ChatMessages, Completion, ToolCall, Usage


def translate_error(err: openai.OpenAIError, base_url: str) -> LLMError:
    """Say what failed in words a user can act on."""
    if isinstance(err, openai.APITimeoutError):
        return LLMTimeout(f"the language model at {base_url} did not answer in time")
    if isinstance(err, openai.APIConnectionError):
        return LLMUnavailable(f"cannot reach the language model at {base_url}")
    if isinstance(err, openai.RateLimitError) or getattr(err, "status_code", None) == 503:
        return LLMOverloaded(f"the language model at {base_url} is overloaded; try again shortly")
    return LLMError(f"the language model at {base_url} failed: {err}")


class OpenAIChatModel:
    """ChatModel over HTTP; pass `http_client` to inject a transport in tests.

    >>> model = OpenAIChatModel("http://127.0.0.1:8000/v1", model="default")
    >>> "".join(model.stream([{"role": "user", "content": "Hi"}], max_tokens=8))
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "default",
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=http_client,
        )

    def stream(
        self, messages: ChatMessages, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        try:
            chunks = self._client.chat.completions.create(
                model=self.model,
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
            )
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.OpenAIError as err:
            raise translate_error(err, self.base_url) from err
        except httpx.HTTPError as err:
            raise LLMUnavailable(f"the stream from {self.base_url} broke off: {err}") from err

    def complete(
        self,
        messages: ChatMessages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = tools
        if response_format:
            extra["response_format"] = response_format
        try:
            reply = self._client.chat.completions.create(
                model=self.model,
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                **extra,
            )
        except openai.OpenAIError as err:
            raise translate_error(err, self.base_url) from err
        choice = reply.choices[0]
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in (choice.message.tool_calls or [])
            if c.type == "function"
        ]
        usage = Usage(reply.usage.prompt_tokens, reply.usage.completion_tokens) if reply.usage else Usage()
        return Completion(
            text=choice.message.content or "",
            tool_calls=calls,
            finish_reason=choice.finish_reason or "stop",
            usage=usage,
        )
