"""Every route of the REST API and the webhooks has an access rule (an action, or a reason to be
open); a new endpoint without one fails here."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI

from ui.access import Action
from ui.access_routes import ROUTE_ACTIONS, message_action, unruled

pytestmark = pytest.mark.unit


def test_every_api_and_webhook_route_has_a_rule() -> None:
    from ui import api
    from ui.webhooks import chatwoot, generic

    app = FastAPI()
    for router in (api.router, generic.router, chatwoot.router):
        app.include_router(router)
    assert unruled(app) == []
    assert len(app.openapi()["paths"]) >= 5  # the check saw the included routers
    assert set(ROUTE_ACTIONS.values()) <= set(Action)


def test_a_route_without_a_rule_is_named() -> None:
    router = APIRouter()

    @router.delete("/api/v1/conversations/{conversation_id}")
    async def delete(conversation_id: str) -> None: ...

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    assert unruled(app) == ["DELETE /api/v1/conversations/{conversation_id}"]


def test_message_actions() -> None:
    assert message_action("  /forget") is Action.COMMAND
    assert message_action("hello", stream=True) is Action.STREAM
    assert message_action("a/b") is Action.SEND
