"""The access policy as a table: every role x action x relation (x handoff) has its expected
status, written out here apart from the code, so a changed rule or a new action fails a test."""

from __future__ import annotations

import pytest

from assistant_core.errors import ConfigError
from ui.access import (
    Action,
    Decision,
    Principal,
    Relation,
    Role,
    Target,
    check_login,
    decide,
    new_conversation_id,
    parse_logins,
    scoped_conversation_id,
)

pytestmark = pytest.mark.unit

A, OWN, OTHER, HOOK = Relation.ABSENT, Relation.OWN, Relation.OTHER, Relation.WEBHOOK
COLUMNS = (A, OWN, OTHER, HOOK)

Statuses = tuple[int, int, int, int]
"""Expected statuses for a conversation that is (absent, own, other, webhook) to the caller."""


def by_role(grid: str) -> dict[Role, dict[Action, Statuses]]:
    """The grid as role -> action -> statuses: a row an action, four statuses a header role."""
    header, *lines = grid.strip().splitlines()
    roles = [Role(name) for name in header.split()[1:]]
    table: dict[Role, dict[Action, Statuses]] = {role: {} for role in roles}
    for line in lines:
        action, *statuses = line.split()
        assert len(statuses) == 4 * len(roles), line
        for n, role in enumerate(roles):
            absent, own, other, hook = map(int, statuses[4 * n : 4 * n + 4])
            table[role][Action(action)] = (absent, own, other, hook)
    return table


# each role's four statuses: (absent, own, other, webhook), the conversation not handed off;
# a webhook may hand back a webhook conversation: a helpdesk agent resolved it there
CONVERSATIONS = by_role(
    """
    action     customer         agent            admin            webhook
    start      200 200 404 404  200 200 403 403  200 200 403 403  200 200 403 200
    send       200 200 404 404  200 200 403 403  200 200 403 403  200 200 403 200
    stream     200 200 404 404  200 200 403 403  200 200 403 403  200 200 403 200
    command    200 200 404 404  200 200 403 403  200 200 200 200  200 200 403 200
    read       404 200 404 404  404 200 403 200  404 200 200 200  404 403 403 403
    export     404 200 404 404  404 200 403 200  404 200 200 200  404 403 403 403
    feedback   404 200 404 404  404 200 403 403  404 200 403 403  404 403 403 403
    hand_back  404 403 404 404  404 200 403 200  404 200 200 200  404 403 403 200
    """
)
HANDED_OFF_CHANGES = {(Role.AGENT, a) for a in (Action.READ, Action.EXPORT, Action.HAND_BACK)}
"""With the conversation handed off, an agent may read, export and hand back someone else's."""

# rows: action -> statuses for (customer, agent, admin, webhook)
GLOBAL: dict[Action, tuple[int, int, int, int]] = {
    Action.UPLOAD: (403, 403, 200, 403),
    Action.REMOVE_DOCUMENTS: (403, 403, 200, 403),
    Action.KB_STATUS: (403, 200, 200, 403),
    Action.REBUILD: (403, 403, 200, 403),
    Action.KEYS: (403, 403, 200, 403),
    Action.AUDIT: (403, 403, 200, 403),
}
ROLES = (Role.CUSTOMER, Role.AGENT, Role.ADMIN, Role.WEBHOOK)


def conversation_cases() -> list[tuple[Role, Action, Relation, bool, int]]:
    cases = []
    for role, rows in CONVERSATIONS.items():
        for action, statuses in rows.items():
            for relation, status in zip(COLUMNS, statuses, strict=True):
                cases.append((role, action, relation, False, status))
                opened = relation is OTHER and (role, action) in HANDED_OFF_CHANGES
                cases.append((role, action, relation, True, 200 if opened else status))
    return cases


def test_every_action_has_a_row_for_every_role() -> None:
    for role in ROLES:
        covered = set(CONVERSATIONS[role]) | set(GLOBAL)
        assert covered == set(Action), f"{role}: no expected status for {set(Action) - covered}"


