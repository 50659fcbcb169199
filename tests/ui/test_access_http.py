"""The FastAPI side of access control on a small app: bearer keys into callers, conversation
tokens, and the policy's 401/403/404 from one call per route."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from assistant_core.db import Database
from ui.access import Action, Decision, Principal, Role, scoped_conversation_id
from ui.access_http import AccessControl, caller_of, install_access, require, token_of
from ui.access_owners import TOKEN_HEADER

pytestmark = pytest.mark.integration
Caller = Annotated[Principal, Depends(caller_of)]
Token = Annotated[str | None, Depends(token_of)]
HANDED_OFF: set[str] = set()


def small_app(database: Database) -> tuple[FastAPI, AccessControl]:
    """Routes shaped like the REST API's, each asking the policy once."""
    app = FastAPI()
    access = install_access(app, database.session, handed_off=lambda cid: cid in HANDED_OFF)

    @app.post("/api/v1/conversations/{client_id}")
    async def start(client_id: str, caller: Caller) -> dict[str, str]:
        cid = scoped_conversation_id("api", caller, client_id)
        await access.authorize(caller, Action.START, cid, None)
        return {"conversation_id": cid, "token": access.owners.bind(cid, "api", caller)}

    @app.get("/api/v1/conversations/{cid}")
    async def read(cid: str, caller: Caller, token: Token) -> dict[str, str]:
        await access.authorize(caller, Action.READ, cid, token)
        return {"conversation_id": cid, "who": caller.subject}

    @app.post("/api/v1/conversations/{cid}/hand-back")
    async def hand_back(cid: str, caller: Caller, token: Token) -> dict[str, str]:
        await access.authorize(caller, Action.HAND_BACK, cid, token)
        return {}

    @app.get("/api/v1/admin/keys")
    async def keys(caller: Annotated[Principal, Depends(require(Role.ADMIN))]) -> list[str]:
        return [k.id for k in access.keys.list()]

    return app, access


@pytest.fixture
def served(database: Database) -> Iterator[tuple[TestClient, AccessControl]]:
    app, access = small_app(database)
    with TestClient(app) as client:
        yield client, access


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_without_any_key_callers_are_anonymous_customers(
    served: tuple[TestClient, AccessControl],
) -> None:
    client, _ = served
    started = client.post("/api/v1/conversations/c1").json()
    assert started["conversation_id"] == "api:anonymous:c1"
    token = {TOKEN_HEADER: started["token"]}
    assert (
        client.get(f"/api/v1/conversations/{started['conversation_id']}", headers=token).json()[
            "who"
        ]
        == "anonymous"
    )
    assert client.get(f"/api/v1/conversations/{started['conversation_id']}").status_code == 404
    assert client.get("/api/v1/admin/keys").status_code == 403


def test_once_a_key_exists_every_caller_needs_one(
    served: tuple[TestClient, AccessControl],
) -> None:
    client, access = served
    secret = access.keys.create(Role.CUSTOMER, "shop").secret
    refused = client.post("/api/v1/conversations/c1")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in refused.json()["detail"]
    for header in [f"Bearer {secret}x", f"Basic {secret}", "Bearer", secret]:
        response = client.post("/api/v1/conversations/c1", headers={"Authorization": header})
        assert response.status_code == 401, header
    assert client.post("/api/v1/conversations/c1", headers=bearer(secret)).status_code == 200
    assert client.get("/api/v1/admin/keys").status_code == 401


def test_conversations_belong_to_their_key_and_token(
    served: tuple[TestClient, AccessControl],
) -> None:
    client, access = served
    alice = access.keys.create(Role.CUSTOMER, "alice").secret
    bob = access.keys.create(Role.CUSTOMER, "bob").secret
    agent = access.keys.create(Role.AGENT, "desk").secret
    admin = access.keys.create(Role.ADMIN, "ops").secret
    started = client.post("/api/v1/conversations/order-7", headers=bearer(alice)).json()
    cid, token = started["conversation_id"], {TOKEN_HEADER: started["token"]}
    url = f"/api/v1/conversations/{cid}"

    def status(secret: str, path: str = url, method: str = "GET", **headers: str) -> int:
        return client.request(method, path, headers=bearer(secret) | headers).status_code

    assert status(alice, **token) == 200
    assert status(alice) == 404  # no token
    assert status(bob, **token) == 404  # a leaked token without the key
    assert status(bob, "/api/v1/conversations/nonexistent") == 404  # indistinguishable
    assert status(agent) == 403
    assert status(admin) == 200
    assert status(alice, url + "/hand-back", "POST", **token) == 403
    assert status(agent, url + "/hand-back", "POST") == 403
    HANDED_OFF.add(cid)
    try:
        assert status(agent) == 200 and status(agent, url + "/hand-back", "POST") == 200
    finally:
        HANDED_OFF.discard(cid)
    # the same client-chosen id under bob's key is another conversation
    assert client.post("/api/v1/conversations/order-7", headers=bearer(bob)).status_code == 200
    assert status(alice, **token) == 200
    assert status(admin, "/api/v1/admin/keys") == 200
    assert status(agent, "/api/v1/admin/keys") == 403


