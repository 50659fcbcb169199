"""The client for any OpenAI-compatible chat server: ours, vLLM, SGLang."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import httpx
import openai
from openai import Stream
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from assistant_core.chat_model import ChatMessages, Completion, ContextTooLong, ToolCall, Usage
from assistant_core.errors import LLMError, LLMOverloaded, LLMTimeout, LLMUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


def translate_error(err: BaseException, base_url: str) -> LLMError:
    """Say what failed in words a user can act on."""
    status = getattr(err, "status_code", None)
    if status == 400 and getattr(err, "code", None) == "context_length_exceeded":
        return ContextTooLong(f"the language model at {base_url} refused the prompt: {_said(err)}")
    if isinstance(err, openai.APITimeoutError | httpx.TimeoutException) or status == 504:
        return LLMTimeout(f"the language model at {base_url} did not answer in time")
    if isinstance(err, openai.APIConnectionError | httpx.TransportError):
        return LLMUnavailable(
            f"cannot reach the language model at {base_url} (is the server running?)"
        )
    if isinstance(err, openai.RateLimitError) or status == 503:
        return LLMOverloaded(f"the language model at {base_url} is overloaded; try again shortly")
    if isinstance(err, openai.AuthenticationError):
        return LLMError(
            f"the language model at {base_url} refused the API key (ASSISTANT_LLM_API_KEY)"
        )
    return LLMError(f"the language model at {base_url} failed: {_said(err)}")


def _said(err: BaseException) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return getattr(err, "message", None) or str(err)


def byte_bound(messages: ChatMessages) -> int:
    """Tokens a chat prompt can take at most, without a tokenizer: byte-level BPE and SentencePiece
    with byte fallback spend at least one UTF-8 byte per token; 16 per message and 64 in all cover
    the chat template's markers and a default system prompt."""
    size = sum(len(str(m.get("content") or "").encode("utf-8", "replace")) for m in messages)
    return size + 16 * len(messages) + 64


RETRYABLE = (LLMUnavailable, LLMOverloaded)


def _params(messages: ChatMessages) -> list[ChatCompletionMessageParam]:
    """Our OpenAI-style dicts, as the SDK's TypedDicts (the same JSON)."""
    return cast("list[ChatCompletionMessageParam]", list(messages))


def _texts(chunks: Stream[ChatCompletionChunk]) -> Iterator[str]:
    """The text of each chunk that carries some."""
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


class OpenAIChatModel:
    """ChatModel over HTTP; pass `http_client` to inject a transport in tests.

    Retries (server down, 429/503) happen only before the first token: a stream that broke after
    text reached the user is an error, never a silent restart.

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
        connect_timeout_s: float = 5.0,
        max_retries: int = 2,
        retry_backoff_s: float = 0.5,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self._context: int | None = None
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),  # type: ignore[arg-type]  # openai 3 annotates httpx2's Timeout; httpx's has its shape
            max_retries=0,  # ours below, so that nothing is retried after the first token
            http_client=http_client,  # type: ignore[arg-type]  # httpx2's Client, likewise (tests pass httpx's MockTransport)
        )

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run `attempt`, retrying unreachable/overloaded with backoff; other errors at once: a
        whole completion, or a stream up to its first token."""
        for tries in range(self.max_retries + 1):
            try:
                return attempt()
            except (openai.OpenAIError, httpx.HTTPError) as err:
                failure = translate_error(err, self.base_url)
                if not isinstance(failure, RETRYABLE) or tries == self.max_retries:
                    raise failure from err
                log.info("retrying the language model (%s)", failure)
                time.sleep(self.retry_backoff_s * 2**tries)
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(
        self,
        messages: ChatMessages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        def start() -> tuple[Stream[ChatCompletionChunk], str | None, Iterator[str]]:
            chunks = self._client.chat.completions.create(
                model=self.model,
                messages=_params(messages),
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                extra_body={"stop": stop} if stop else None,  # sent only when given
            )
            texts = _texts(chunks)
            try:
                return chunks, next(texts, None), texts
            except BaseException:
                chunks.close()
                raise

        chunks, first, texts = self._retrying(start)  # up to the first token, as complete's call
        with chunks:
            if first is None:
                return
            yield first
            try:
                yield from texts
            except (openai.OpenAIError, httpx.HTTPError) as err:
                raise LLMUnavailable(f"the stream from {self.base_url} broke off: {err}") from err

    def complete(
        self,
        messages: ChatMessages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> Completion:
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = tools
            if tool_choice is not None:
                extra["tool_choice"] = tool_choice
        if response_format:
            extra["response_format"] = response_format
        reply = self._retrying(
            lambda: self._client.chat.completions.create(
                model=self.model,
                messages=_params(messages),
                max_tokens=max_tokens,
                temperature=temperature,
                **extra,
            )
        )
        choice = reply.choices[0]
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in (choice.message.tool_calls or [])
            if c.type == "function"
        ]
        usage = (
            Usage(reply.usage.prompt_tokens, reply.usage.completion_tokens)
            if reply.usage
            else Usage()
        )
        return Completion(
            text=choice.message.content or "",
            tool_calls=calls,
            finish_reason=choice.finish_reason or "stop",
            usage=usage,
        )

    def context_window(self) -> int | None:
        """The model's context in tokens, as `/v1/models` tells it (`max_model_len`: ours, vLLM);
        None when the server does not say."""
        if self._context is None:
            try:
                cards = self._client.models.list().data
            except (openai.OpenAIError, httpx.HTTPError) as err:
                raise translate_error(err, self.base_url) from err
            lengths = [getattr(c, "max_model_len", None) for c in cards if c.id == self.model]
            lengths = lengths or [getattr(c, "max_model_len", None) for c in cards]
            self._context = next((int(n) for n in lengths if isinstance(n, int)), 0)
        return self._context or None

    def count_tokens(self, messages: ChatMessages) -> int:
        """The chat prompt's tokens as the server counts them (`POST /tokenize`: ours, vLLM); where
        the server has no such endpoint, `byte_bound`, an upper bound."""
        root = self.base_url.rstrip("/").removesuffix("/v1")
        try:
            reply = self._client.post(
                f"{root}/tokenize",
                cast_to=httpx.Response,
                body={"model": self.model, "messages": list(messages)},
            )
            return int(reply.json()["count"])
        except openai.NotFoundError:
            return byte_bound(messages)
        except (openai.OpenAIError, httpx.HTTPError) as err:
            raise translate_error(err, self.base_url) from err

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
