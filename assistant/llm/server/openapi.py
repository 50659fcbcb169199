"""The LM server's OpenAPI document: the request bodies we validate by hand, written out, so clients
and the fuzzer (schemathesis) see what is accepted and what every status looks like."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from assistant.llm.server.config import ServerConfig
from assistant.llm.server.schemas import ChatRequest, TokenizeRequest

REF = "#/components/schemas/{model}"
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
COMPLETION = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "object": {"const": "chat.completion"},
        "choices": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason"],
                "properties": {
                    "finish_reason": {"enum": ["stop", "length", "tool_calls"]},
                    "message": {"type": "object", "required": ["role"]},
                },
            },
        },
        "usage": {
            "type": "object",
            "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        },
    },
}
EVENT = {  # one server-sent event: a chunk, an error, or [DONE]
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
}
TOKENS = {
    "type": "object",
    "required": ["count", "max_model_len", "tokens"],
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "max_model_len": {"type": "integer", "minimum": 1},
        "tokens": {"type": "array", "items": {"type": "integer"}},
    },
}
FAILURES = {
    "400": "a client mistake: the message names it (`code` context_length_exceeded: too long)",
    "401": "missing or wrong bearer key",
    "413": "the body is larger than the server takes",
    "503": "loading, restarting a batch loop, failed, or shutting down (Retry-After)",
    "500": "a fault of the server itself",
}


def _errors(*statuses: str) -> dict[str, Any]:
    return {
        status: {
            "description": FAILURES.get(status, status),
            "content": {"application/json": {"schema": ERROR}},
        }
        for status in statuses
    }


def _body(
    model: type[BaseModel], defs: dict[str, Any], patch: dict[str, Any] | None = None
) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    defs.update(schema.pop("$defs", {}))
    for name, extra in (patch or {}).items():
        schema["properties"][name] = {**schema["properties"][name], **extra}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def document(app: FastAPI, config: ServerConfig) -> dict[str, Any]:
    """FastAPI's document plus the hand-validated bodies and every documented status."""
    spec = get_openapi(title=app.title, version="1", routes=app.routes)
    defs: dict[str, Any] = {}
    limit = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": config.max_tokens_limit},
                       {"type": "null"}]}  # fmt: skip
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    chat["requestBody"] = _body(
        ChatRequest, defs, {"max_tokens": limit, "max_completion_tokens": limit}
    )
    chat["responses"] = {
        "200": {
            "description": "the answer, or server-sent events when `stream` is true",
            "content": {
                "application/json": {"schema": COMPLETION},
                "text/event-stream": {"schema": EVENT},
            },
        },
        "429": {
            "description": "too many requests in flight (Retry-After)",
            "content": {"application/json": {"schema": ERROR}},
        },
        "499": {
            "description": "the client went away",
            "content": {"application/json": {"schema": ERROR}},
        },
        "504": {
            "description": "past the per-request deadline",
            "content": {"application/json": {"schema": ERROR}},
        },
        **_errors("400", "401", "413", "500", "503"),
    }
    tokenize = spec["paths"]["/tokenize"]["post"]
    tokenize["requestBody"] = _body(TokenizeRequest, defs)
    tokenize["responses"] = {
        "200": {
            "description": "the chat prompt's tokens and the context they must fit",
            "content": {"application/json": {"schema": TOKENS}},
        },
        **_errors("400", "401", "413", "500", "503"),
    }
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    spec["paths"]["/health"]["get"]["responses"] = {
        "200": {"description": "serving", "content": {"application/json": {"schema": health}}},
        "503": {
            "description": "loading, restarting, failed or stopped: `status` says which",
            "content": {"application/json": {"schema": health}},
        },
    }
    spec.setdefault("components", {}).setdefault("schemas", {}).update(defs)
    return spec


def install_openapi(app: FastAPI, config: ServerConfig) -> None:
    """Serve `document()` at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, config)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace it
