"""The access matrix: every REST endpoint x every role x own / another's / a handed-off / a webhook
conversation -> the status the policy gives, against the real app on SQLite and PostgreSQL. The
routes come from the app's OpenAPI description, so an endpoint without a rule (or without a
request here) fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.wiring import Components
from assistant_core.settings import Settings
from dialog.messages import Message
from tests.fakes import FakeChatModel
from tests.ui.conftest import SECRET, TOKEN_HEADER
from ui.access import Action, Decision, Relation, Role, Target, decide
from ui.access_http import AccessControl
from ui.access_routes import OPEN_ROUTES, ROUTE_ACTIONS, unruled
from ui.channel import webhook_caller
from ui.server import create_app

pytestmark = pytest.mark.unit
ROLES: list[str] = ["none", "customer A", "customer B", "agent", "admin"]
ROLE_OF: dict[str, Role | None] = {
    "none": None,
    "customer A": Role.CUSTOMER,
    "customer B": Role.CUSTOMER,
    "agent": Role.AGENT,
    "admin": Role.ADMIN,
}
TARGETS = ["own", "another's", "handed off", "webhook"]
WEBHOOK_ID = "wh-matrix-1"


@dataclass
class Party:
    """One caller of the matrix: its key (none for "none") and its own conversation."""

    role: str
    headers: dict[str, str]
    key_id: str = ""
    conversation_id: str = ""
    token: str = ""


@dataclass
class World:
    """The app with its callers and conversations, set up once per database."""

    client: TestClient
    access: AccessControl
    parties: dict[str, Party]
    handed_off: Party  # customer B's second conversation, handed to a person

    def target(self, role: str, kind: str) -> tuple[str, str]:
        """(conversation id, token to send) of `kind` as seen by `role`."""
        if kind == "own":
            party = self.parties["customer A" if role == "none" else role]
            return party.conversation_id, party.token if role != "none" else ""
        if kind == "another's":
            other = self.parties["customer B" if role == "customer A" else "customer A"]
            return other.conversation_id, ""
        if kind == "handed off":
            if role == "customer B":  # its own: use customer A's handed-off stand-in instead
                return self.parties["customer A"].conversation_id, ""
            return self.handed_off.conversation_id, ""
        return WEBHOOK_ID, ""


def relation(role: str, kind: str) -> Target:
    """What the target is to the caller, in the policy's words."""
    if kind == "own" and role != "none":
        return Target(Relation.OWN)
    if kind == "webhook":
        return Target(Relation.WEBHOOK)
    return Target(Relation.OTHER, handed_off=kind == "handed off" and role != "customer B")


