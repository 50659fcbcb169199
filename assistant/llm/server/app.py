"""The FastAPI app: `/v1/chat/completions`, `/v1/models`, `/tokenize`, `/health`, `/metrics`.

A client's mistake is a 400 (413 for an oversized body) in OpenAI's error shape; a 5xx is only the
server's own fault, always JSON: 503 while loading, restarting a batch loop or failed, 504 past the
deadline, 500 for a bug.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from assistant.llm.server.batching import BatchLost, Engine, Sampling
from assistant.llm.server.config import ServerConfig
from assistant.llm.server.jobs import DeadlineExceeded, GenerationFailed, Job
from assistant.llm.server.metrics import Metrics
from assistant.llm.server.openapi import install_openapi
from assistant.llm.server.prompts import forced_tool_schema, parse_tool_calls, prompt_ids
from assistant.llm.server.repetition import Penalties
from assistant.llm.server.schemas import (
    BadRequest,
    ChatRequest,
    ContextTooLong,
    TokenizeRequest,
    parse_body,
)

log = logging.getLogger(__name__)


def error(
    status: int,
    message: str,
    kind: str,
    headers: dict[str, str] | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
) -> JSONResponse:
    """OpenAI's error shape, so every client library shows the message."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def bad_request(err: BadRequest) -> JSONResponse:
    return error(400, str(err), "invalid_request_error", code=err.code, param=err.param)