@pytest.mark.parametrize(
    ("role", "action", "relation", "handed_off", "status"), conversation_cases()
)
def test_conversation_actions(
    role: Role, action: Action, relation: Relation, handed_off: bool, status: int
) -> None:
    assert decide(role, action, Target(relation, handed_off)) == status


@pytest.mark.parametrize("action", list(GLOBAL))
@pytest.mark.parametrize("role", ROLES)
def test_actions_without_a_conversation(role: Role, action: Action) -> None:
    assert decide(role, action) == GLOBAL[action][ROLES.index(role)]


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("relation", [*COLUMNS, None])
def test_no_role_is_always_401(action: Action, relation: Relation | None) -> None:
    target = Target(relation) if relation else None
    assert decide(None, action, target) is Decision.UNAUTHENTICATED


def test_a_conversation_action_without_target_is_about_no_conversation_yet() -> None:
    assert decide(Role.CUSTOMER, Action.START) is Decision.ALLOW
    assert decide(Role.CUSTOMER, Action.READ) is Decision.NOT_FOUND


def test_a_customer_cannot_tell_another_conversation_from_none() -> None:
    for action in CONVERSATIONS[Role.CUSTOMER]:
        if action not in {Action.START, Action.SEND, Action.STREAM, Action.COMMAND}:
            assert decide(Role.CUSTOMER, action, Target(OTHER)) == decide(
                Role.CUSTOMER, action, Target(A)
            )


def test_decision_reads_as_a_status() -> None:
    assert Decision.ALLOW.allowed and not Decision.NOT_FOUND.allowed
    assert int(Decision.FORBIDDEN) == 403


def test_principal_key_id() -> None:
    assert Principal(Role.ADMIN, "key:abc123").key_id == "abc123"
    assert Principal(Role.ADMIN, "admin:alice").key_id is None
    assert not Principal(None).authenticated


def test_client_ids_are_namespaced_per_channel_and_key() -> None:
    a = Principal(Role.CUSTOMER, "key:aaaaaaaaaaaa")
    b = Principal(Role.CUSTOMER, "key:bbbbbbbbbbbb")
    assert scoped_conversation_id("api", a, "x") != scoped_conversation_id("api", b, "x")
    assert scoped_conversation_id("api", a, "x") != scoped_conversation_id("web", a, "x")
    assert scoped_conversation_id("api", a, "chatwoot-1-2").startswith("api:aaaaaaaaaaaa:")
    long = scoped_conversation_id("api", a, "y" * 64)
    assert len(long) <= 64 and long == scoped_conversation_id("api", a, "y" * 64)
    assert long != scoped_conversation_id("api", a, "y" * 63 + "z")
    anonymous = scoped_conversation_id("web", Principal(Role.CUSTOMER, "web:alice"), "x")
    assert anonymous == "web:web.alice:x"


def test_logins() -> None:
    pairs = parse_logins("alice:s3cret, bob:pa:ss", "ASSISTANT_ADMIN_AUTH")
    assert pairs == [("alice", "s3cret"), ("bob", "pa:ss")]
    assert check_login(pairs, "bob", "pa:ss") and not check_login(pairs, "bob", "s3cret")
    with pytest.raises(ConfigError, match="ASSISTANT_ADMIN_AUTH"):
        parse_logins("alice", "ASSISTANT_ADMIN_AUTH")


def test_an_id_already_in_the_callers_namespace_stays_as_it_is() -> None:
    a = Principal(Role.CUSTOMER, "key:aaaaaaaaaaaa")
    once = scoped_conversation_id("api", a, "order-7")
    assert scoped_conversation_id("api", a, once) == once
    fresh = new_conversation_id("api", a)
    assert fresh.startswith("api:aaaaaaaaaaaa:") and len(fresh) <= 64
    assert scoped_conversation_id("api", a, fresh) == fresh != new_conversation_id("api", a)
    b = Principal(Role.CUSTOMER, "key:bbbbbbbbbbbb")
    assert scoped_conversation_id("api", b, once) != once