@pytest.fixture(params=["sqlite", "postgresql"])
def ui_settings(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The matrix on both databases the stores run on (skipped where no PostgreSQL answers)."""
    monkeypatch.setenv("ASSISTANT_WEBHOOK_SECRET", SECRET)
    if request.param == "postgresql":
        monkeypatch.setenv("ASSISTANT_DATABASE_URL", request.getfixturevalue("postgres_url"))
    settings = Settings()
    assert settings.database_url.startswith(str(request.param))
    return settings


@pytest.fixture
def model() -> FakeChatModel:
    return FakeChatModel(default="Blenders carry a two year warranty.")


@pytest.fixture
def world(components: Components) -> Iterator[World]:
    components.settings.rate_limit_api_per_minute = 10_000  # one test client makes every call
    app = create_app(components, web=False)
    with TestClient(app) as client:
        access: AccessControl = app.state.access
        parties = {"none": Party("none", {})}
        for role in ROLES[1:]:
            key = access.keys.create(ROLE_OF[role] or Role.CUSTOMER, role)
            bearer = {"Authorization": f"Bearer {key.secret}"}
            parties[role] = Party(role, bearer, key.key.id)
            parties[role].conversation_id, parties[role].token = _start(client, parties[role])
        handed = Party("customer B", parties["customer B"].headers)
        handed.conversation_id, handed.token = _start(client, handed)
        _post(client, handed, "/handoff", handed.conversation_id, handed.token)
        assert components.assistant.state(handed.conversation_id).handoff
        app.state.runtime.channel.run(
            webhook_caller("generic"), Message("blender warranty", WEBHOOK_ID, channel="webhook")
        )
        yield World(client, access, parties, handed)


def _start(client: TestClient, party: Party) -> tuple[str, str]:
    response = _post(client, party, "blender warranty", None, "")
    assert response.status_code == 200, response.text
    return response.json()["conversation_id"], response.headers[TOKEN_HEADER]


def _post(
    client: TestClient, party: Party, text: str, cid: str | None, token: str
) -> httpx.Response:
    body: dict[str, Any] = {"text": text, **({"conversation_id": cid} if cid else {})}
    headers = {**party.headers, **({TOKEN_HEADER: token} if token else {})}
    return client.post("/api/v1/messages", json=body, headers=headers)


Request = Callable[[TestClient, dict[str, str], str], httpx.Response]
"""How to call one route on a conversation id with the given headers."""
REQUESTS: dict[tuple[str, str], list[tuple[Action, Request]]] = {
    ("POST", "/api/v1/messages"): [
        (
            Action.SEND,
            lambda c, h, cid: c.post("/api/v1/messages", json=_msg("hi", cid), headers=h),
        ),
        (
            Action.COMMAND,
            lambda c, h, cid: c.post("/api/v1/messages", json=_msg("/help", cid), headers=h),
        ),
    ],
    ("POST", "/api/v1/messages/stream"): [
        (
            Action.STREAM,
            lambda c, h, cid: c.post("/api/v1/messages/stream", json=_msg("hi", cid), headers=h),
        )
    ],
    ("GET", "/api/v1/conversations/{conversation_id}"): [
        (Action.READ, lambda c, h, cid: c.get(f"/api/v1/conversations/{cid}", headers=h))
    ],
    ("GET", "/api/v1/conversations/{conversation_id}/export"): [
        (Action.EXPORT, lambda c, h, cid: c.get(f"/api/v1/conversations/{cid}/export", headers=h))
    ],
    ("POST", "/api/v1/conversations/{conversation_id}/feedback"): [
        (
            Action.FEEDBACK,
            lambda c, h, cid: c.post(
                f"/api/v1/conversations/{cid}/feedback", json={"positive": True}, headers=h
            ),
        )
    ],
}
"""One request per action each REST route can perform; a route missing here fails the test."""


def _msg(text: str, cid: str) -> dict[str, str]:
    return {"text": text, "conversation_id": cid}


def expected(role: str, action: Action, kind: str) -> Decision:
    """The policy's answer. A customer's write names ids in its own namespace, so another's or a
    webhook's id starts a new conversation of its own: allowed, and the target is untouched."""
    role_ = ROLE_OF[role]
    target = relation(role, kind)
    rescoped = role_ is Role.CUSTOMER and target.relation is not Relation.OWN
    if action in {Action.SEND, Action.STREAM, Action.COMMAND} and rescoped:
        target = Target(Relation.ABSENT)
    return decide(role_, action, target)


def test_every_route_has_a_rule_and_a_request(components: Components) -> None:
    app = create_app(components, web=False)
    assert unruled(app) == [], "every route needs an action (access_routes) or a reason to be open"
    api_paths = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith("/api/")
    }
    assert api_paths == set(ROUTE_ACTIONS), "the REST routes are exactly the ruled ones"
    assert set(REQUESTS) == set(ROUTE_ACTIONS), "every ruled route is exercised by the matrix"
    assert not api_paths & set(OPEN_ROUTES)


