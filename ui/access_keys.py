"""API keys: created with a role, shown once, stored as a SHA-256 digest, looked up on every
request so a revoked key stops working at once in every worker process.

A key is `ask_<id>_<secret>`: the id is public (listed, revoked by), the secret is 256 random
bits. A fast digest suffices for such a secret: slow hashes (bcrypt, argon2) defend low-entropy
passwords against guessing, and nobody can guess 2**256; a digest also allows one indexed lookup
per request instead of a slow hash against every row.

>>> keys = KeyStore(db.session)
>>> created = keys.create(Role.AGENT, "helpdesk")
>>> keys.authenticate(created.secret).role
<Role.AGENT: 'agent'>
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ui.access import Principal, Role
from ui.access_records import ApiKeyRow

PREFIX = "ask_"


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: never its secret."""

    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None

    @property
    def principal(self) -> Principal:
        """The caller this key makes."""
        return Principal(self.role, f"key:{self.id}")


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only time its secret exists outside the client."""

    key: ApiKey
    secret: str


def digest(secret: str) -> str:
    """SHA-256 hex of the whole key string, what the table stores and looks up."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.name, Role(row.role), row.created_at, row.revoked_at)


class KeyStore:
    """Create, list, revoke and check API keys; the database is the only state, shared by every
    process."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, role: Role, name: str) -> NewKey:
        """A new key; its secret is returned once and only its digest is kept."""
        key_id = secrets.token_hex(6)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        row = ApiKeyRow(
            id=key_id,
            name=name,
            role=role.value,
            digest=digest(secret),
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        with self._sessions.begin() as session:
            session.add(row)
        return NewKey(_key(row), secret)

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, oldest first."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        with self._sessions() as session:
            return [_key(row) for row in session.scalars(query)]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by its id; False when no active key has that id."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return bool(getattr(result, "rowcount", 0))

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None (unknown, malformed or revoked)."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        query = select(ApiKeyRow).where(
            ApiKeyRow.digest == digest(secret), ApiKeyRow.revoked_at.is_(None)
        )
        with self._sessions() as session:
            row = session.scalars(query).first()
            return _key(row) if row is not None else None

    def any_active(self) -> bool:
        """Whether any key is in force: then every REST caller must show one."""
        query = select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
        with self._sessions() as session:
            return bool(session.scalar(query))


__all__ = ["PREFIX", "ApiKey", "KeyStore", "NewKey", "digest"]
