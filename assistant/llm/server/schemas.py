"""The Chat Completions request we accept; anything else is refused by name, never silently
ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    }
)


class BadRequest(ValueError):
    """A request the server will not run; its message goes back to the client with a 400."""


class ResponseFormat(BaseModel):
    """`text`, `json_object`, or `json_schema` with a schema."""

    model_config = ConfigDict(extra="forbid")
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


class ChatRequest(BaseModel):
    """One `/v1/chat/completions` body."""

    model_config = ConfigDict(extra="allow")
    model: str = "default"
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    n: int = 1
    user: str | None = None
    parallel_tool_calls: bool | None = None

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
        """Refuse fields we do not implement (logprobs, penalties, ...) naming each one."""
        unknown = sorted(set(self.model_extra or {}) - SUPPORTED_FIELDS)
        if unknown:
            raise BadRequest(f"unsupported fields: {', '.join(unknown)}")
        for message in self.messages:
            if message.get("role") not in {"system", "developer", "user", "assistant", "tool"}:
                raise BadRequest(f"unsupported message role: {message.get('role')!r}")
        if self.tool_choice is not None and not self.tools and self.tool_choice != "none":
            raise BadRequest("tool_choice needs tools")

    def token_budget(self, limit: int) -> int:
        """max_completion_tokens, else max_tokens, else a default, capped by the server."""
        wanted = self.max_completion_tokens or self.max_tokens or min(512, limit)
        if wanted > limit:
            raise BadRequest(f"max_tokens {wanted} exceeds this server's limit of {limit}")
        return wanted

    def stop_list(self) -> list[str]:
        return list(self.stop or [])  # type: ignore[arg-type]