def test_the_access_matrix(world: World, components: Components) -> None:
    """Every (route, action) x role x target: the status, and that a refusal changes nothing."""
    cells = 0
    mismatches = []
    rescoped: dict[tuple[str, str], str] = {}  # tokens of conversations the matrix started
    for route, requests in REQUESTS.items():
        for action, request in requests:
            for role in ROLES:
                for kind in TARGETS:
                    cid, token = world.target(role, kind)
                    token = token or rescoped.get((role, cid), "")
                    headers = {**world.parties[role].headers}
                    if token:
                        headers[TOKEN_HEADER] = token
                    before = len(components.assistant.history(cid))
                    response = request(world.client, headers, cid)
                    want = expected(role, action, kind)
                    got = response.status_code
                    ok = got in {200, 204} if want is Decision.ALLOW else got == int(want)
                    if TOKEN_HEADER in response.headers:  # a customer's id, in its namespace
                        rescoped[(role, cid)] = response.headers[TOKEN_HEADER]
                    if not ok:
                        mismatches.append((route, action.value, role, kind, int(want), got))
                        continue
                    after = len(components.assistant.history(cid))
                    writes = action in {Action.SEND, Action.STREAM, Action.COMMAND}
                    if not want.allowed:
                        assert after == before, (route, action, role, kind, "a refusal wrote")
                    elif writes and ROLE_OF[role] is Role.CUSTOMER and kind != "own":
                        assert after == before, (route, action, role, kind, "reached another's")
                        if action is not Action.STREAM:
                            assert response.json()["conversation_id"] != cid
                    elif writes and action is not Action.STREAM:
                        assert response.json()["conversation_id"] == cid, (route, role, kind)
                    cells += 1
    assert mismatches == [], "\n".join(map(str, mismatches))
    assert cells == 6 * len(ROLES) * len(TARGETS)


def test_spot_checks_read_as_issue_17_says(world: World) -> None:
    """A few cells spelled out, so the matrix is not only the policy checked against itself."""
    c = world.client
    a, b = world.parties["customer A"], world.parties["customer B"]
    agent, admin = world.parties["agent"].headers, world.parties["admin"].headers
    read = "/api/v1/conversations/{}"
    assert c.get(read.format(a.conversation_id)).status_code == 401
    assert c.get(read.format(a.conversation_id)).headers["www-authenticate"] == "Bearer"
    assert c.get(read.format(a.conversation_id), headers=b.headers).status_code == 404
    stolen = {**b.headers, TOKEN_HEADER: a.token}  # a token is no use to another key
    assert c.get(read.format(a.conversation_id), headers=stolen).status_code == 404
    assert c.get(read.format(WEBHOOK_ID), headers=a.headers).status_code == 404
    assert c.get(read.format(WEBHOOK_ID), headers=agent).status_code == 200
    assert c.get(read.format(a.conversation_id), headers=agent).status_code == 403
    assert c.get(read.format(world.handed_off.conversation_id), headers=agent).status_code == 200
    assert c.get(read.format(a.conversation_id), headers=admin).status_code == 200
    feedback = c.post(
        f"/api/v1/conversations/{WEBHOOK_ID}/feedback", json={"positive": True}, headers=admin
    )
    assert feedback.status_code == 403, "staff never rate a customer's answers"
    bad_key = c.get(read.format(a.conversation_id), headers={"Authorization": "Bearer ask_x_y"})
    assert bad_key.status_code == 401


def test_an_admin_purge_for_a_customer_is_audited(world: World, components: Components) -> None:
    a, admin = world.parties["customer A"], world.parties["admin"]
    forgot = _post(world.client, admin, "/forget", a.conversation_id, "")
    assert forgot.status_code == 200, forgot.text
    assert forgot.json()["conversation_id"] == a.conversation_id
    entry = world.access.audit.recent(1)[0]
    assert (entry.actor, entry.action, entry.target, entry.detail) == (
        f"key:{admin.key_id}",
        "command",
        a.conversation_id,
        "/forget",
    )
    own = world.client.get(
        f"/api/v1/conversations/{a.conversation_id}", headers={**a.headers, TOKEN_HEADER: a.token}
    )
    assert own.status_code == 200, "the id stays the owner's"
    assert "blender warranty" not in own.text, "the customer's words are erased"
    again = _post(world.client, world.parties["customer B"], "hi", a.conversation_id, "")
    assert again.json()["conversation_id"] != a.conversation_id, "nobody else can take it over"
