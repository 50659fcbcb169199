"""Every HTTP request's admission: the per-client rate limit, the declared size of a REST body, and
the request count by status.

Plain ASGI, not Starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`): that one runs each
request's app in a task of its own behind memory streams, about 7% of a webhook worker's Python
time under load, all of it on the event loop that acknowledges deliveries.

>>> app.add_middleware(Admission, runtime=runtime, max_body_bytes=settings.max_body_bytes)
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui.runtime import Runtime


class Admission:
    """Refuses a client over its rate limit (429) or a REST body declared too large (413) before
    the body is read; counts every answered request in `assistant_http_requests_total`."""

    def __init__(self, app: ASGIApp, *, runtime: Runtime, max_body_bytes: int) -> None:
        self.app = app
        self.runtime = runtime
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before answering

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self.runtime.metrics.inc(
                "assistant_http_requests_total", method=scope["method"], code=str(status)
            )

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        path: str = scope["path"]
        client = scope.get("client")
        verdict = self.runtime.channel.admit(path, client[0] if client else "unknown")
        if not verdict.allowed:
            return JSONResponse(
                {
                    "detail": (
                        f"too many requests from this client; try again in "
                        f"{verdict.retry_after_s} s"
                    )
                },
                status_code=429,
                headers={"Retry-After": str(verdict.retry_after_s)},
            )
        if path.startswith("/api/") and declared_length(scope) > self.max_body_bytes:
            return JSONResponse(
                {"detail": f"body larger than {self.max_body_bytes} bytes"}, status_code=413
            )
        return None


def declared_length(scope: Scope) -> int:
    """The Content-Length a client declared (0 if none or unreadable)."""
    try:
        return int(Headers(scope=scope).get("content-length") or 0)
    except ValueError:
        return 0
