"""Browser-facing hardening: CORS for the REST API only where configured, who may frame the
pages, no MIME sniffing, no referrer leaks.

>>> install_security(app, settings)  # after the routes, before serving
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant_core.settings import Settings
from ui.access_owners import TOKEN_HEADER

API_PREFIX = "/api/"


def origins(value: str) -> list[str]:
    """A comma-separated setting as a list of origins, blanks dropped."""
    return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]


def frame_ancestors_directive(value: str) -> str:
    """`frame-ancestors 'self' https://a.example` from the setting; none set: this server only."""
    return " ".join(["frame-ancestors", "'self'", *origins(value)])


class SecurityHeaders:
    """Adds the hardening headers to every HTTP response, keeping a stricter one a route set."""

    def __init__(self, app: ASGIApp, *, frame_ancestors: str) -> None:
        self.app = app
        self.headers = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        self.frame_ancestors = frame_ancestors
        self.same_origin_only = frame_ancestors == frame_ancestors_directive("")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._add(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _add(self, headers: MutableHeaders) -> None:
        for name, value in self.headers.items():
            headers.setdefault(name, value)
        policy = headers.get("content-security-policy")
        if policy is None:
            headers["Content-Security-Policy"] = self.frame_ancestors
        elif "frame-ancestors" not in policy:
            headers["Content-Security-Policy"] = f"{policy}; {self.frame_ancestors}"
        if self.same_origin_only:
            headers.setdefault("X-Frame-Options", "SAMEORIGIN")  # browsers without CSP level 2


class ApiCors:
    """CORS on the REST API only (the web pages and webhooks never answer other origins)."""

    def __init__(self, app: ASGIApp, *, allow: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=allow,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", TOKEN_HEADER],
            expose_headers=[TOKEN_HEADER, "Retry-After"],
            allow_credentials=False,  # bearer keys, never cookies, cross-origin
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        on_api = scope["type"] == "http" and scope.get("path", "").startswith(API_PREFIX)
        await (self.cors if on_api else self.app)(scope, receive, send)


def install_security(app: Starlette, settings: Settings) -> None:
    """Add the middleware to a FastAPI/Starlette app; CORS only when origins are configured."""
    allow = origins(settings.cors_origins)
    if allow:
        app.add_middleware(ApiCors, allow=allow)
    directive = frame_ancestors_directive(settings.frame_ancestors)
    app.add_middleware(SecurityHeaders, frame_ancestors=directive)


__all__ = ["ApiCors", "SecurityHeaders", "frame_ancestors_directive", "install_security", "origins"]