def test_a_revoked_key_stops_at_the_next_request(
    served: tuple[TestClient, AccessControl],
) -> None:
    client, access = served
    created = access.keys.create(Role.ADMIN, "ops")
    assert client.get("/api/v1/admin/keys", headers=bearer(created.secret)).status_code == 200
    access.keys.revoke(created.key.id)
    assert client.get("/api/v1/admin/keys", headers=bearer(created.secret)).status_code == 401


def test_an_expired_key_is_refused_like_a_revoked_one(
    served: tuple[TestClient, AccessControl],
) -> None:
    client, access = served
    expired = access.keys.create(Role.ADMIN, "old", expires_at=datetime(2001, 1, 1, tzinfo=UTC))
    live = access.keys.create(Role.ADMIN, "ops", expires_at=datetime(2999, 1, 1, tzinfo=UTC))
    revoked = access.keys.create(Role.ADMIN, "gone")
    access.keys.revoke(revoked.key.id)
    assert client.get("/api/v1/admin/keys", headers=bearer(live.secret)).status_code == 200
    refused = client.get("/api/v1/admin/keys", headers=bearer(expired.secret))
    like = client.get("/api/v1/admin/keys", headers=bearer(revoked.secret))
    assert refused.status_code == like.status_code == 401
    assert refused.headers["www-authenticate"] == like.headers["www-authenticate"] == "Bearer"
    assert refused.json() == like.json()
    assert "expired" in refused.json()["detail"]
    # an expired key does not make its holder an anonymous customer either
    assert (
        client.post("/api/v1/conversations/c1", headers=bearer(expired.secret)).status_code == 401
    )


class Denied(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def test_the_channel_hook_reads_the_token_from_the_caller(database: Database) -> None:
    access = AccessControl(database.session)
    authorize = access.hook(Denied)
    web = Principal(Role.CUSTOMER, "web")
    token = access.owners.bind("web:web:c1", "web", web)
    authorize(web.with_token(token), Action.READ, "web:web:c1")
    authorize(web, Action.START, "web:web:new")
    authorize(web, Action.START, None)
    for caller, action, status in [
        (web, Action.READ, 404),
        (web.with_token(token), Action.HAND_BACK, 403),
        (web.with_token(token), Action.UPLOAD, 403),
        (Principal(None), Action.READ, 401),
    ]:
        with pytest.raises(Denied) as denied:
            authorize(caller, action, None if action is Action.UPLOAD else "web:web:c1")
        assert denied.value.status == status
    assert token not in repr(web.with_token(token))
    assert web.with_token(token) == web


def test_open_scopes_binds_once_and_returns_the_token_once(database: Database) -> None:
    access = AccessControl(database.session)
    alice = access.keys.create(Role.CUSTOMER, "alice").key.principal
    bob = access.keys.create(Role.CUSTOMER, "bob").key.principal
    fresh = access.open(alice, "api", None)
    assert fresh.decision.allowed and fresh.token is not None
    assert fresh.conversation_id.startswith(f"api:{alice.key_id}:")
    named = access.open(alice, "api", "order-7")
    assert named.conversation_id == f"api:{alice.key_id}:order-7" and named.token is not None
    owned = alice.with_token(named.token)
    for client_id in ["order-7", named.conversation_id]:  # its own id or the one returned
        again = access.open(owned, "api", client_id)
        assert (again.conversation_id, again.decision, again.token) == (
            named.conversation_id,
            Decision.ALLOW,
            None,
        )
    assert access.open(alice, "api", "order-7").decision is Decision.NOT_FOUND  # no token
    theirs = access.open(bob.with_token(named.token), "api", named.conversation_id)
    assert theirs.conversation_id != named.conversation_id and theirs.token is not None
    assert access.open(Principal(None), "api", "x").decision is Decision.UNAUTHENTICATED
    assert access.decide(owned, Action.READ, named.conversation_id) is Decision.ALLOW
    web = Principal(Role.CUSTOMER, "web")
    assert access.open(web, "web", named.conversation_id).conversation_id.startswith("web:web:")
