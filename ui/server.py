"""One FastAPI app for every HTTP front end: web chat at /, REST under /api/v1, webhooks, health,
metrics."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import OperationalError

from dialog.locking import TurnLockTimeout
from ui import api
from ui.backend import Backend
from ui.ratelimit import RateLimits, path_group
from ui.runtime import Runtime
from ui.webhooks import chatwoot, generic
from ui.webhooks.worker import DeliveryWorkers

log = logging.getLogger(__name__)
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    sqlite3.OperationalError,
    psycopg.OperationalError,
)
"""Locked or unreachable past the bounded wait: answered 503, never 500 (the lock queue uses the
driver directly)."""


def create_app(
    components: Backend,
    *,
    web: bool = True,
    http: httpx.AsyncClient | None = None,
    assistant: Any = None,
) -> FastAPI:
    """The whole server; `web=False` leaves the Gradio chat out (API-only deployments, fast tests).

    >>> app = create_app(Components(load_settings()))
    >>> uvicorn.run(app, host="127.0.0.1", port=8080)
    """
    runtime = Runtime(components, http=http, assistant_override=assistant)
    deliveries = DeliveryWorkers(
        runtime, {generic.SOURCE: generic.SENDER, chatwoot.SOURCE: chatwoot.SENDER}
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        owned = runtime.http is None
        if owned:
            runtime.http = httpx.AsyncClient(follow_redirects=False)
        await runtime.blocking(components.warm_up)
        await deliveries.start()
        try:
            yield
        finally:
            await deliveries.stop(components.settings.shutdown_grace_s)
            await runtime.drain()
            if owned and runtime.http is not None:
                await runtime.http.aclose()
                runtime.http = None

    app = FastAPI(
        title="assistant",
        summary=(
            "Customer-support assistant: REST API, webhooks and web chat over one dialog manager."
        ),
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.runtime = runtime
    app.state.deliveries = deliveries

    s = components.settings
    limits = RateLimits(
        {
            "api": s.rate_limit_api_per_minute,
            "webhook": s.rate_limit_webhook_per_minute,
            "web": s.rate_limit_web_per_minute,
        }
    )

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Response:
        verdict = limits.check(
            request.url.path, request.client.host if request.client else "unknown"
        )
        if not verdict.allowed:
            runtime.metrics.inc(
                "assistant_rate_limited_total", path=path_group(request.url.path) or "other"
            )
            return JSONResponse(
                {
                    "detail": (
                        "too many requests from this client; "
                        f"try again in {verdict.retry_after_s} s"
                    )
                },
                status_code=429,
                headers={"Retry-After": str(verdict.retry_after_s)},
            )
        if request.url.path.startswith("/api/") and _declared_length(request) > s.max_body_bytes:
            return JSONResponse(
                {"detail": f"body larger than {s.max_body_bytes} bytes"}, status_code=413
            )
        response: Response = await call_next(request)
        runtime.metrics.inc(
            "assistant_http_requests_total", method=request.method, code=str(response.status_code)
        )
        return response

    async def database_unavailable(_: Request, err: Exception) -> Response:
        log.warning("database unavailable: %s", type(getattr(err, "orig", None) or err).__name__)
        runtime.metrics.inc("assistant_database_unavailable_total")
        return JSONResponse(
            {
                "detail": (
                    "the database is unavailable right now; nothing was lost, "
                    "please try again shortly"
                )
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for kind in DATABASE_UNAVAILABLE:
        app.add_exception_handler(kind, database_unavailable)

    @app.exception_handler(TurnLockTimeout)
    async def conversation_busy(_: Request, err: TurnLockTimeout) -> JSONResponse:
        """Another turn held the conversation past the lock timeout: try again, nothing was lost."""
        return JSONResponse(
            {"detail": f"{err}; nothing was lost, please try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        """422 without echoing the input: it may hold lone surrogates (unencodable) or secrets."""
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in err.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/healthz", tags=["ops"], summary="Liveness and what the assistant holds")
    async def healthz() -> JSONResponse:
        started = time.perf_counter()
        documents, chunks = await runtime.blocking(components.knowledge.count)
        return JSONResponse(
            {
                "status": "ok",
                "documents": documents,
                "chunks": chunks,
                "db_ms": round(1000 * (time.perf_counter() - started), 1),
            }
        )

    @app.get(
        "/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse
    )
    async def metrics() -> PlainTextResponse:
        text = runtime.metrics.render() + await deliveries.metrics()
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    app.include_router(api.router)
    app.include_router(generic.router)
    app.include_router(chatwoot.router)
    if web:
        from ui.web import mount_web_chat

        mount_web_chat(app, runtime)
    return app


def _declared_length(request: Request) -> int:
    """The Content-Length a client declared (0 if none or unreadable)."""
    try:
        return int(request.headers.get("content-length") or 0)
    except ValueError:
        return 0