class TooLarge(Exception):
    """The body is bigger than `max_body_bytes`."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing to buffer more than `limit` bytes whatever Content-Length says."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Admission:
    """A counter of admitted requests; past `limit`, callers get 429 instead of an unbounded
    queue."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit, self.count, self.metrics = limit, 0, metrics

    def try_enter(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1
        self.metrics.in_flight.inc()
        self.metrics.queue_depth.inc()
        return True

    def first_token(self) -> None:
        self.metrics.queue_depth.dec()

    def leave(self, waited: bool) -> None:
        self.count -= 1
        self.metrics.in_flight.dec()
        if waited:
            self.metrics.queue_depth.dec()


def unavailable(engine: Engine) -> JSONResponse | None:
    """503 (with Retry-After) unless the engine serves now."""
    state = engine.status()
    if state == "ok":
        return None
    reasons = {
        "loading": "the model is still loading",
        "restarting": "a batch loop failed and is being restarted; please retry",
        "failed": f"the model server failed: {engine.failure}",
        "stopped": "the model server is shutting down",
    }
    return error(503, reasons.get(state, state), "unavailable", {"Retry-After": "5"})


def create_app(engine: Engine, config: ServerConfig) -> FastAPI:
    """Routes over a started (or starting) engine; `/health` is 503 unless requests can be
    served."""
    app = FastAPI(title="assistant LM server", docs_url=None, redoc_url=None)
    metrics = Metrics(lambda: int(getattr(engine, "restarts", 0)))
    admission = Admission(config.max_pending, metrics)
    app.state.engine, app.state.metrics, app.state.admission = engine, metrics, admission

    @app.middleware("http")
    async def bearer(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if config.api_key and request.url.path.startswith(("/v1/", "/tokenize")):
            if request.headers.get("authorization") != f"Bearer {config.api_key}":
                return error(401, "missing or wrong bearer key", "authentication_error")
        return await call_next(request)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> JSONResponse:
        log.exception("LM server fault on %s", request.url.path, exc_info=exc)
        return error(500, f"internal error ({type(exc).__name__})", "server_error")

    @app.get("/health")
    def health() -> JSONResponse:
        state = engine.status()
        if state != "ok":
            body: dict[str, Any] = {"status": state}
            if state == "failed":
                body["error"] = engine.failure
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok", "batching": engine.batching, "device": engine.device})

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        card: dict[str, Any] = {
            "id": config.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "assistant",
        }
        if engine.ready.is_set():
            card["max_model_len"] = engine.context_tokens
        return {"object": "list", "data": [card]}

    @app.post("/tokenize")
    async def tokenize(request: Request) -> Response:
        return await _tokenize(request, engine, config)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        try:
            response = await _chat(request, engine, config, admission, metrics)
        except Exception as err:  # a bug of ours: still JSON, still counted
            log.exception("LM server fault")
            response = error(500, f"internal error ({type(err).__name__})", "server_error")
        metrics.requests.labels(status=str(response.status_code)).inc()
        return response

    install_openapi(app, config)
    return app


async def _tokenize(request: Request, engine: Engine, config: ServerConfig) -> Response:
    try:
        body = parse_body(await read_body(request, config.max_body_bytes), TokenizeRequest)
    except TooLarge:
        return error(
            413, f"the body exceeds {config.max_body_bytes} bytes", "invalid_request_error"
        )
    except BadRequest as err:
        return bad_request(err)
    if (refusal := unavailable(engine)) is not None:
        return refusal
    tools = [t.model_dump(exclude_none=True) for t in body.tools] if body.tools else None
    try:
        ids = await asyncio.to_thread(prompt_ids, engine.tokenizer, body.message_dicts(), tools)
    except BadRequest as err:
        return bad_request(err)
    return JSONResponse({"count": len(ids), "max_model_len": engine.context_tokens, "tokens": ids})


async def _chat(
    request: Request, engine: Engine, config: ServerConfig, admission: Admission, metrics: Metrics
) -> Response:
    try:
        chat = parse_body(await read_body(request, config.max_body_bytes), ChatRequest)
        chat.check_supported()
        if (refusal := unavailable(engine)) is not None:
            return refusal
        job = await asyncio.to_thread(_job, chat, engine, config)
    except TooLarge:
        return error(
            413, f"the body exceeds {config.max_body_bytes} bytes", "invalid_request_error"
        )
    except BadRequest as err:
        return bad_request(err)
    if not admission.try_enter():
        return error(
            429,
            f"server busy: {admission.limit} requests in flight",
            "overloaded",
            {"Retry-After": "1"},
        )
    run = Run(chat, job, admission, metrics, config.model_name)
    if chat.stream:
        return StreamingResponse(run.sse(), media_type="text/event-stream")
    return await run.whole(request)


def _penalties(chat: ChatRequest, default: Penalties, constrained: bool) -> Penalties:
    """The request's penalties over the server's defaults; a grammar-constrained answer (JSON that
    repeats keys by design, values copied from the prompt) gets only what the client asked for."""
    if constrained:
        default = Penalties()
    return Penalties(
        repetition=chat.repetition_penalty or default.repetition,
        frequency=chat.frequency_penalty or 0.0,
        presence=chat.presence_penalty or 0.0,
        loop_ngram=default.loop_ngram,
    )


def _job(chat: ChatRequest, engine: Engine, config: ServerConfig) -> Job:
    """Validate against the model and build the generation; raises BadRequest (ContextTooLong
    when prompt + completion cannot fit, before anything is scheduled)."""
    tools = chat.tool_dicts()
    schema = chat.response_format.schema_or_none() if chat.response_format else None
    choice = chat.choice()
    if tools and choice is not None and choice != "auto":
        schema = forced_tool_schema(tools, choice)
    if schema is not None:
        engine.grammars.processor(schema)  # compile now: a bad schema is a 400, not a 500 later
    ids = prompt_ids(engine.tokenizer, chat.message_dicts(), tools)
    budget = chat.token_budget(config.max_tokens_limit)
    room = engine.context_tokens - len(ids)
    if not (chat.max_tokens or chat.max_completion_tokens) and 0 < room < budget:
        budget = room  # no budget asked for: answer in what the context leaves
    if len(ids) + budget > engine.context_tokens:
        raise ContextTooLong(len(ids), budget, engine.context_tokens)
    penalties = _penalties(chat, engine.penalties, schema is not None)
    sampling = Sampling(budget, chat.temperature, chat.top_p, chat.seed, penalties)
    return Job(
        engine,
        ids,
        sampling,
        stop=chat.stop_list(),
        deadline_s=config.request_timeout_s,
        schema=schema,
    )


class Run:
    """One admitted request turned into a whole reply or an SSE stream, and accounted for."""

    def __init__(
        self, chat: ChatRequest, job: Job, admission: Admission, metrics: Metrics, model: str
    ) -> None:
        self.chat, self.job, self.admission, self.metrics, self.model = (
            chat,
            job,
            admission,
            metrics,
            model,
        )
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.tools = chat.tool_dicts()
        self._waiting = True
        self._finished = False

    async def _deltas(self) -> AsyncIterator[str]:
        try:
            async for delta in self.job.deltas():
                self._first()
                yield delta
        finally:
            self._done()

    def _first(self) -> None:
        if self._waiting:
            self._waiting = False
            self.admission.first_token()
            self.metrics.ttft.observe(time.perf_counter() - self.job.started)

    def _done(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.admission.leave(self._waiting)
        self._waiting = False
        job = self.job
        self.metrics.tokens.labels(kind="prompt").inc(len(job.ids))
        self.metrics.tokens.labels(kind="completion").inc(job.completion_tokens)
        if job.first_token_at is not None and job.completion_tokens > 1:
            elapsed = time.perf_counter() - job.first_token_at
            if elapsed > 0:
                self.metrics.rate.observe((job.completion_tokens - 1) / elapsed)

    def usage(self) -> dict[str, int]:
        prompt, completion = len(self.job.ids), self.job.completion_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def message(self) -> tuple[dict[str, Any], str]:
        """The assistant message and finish reason; tool calls when the text is one."""
        text, reason = self.job.text, self.job.finish_reason
        calls = parse_tool_calls(text, self.tools) if self.tools else []
        if calls:
            return {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"
        return {"role": "assistant", "content": text}, reason

    async def whole(self, request: Request) -> Response:
        """Run to the end, cancelling at once if the client goes away."""
        task = asyncio.ensure_future(self._collect())
        while not task.done():
            await asyncio.wait([task], timeout=0.25)
            if not task.done() and await request.is_disconnected():
                task.cancel()
                self._done()
                return error(499, "client disconnected", "cancelled")
        try:
            task.result()
        except DeadlineExceeded as err:
            return error(504, str(err), "timeout")
        except BatchLost as err:
            return error(503, str(err), "unavailable", {"Retry-After": "1"})
        except GenerationFailed as err:
            return error(500, f"generation failed: {err}", "server_error")
        message, reason = self.message()
        choice = {"index": 0, "message": message, "finish_reason": reason, "logprobs": None}
        body = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(),
        }
        return JSONResponse(body)

    async def _collect(self) -> None:
        async for _ in self._deltas():
            pass

    def _chunk(self, delta: dict[str, Any], reason: str | None, usage: bool = False) -> str:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
        }
        if usage:
            chunk["usage"] = self.usage()
        return f"data: {json.dumps(chunk)}\n\n"

    async def sse(self) -> AsyncIterator[str]:
        """Server-sent events; with tools the text is held back until it is known whether it is a
        call. A failure after the headers went out is an error event, then [DONE]."""
        yield self._chunk({"role": "assistant", "content": ""}, None)
        try:
            async for delta in self._deltas():
                if not self.tools:
                    yield self._chunk({"content": delta}, None)
        except Exception as err:  # noqa: BLE001 - the status line is sent: say it in the stream
            kinds = {DeadlineExceeded: "timeout", BatchLost: "unavailable"}
            kind = kinds.get(type(err), "server_error")
            if kind == "server_error" and not isinstance(err, GenerationFailed):
                log.exception("LM server fault in a stream")
            yield f"data: {json.dumps({'error': {'message': str(err), 'type': kind}})}\n\n"
            yield "data: [DONE]\n\n"
            return
        message, reason = self.message()
        if self.tools:
            whole: dict[str, Any] = (
                {"tool_calls": [dict(c, index=i) for i, c in enumerate(message["tool_calls"])]}
                if message.get("tool_calls")
                else {"content": message["content"]}
            )
            yield self._chunk(whole, None)
        yield self._chunk({}, reason, usage=True)
        yield "data: [DONE]\n\n"
