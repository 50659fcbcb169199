"""The Chat Completions request we accept; anything else is refused by name, never silently
ignored, and never reaches the model as a value it could choke on."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

INT64 = 2**63
T = TypeVar("T", bound=BaseModel)
SUPPORTED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "response_format",
        "n",
        "user",
        "parallel_tool_calls",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
    }
)


class BadRequest(ValueError):
    """A request the server will not run; its message goes back to the client with a 400."""

    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ContextTooLong(BadRequest):
    """Prompt plus completion budget do not fit the model's context or the KV cache."""

    code = "context_length_exceeded"

    def __init__(self, prompt_tokens: int, max_tokens: int, limit: int) -> None:
        super().__init__(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} "
            "in the completion). Please reduce the length of the messages or completion.",
            param="messages",
        )
        self.prompt_tokens, self.max_tokens, self.limit = prompt_tokens, max_tokens, limit


class ResponseFormat(BaseModel):
    """`text`, `json_object`, or `json_schema` with a schema."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    def schema_or_none(self) -> dict[str, Any] | None:
        """The JSON schema to constrain to; `json_object` means any object."""
        if self.type == "json_object":
            return {"type": "object"}
        if self.type == "text":
            return None
        schema = (self.json_schema or {}).get("schema")
        if not isinstance(schema, dict):
            raise BadRequest("response_format.json_schema.schema must be a JSON schema object")
        return schema


class FunctionCall(BaseModel):
    """A call the assistant made earlier in the conversation."""

    model_config = ConfigDict(strict=True)
    name: str
    arguments: str | dict[str, Any] = "{}"


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class TextPart(BaseModel):
    """The one content part a text model can take (images, audio ... are refused)."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["text"]
    text: str


class Message(BaseModel):
    """One chat message; fields other clients echo back (`refusal`, `audio` ...) are ignored."""

    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(BaseModel):
    model_config = ConfigDict(strict=True)
    name: str


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["function"]
    function: NamedFunction


class ChatRequest(BaseModel):
    """One `/v1/chat/completions` body."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={"additionalProperties": False},
        allow_inf_nan=False,
    )
    model: str = "default"
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=-INT64, lt=INT64)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None
    n: int = 1
    user: str | None = None
    parallel_tool_calls: bool | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=2.0)

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported")
        return value

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> list[str] | None:
        stops = [value] if isinstance(value, str) else value
        if stops is not None and (len(stops) > 4 or any(not s for s in stops)):
            raise ValueError("stop takes at most 4 non-empty strings")
        return stops

    def check_supported(self) -> None:
        """Refuse fields we do not implement (logprobs, logit_bias, ...) naming each one."""
        unknown = sorted(set(self.model_extra or {}) - SUPPORTED_FIELDS)
        if unknown:
            raise BadRequest(f"unsupported fields: {', '.join(unknown)}", param=unknown[0])
        if self.tool_choice is not None and not self.tools and self.tool_choice != "none":
            raise BadRequest("tool_choice needs tools", param="tool_choice")

    def token_budget(self, limit: int) -> int:
        """max_completion_tokens, else max_tokens, else a default, capped by the server."""
        wanted = self.max_completion_tokens or self.max_tokens or min(512, limit)
        if wanted > limit:
            raise BadRequest(
                f"max_tokens {wanted} exceeds this server's limit of {limit}", param="max_tokens"
            )
        return wanted

    def stop_list(self) -> list[str]:
        return list(self.stop or [])

    def tool_dicts(self) -> list[dict[str, Any]] | None:
        """The tools as plain dicts, or None when tool_choice is "none"."""
        if not self.tools or self.tool_choice == "none":
            return None
        return [t.model_dump(exclude_none=True) for t in self.tools]

    def choice(self) -> str | dict[str, Any] | None:
        if isinstance(self.tool_choice, NamedToolChoice):
            return self.tool_choice.model_dump()
        return self.tool_choice

    def message_dicts(self) -> list[dict[str, Any]]:
        """Messages as the chat template takes them: known fields only."""
        keep = {"role", "content", "name", "tool_calls", "tool_call_id"}
        return [m.model_dump(include=keep, exclude_none=True) for m in self.messages]


class TokenizeRequest(BaseModel):
    """`POST /tokenize` as vLLM has it: the chat prompt's token count against the context."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: str = "default"
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    add_generation_prompt: bool = True

    def message_dicts(self) -> list[dict[str, Any]]:
        keep = {"role", "content", "name", "tool_calls", "tool_call_id"}
        return [m.model_dump(include=keep, exclude_none=True) for m in self.messages]


def _not_json(constant: str) -> Any:
    raise BadRequest(f"the body is not JSON ({constant} is not a JSON value)")


def bad_unicode(value: Any, path: str = "body") -> str | None:
    """Where a string holds a lone surrogate (valid in JSON escapes, not encodable as UTF-8)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as err:
                return f"{where}: invalid Unicode (a lone surrogate at position {err.start})"
        elif isinstance(item, dict):
            for key, sub in item.items():
                stack.append((key, f"{where} (a key)"))
                stack.append((sub, f"{where}.{key}" if isinstance(key, str) else where))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}.{i}") for i, sub in enumerate(item))
    return None


def parse_body(raw: bytes, model: type[T]) -> T:
    """Bytes to a validated request; every way it can be wrong is a BadRequest naming the place."""
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    problem = bad_unicode(body)
    if problem:
        raise BadRequest(problem)
    try:
        return model.model_validate(body)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in err.errors()
        )
        first = err.errors()[0]["loc"] if err.errors() else ()
        raise BadRequest(problems, param=str(first[0]) if first else None) from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
