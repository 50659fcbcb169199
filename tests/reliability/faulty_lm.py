"""An OpenAI-compatible chat server on loopback whose faults a test switches on: slow, dying
mid-stream, down."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class Faults:
    """What the server does to the next requests."""

    mode: str = "ok"  # ok | slow | die_mid_stream | overloaded | echo
    delay_s: float = 5.0
    answer: str = "Standard shipping costs 4.95 euros."
    requests: list[dict[str, Any]] = field(default_factory=list)
    gate: threading.Event | None = None  # when set up, answers wait (up to 120 s) until it opens


def _chunk(text: str | None, finish: str | None = None) -> str:
    body = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "faulty",
        "choices": [
            {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        ],
    }
    return f"data: {json.dumps(body)}\n\n"


def faulty_app(faults: Faults) -> FastAPI:
    """The server; `faults.mode` decides how it misbehaves."""
    app = FastAPI()

    @app.post("/v1/chat/completions", response_model=None)
    async def completions(request: Request) -> Any:
        body = await request.json()
        faults.requests.append(body)
        if faults.gate is not None:
            deadline = time.monotonic() + 120
            while not faults.gate.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        if faults.mode == "overloaded":
            return JSONResponse(
                {"error": {"message": "busy"}}, status_code=429, headers={"Retry-After": "1"}
            )
        if faults.mode in {"slow", "echo"}:
            await asyncio.sleep(faults.delay_s)
        answer = faults.answer
        if faults.mode == "echo":
            tags = re.findall(r"\[[^\[\]]+ t-\d+\]", str(body["messages"][-1]["content"]))
            answer = f"Echo {tags[-1] if tags else '[none]'}"
        words = [w + " " for w in answer.split()]
        if not body.get("stream"):
            return {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "faulty",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": answer},
                    }
                ],
                "usage": {
                    "prompt_tokens": 1,
                    "completion_tokens": len(words),
                    "total_tokens": 1 + len(words),
                },
            }

        async def events() -> AsyncIterator[str]:
            for number, word in enumerate(words):
                if faults.mode == "die_mid_stream" and number == 2:
                    raise ConnectionResetError("killed mid-stream")
                yield _chunk(word)
            yield _chunk(None, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
