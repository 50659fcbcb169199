"""Keys, conversation owners and the audit trail on real SQLite and PostgreSQL databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select, text

from assistant_core.db import Database
from dialog.records import ConversationRow
from ui.access import Principal, Relation, Role
from ui.access_audit import AuditLog
from ui.access_keys import KeyStore, digest
from ui.access_owners import AlreadyBound, OwnershipStore

pytestmark = pytest.mark.integration

ALICE = Principal(Role.CUSTOMER, "key:aaaaaaaaaaaa")
BOB = Principal(Role.CUSTOMER, "key:bbbbbbbbbbbb")


def every_text_in(database: Database) -> str:
    """All values of every table, as one string: what someone who copies the database reads."""
    found = []
    with database.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                found.append(" ".join(str(value) for value in row))
    return "\n".join(found)


def test_a_key_is_shown_once_and_stored_as_a_digest(database: Database) -> None:
    keys = KeyStore(database.session)
    created = keys.create(Role.AGENT, "helpdesk")
    assert created.secret.startswith(f"ask_{created.key.id}_") and len(created.secret) > 40
    stored = every_text_in(database)
    assert created.secret not in stored
    # the random part may itself hold "_" (URL-safe base64): cut the prefix, not at the last "_"
    assert created.secret.removeprefix(f"ask_{created.key.id}_") not in stored
    assert digest(created.secret) in stored
    found = keys.authenticate(created.secret)
    assert found is not None and found.role is Role.AGENT and found.name == "helpdesk"
    assert found.principal == Principal(Role.AGENT, f"key:{created.key.id}")


def test_wrong_keys_are_refused(database: Database) -> None:
    keys = KeyStore(database.session)
    created = keys.create(Role.CUSTOMER, "shop")
    for wrong in ["", "x", created.secret[:-1], created.secret + "x", created.key.id, "ask_" * 80]:
        assert keys.authenticate(wrong) is None


def test_revoke_lists_and_stops_the_key(database: Database) -> None:
    keys = KeyStore(database.session)
    assert not keys.any_active()
    first, second = keys.create(Role.ADMIN, "ops"), keys.create(Role.CUSTOMER, "shop")
    assert keys.any_active()
    assert [k.id for k in keys.list()] == [first.key.id, second.key.id]
    assert keys.revoke(first.key.id) and not keys.revoke(first.key.id)
    assert not keys.revoke("nonexistent")
    assert keys.authenticate(first.secret) is None
    assert keys.authenticate(second.secret) is not None
    listed = {k.id: k for k in keys.list()}
    assert not listed[first.key.id].active and listed[second.key.id].active
    assert [k.id for k in keys.list(include_revoked=False)] == [second.key.id]
    keys.revoke(second.key.id)
    assert not keys.any_active()


PAST = datetime(2001, 1, 1, tzinfo=UTC)
FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


def test_an_expired_key_is_refused_like_a_revoked_one(database: Database) -> None:
    keys = KeyStore(database.session)
    old = keys.create(Role.ADMIN, "old", expires_at=PAST)
    later = keys.create(Role.AGENT, "later", expires_at=FUTURE)
    never = keys.create(Role.CUSTOMER, "never")
    assert old.key.expired and not old.key.active and later.key.active
    assert keys.authenticate(old.secret) is None
    found = keys.authenticate(later.secret)
    assert found is not None and found.expires_at == FUTURE and not found.expired
    assert keys.authenticate(never.secret) is not None
    listed = {k.id: k for k in keys.list()}
    assert (listed[old.key.id].expires_at, listed[old.key.id].expired) == (PAST, True)
    assert (listed[later.key.id].expires_at, listed[later.key.id].expired) == (FUTURE, False)
    assert (listed[never.key.id].expires_at, listed[never.key.id].expired) == (None, False)
    assert not listed[old.key.id].active and listed[later.key.id].active
    usable = keys.list(include_revoked=False, include_expired=False)
    assert [k.id for k in usable] == [later.key.id, never.key.id]
    assert [k.id for k in keys.list(include_revoked=False)] == [k.id for k in listed.values()]


def test_expiry_is_stored_as_utc_from_any_offset(database: Database) -> None:
    keys = KeyStore(database.session)
    east = datetime(2999, 6, 1, 18, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2999, 6, 1, 16, 0)  # noqa: DTZ001 - naive means UTC
    for given in [east, naive]:
        created = keys.create(Role.CUSTOMER, "shop", expires_at=given)
        assert keys.authenticate(created.secret) is not None
        listed = {k.id: k for k in keys.list()}[created.key.id]
        assert listed.expires_at == datetime(2999, 6, 1, 16, 0, tzinfo=UTC)
        assert listed.expires_at is not None and listed.expires_at.utcoffset() == timedelta(0)


def test_expired_keys_still_count_as_keys_in_force(database: Database) -> None:
    """Keys that lapse lock the REST API (every caller needs a live key) instead of reopening it
    to anonymous callers; only revoking every key does that."""
    keys = KeyStore(database.session)
    old = keys.create(Role.ADMIN, "old", expires_at=PAST)
    assert keys.authenticate(old.secret) is None and keys.any_active()
    keys.revoke(old.key.id)
    assert not keys.any_active()


def test_only_the_owner_with_the_token_owns_a_conversation(database: Database) -> None:
    owners = OwnershipStore(database.session)
    assert owners.relation("api:aaaaaaaaaaaa:c1", ALICE, None) is Relation.ABSENT
    token = owners.bind("api:aaaaaaaaaaaa:c1", "api", ALICE)
    assert len(token) >= 40 and token not in every_text_in(database)
    assert owners.relation("api:aaaaaaaaaaaa:c1", ALICE, token) is Relation.OWN
    assert owners.relation("api:aaaaaaaaaaaa:c1", ALICE, None) is Relation.OTHER
    assert owners.relation("api:aaaaaaaaaaaa:c1", ALICE, token[:-1] + "x") is Relation.OTHER
    assert owners.relation("api:aaaaaaaaaaaa:c1", BOB, token) is Relation.OTHER  # a leaked token
    owner = owners.owner("api:aaaaaaaaaaaa:c1")
    assert owner is not None and (owner.channel, owner.owner) == ("api", ALICE.subject)
    with pytest.raises(AlreadyBound):
        owners.bind("api:aaaaaaaaaaaa:c1", "api", BOB)
    assert owners.relation("api:aaaaaaaaaaaa:c1", ALICE, token) is Relation.OWN


def test_unbound_conversations_are_webhook_or_other_by_channel(database: Database) -> None:
    now = datetime.now(UTC)
    with database.session.begin() as session:
        for cid, channel in [("chatwoot-1-2", "chatwoot"), ("crm-9", "webhook"), ("t1", "cli")]:
            session.add(ConversationRow(id=cid, channel=channel, created_at=now, updated_at=now))
    owners = OwnershipStore(database.session)
    assert owners.relation("chatwoot-1-2", ALICE, None) is Relation.WEBHOOK
    assert owners.relation("crm-9", ALICE, "anything") is Relation.WEBHOOK
    assert owners.relation("t1", ALICE, None) is Relation.OTHER
    assert owners.owner("t1") is None


def test_audit_records_who_what_when_newest_first(database: Database) -> None:
    audit = AuditLog(database.session)
    before = datetime.now(UTC)
    audit.record(Principal(Role.ADMIN, "admin:alice"), "upload", "warranty.md", "2 chunks")
    audit.record("cli:ops", "keys.revoke", "key:abc")
    entries = audit.recent()
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("cli:ops", "keys.revoke", "key:abc"),
        ("admin:alice", "upload", "warranty.md"),
    ]
    assert entries[1].detail == "2 chunks" and entries[1].at >= before.replace(microsecond=0)
    assert entries[0].as_json()["at"].endswith("+00:00")
    assert len(audit.recent(1)) == 1


def test_tables_come_from_the_migration(database: Database) -> None:
    with database.engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
        assert {"ui_api_keys", "ui_conversation_owners", "ui_audit"} <= names
        assert connection.execute(select(text("1"))).scalar() == 1
