"""One FastAPI app for every HTTP front end: web chat at /, REST under /api/v1, webhooks, health,
metrics."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from ui import api
from ui.access_http import install_access
from ui.admission import Admission
from ui.backend import Backend
from ui.channel.failures import DATABASE_UNAVAILABLE, KNOWN
from ui.runtime import Runtime
from ui.security import install_security
from ui.webhooks import chatwoot, generic
from ui.webhooks.worker import DeliveryWorkers

log = logging.getLogger(__name__)


def create_app(
    components: Backend,
    *,
    web: bool = True,
    http: httpx.AsyncClient | None = None,
    freeze_warm_heap: bool = False,
) -> FastAPI:
    """The whole server; `web=False` leaves the Gradio chat out (API-only deployments, fast tests);
    `freeze_warm_heap` (a server process of its own) takes the warmed-up heap out of the cyclic
    garbage collector's scans (`freeze_long_lived`).

    >>> app = create_app(Components(load_settings()))
    >>> uvicorn.run(app, host="127.0.0.1", port=8080)
    """
    runtime = Runtime(components, http=http)
    deliveries = DeliveryWorkers(
        runtime, {generic.SOURCE: generic.SENDER, chatwoot.SOURCE: chatwoot.SENDER}
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        owned = runtime.http is None
        if owned:
            runtime.http = httpx.AsyncClient(follow_redirects=False)
        await runtime.blocking(components.warm_up)
        if freeze_warm_heap:
            freeze_long_lived()
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
    access = install_access(app, components.database.session, handed_off=runtime.handed_off)
    runtime.guard(access)  # every front end's channel call now passes the policy
    install_security(app, components.settings)

    s = components.settings

    app.add_middleware(Admission, runtime=runtime, max_body_bytes=s.max_body_bytes)

    async def failed(_: Request, err: Exception) -> Response:
        """Busy conversation, database away, unknown conversation, access refused…: the channel's
        one mapping (a 503 says nothing was lost and when to retry)."""
        if isinstance(err, DATABASE_UNAVAILABLE):
            orig = getattr(err, "orig", None) or err
            log.warning("database unavailable: %s", type(orig).__name__)
        return api.failure_response(runtime.channel.failure(err))

    for kind in KNOWN:
        app.add_exception_handler(kind, failed)

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
        from ui.admin import mount_admin
        from ui.web import mount_web_chat

        mount_admin(app, runtime)  # before `/`, which would take /admin too
        mount_web_chat(app, runtime)
    return app


def freeze_long_lived() -> None:
    """Move everything alive now (the warmed-up models, indexes and libraries, ~850k objects) to
    the collector's permanent generation: a full collection scanned them all, holding the GIL
    ~0.5 s and stalling every request of the process (a 683 ms acknowledgement in one benchmark
    run). Objects freed by their reference count still go; only cycles among them would stay."""
    gc.collect()
    gc.freeze()
