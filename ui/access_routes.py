"""Every HTTP route and the action it performs, so an access-matrix test can be generated from
the app's routes and a new endpoint without a rule fails it.

>>> ROUTE_ACTIONS[("GET", "/api/v1/conversations/{conversation_id}")]
<Action.READ: 'read'>
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from ui.access import Action

ROUTE_ACTIONS: dict[tuple[str, str], Action] = {
    ("POST", "/api/v1/messages"): Action.SEND,
    ("POST", "/api/v1/messages/stream"): Action.STREAM,
    ("GET", "/api/v1/conversations/{conversation_id}"): Action.READ,
    ("GET", "/api/v1/conversations/{conversation_id}/export"): Action.EXPORT,
    ("POST", "/api/v1/conversations/{conversation_id}/feedback"): Action.FEEDBACK,
}
"""REST routes the policy guards; a message's action is refined by `message_action`."""
OPEN_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness for load balancers; counts only",
    ("GET", "/metrics"): "Prometheus counters; no conversation content",
    ("GET", "/docs"): "the OpenAPI page",
    ("GET", "/docs/oauth2-redirect"): "part of the OpenAPI page",
    ("GET", "/openapi.json"): "the API's description",
    ("GET", "/redoc"): "the OpenAPI page (FastAPI's default; the server turns it off)",
    ("POST", "/webhooks/generic"): "signed (HMAC): the webhook role",
    ("POST", "/webhooks/chatwoot"): "signed (HMAC): the webhook role",
    ("GET", "/admin"): "a redirect to /admin/, whose Gradio app asks for ASSISTANT_ADMIN_AUTH",
}
"""Routes outside the key policy, each with why."""


def message_action(text: str, *, stream: bool = False) -> Action:
    """What a posted message does: a slash command, or a message (streamed or whole)."""
    if text.lstrip().startswith("/"):
        return Action.COMMAND
    return Action.STREAM if stream else Action.SEND


def unruled(app: FastAPI) -> list[str]:
    """`METHOD path` of every route with neither an action nor a reason to be open: the routes the
    OpenAPI schema describes (included routers too) and the app's own plain routes."""
    found: set[tuple[str, str]] = set()
    for path, operations in app.openapi().get("paths", {}).items():
        found |= {(method.upper(), path) for method in operations}
    for route in app.routes:
        if isinstance(route, Route):  # mounts (the web pages) are ruled by their own handlers
            found |= {(method, route.path) for method in route.methods or set()}
    ruled = ROUTE_ACTIONS.keys() | OPEN_ROUTES.keys()
    return [f"{m} {p}" for m, p in sorted(found - ruled) if m not in {"HEAD", "OPTIONS"}]


__all__ = ["OPEN_ROUTES", "ROUTE_ACTIONS", "message_action", "unruled"]
