"""API keys: created with a role, shown once, stored as a SHA-256 digest, looked up on every
request so a revoked key stops working at once in every worker process.

A key is `ask_<id>_<secret>`: the id is public (listed, revoked by), the secret is 256 random
bits. A fast digest suffices for such a secret: slow hashes (bcrypt, argon2) defend low-entropy
passwords against guessing, and nobody can guess 2**256; a digest also allows one indexed lookup
per request instead of a slow hash against every row.

A key may expire (`expires_at`, UTC): from then on it is refused exactly like a revoked one. The
check is in the same lookup, against the database's clock (`now()`), so every worker process
agrees at once whatever its own clock says.

>>> keys = KeyStore(db.session)
>>> created = keys.create(Role.AGENT, "helpdesk", expires_at=parse_expiry("90d"))
>>> keys.authenticate(created.secret).role
<Role.AGENT: 'agent'>
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from assistant_core.db import stored_utc
from assistant_core.settings import parse_durations
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
    expires_at: datetime | None = None
    expired: bool = False
    """Past `expires_at` by the database's clock when the key was read."""

    @property
    def active(self) -> bool:
        """Neither revoked nor expired: a request with it is let in."""
        return self.revoked_at is None and not self.expired

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


_DURATION = re.compile(r"\s*\d+(\.\d+)?\s*[smhd]\s*", re.IGNORECASE)


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """When a key given `text` expires, in UTC: a duration from `now` (`90d`, `12h`, `30m`,
    `45s`, as settings' durations are written) or an ISO date or date and time (`2026-12-31` is
    that day's 00:00 UTC; a time without an offset is UTC). A ValueError says what is wrong:
    unreadable, not positive, or not in the future.

    >>> parse_expiry("12h", now=datetime(2026, 1, 1, tzinfo=UTC))
    datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    text = text.strip()
    if _DURATION.fullmatch(text):
        seconds = parse_durations(text.replace(" ", ""))[0]
        if seconds <= 0:
            raise ValueError(f"{text!r} is not a positive duration")
        try:
            return now + timedelta(seconds=seconds)
        except OverflowError as err:
            raise ValueError(f"{text!r} is too far in the future") from err
    if re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f"{text!r} needs a unit: s, m, h or d (90d, 12h, 30m)")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(
            f"{text!r} is neither a duration (90d, 12h, 30m) nor an ISO date or date and time "
            "(2026-12-31, 2026-12-31T18:00Z)"
        ) from err
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when <= now:
        raise ValueError(
            f"{text!r} is not in the future (now is {now.isoformat(timespec='seconds')})"
        )
    return when


def _expired() -> ColumnElement[Any]:
    """Whether a key's expiry has passed, by the database's clock (SQLite compares its stored UTC
    text with CURRENT_TIMESTAMP, in the same format)."""
    return ApiKeyRow.expires_at.is_not(None) & (ApiKeyRow.expires_at <= func.now())


def _unexpired() -> ColumnElement[Any]:
    return or_(ApiKeyRow.expires_at.is_(None), ApiKeyRow.expires_at > func.now())


def _key(row: ApiKeyRow, expired: bool = False) -> ApiKey:
    return ApiKey(
        row.id,
        row.name,
        Role(row.role),
        stored_utc(row.created_at),
        stored_utc(row.revoked_at) if row.revoked_at else None,
        stored_utc(row.expires_at) if row.expires_at else None,
        bool(expired),
    )


class KeyStore:
    """Create, list, revoke and check API keys; the database is the only state, shared by every
    process."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, role: Role, name: str, *, expires_at: datetime | None = None) -> NewKey:
        """A new key; its secret is returned once and only its digest is kept. With `expires_at`
        (aware, or naive meaning UTC; see `parse_expiry`) it is refused from that moment on."""
        key_id = secrets.token_hex(6)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = datetime.now(UTC)
        if expires_at is not None:  # SQLite keeps no offset: always store UTC
            aware = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
            expires_at = aware.astimezone(UTC)
        row = ApiKeyRow(
            id=key_id,
            name=name,
            role=role.value,
            digest=digest(secret),
            created_at=now,
            revoked_at=None,
            expires_at=expires_at,
        )
        with self._sessions.begin() as session:
            session.add(row)
        return NewKey(_key(row, expires_at is not None and expires_at <= now), secret)

    def list(self, *, include_revoked: bool = True, include_expired: bool = True) -> list[ApiKey]:
        """Every key, oldest first, each marked expired or not by the database's clock."""
        expired = case((_expired(), True), else_=False).label("expired")
        query = select(ApiKeyRow, expired).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        if not include_expired:
            query = query.where(_unexpired())
        with self._sessions() as session:
            return [_key(row, flag) for row, flag in session.execute(query).tuples()]

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
        """The active key with this secret, or None (unknown, malformed, revoked or expired: one
        lookup, the expiry against the database's clock like the revocation)."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        query = select(ApiKeyRow).where(
            ApiKeyRow.digest == digest(secret), ApiKeyRow.revoked_at.is_(None), _unexpired()
        )
        with self._sessions() as session:
            row = session.scalars(query).first()
            return _key(row) if row is not None else None

    def any_active(self) -> bool:
        """Whether any key is in force: then every REST caller must show one. An expired key
        still counts (only revoking is a decision): keys that lapse lock the REST API rather
        than reopen it to anonymous callers, and `serve` beyond loopback stays keyed."""
        query = select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
        with self._sessions() as session:
            return bool(session.scalar(query))


__all__ = ["PREFIX", "ApiKey", "KeyStore", "NewKey", "digest", "parse_expiry"]
