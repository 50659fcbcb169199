"""One mapping from what went wrong to what a person is told, for every front end (REST, SSE, web
chat, terminal, `ask`, webhooks): the same error reads the same everywhere."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import psycopg
from sqlalchemy.exc import OperationalError

from assistant_core.errors import LLMError
from dialog.errors import ConversationNotFound, EventNotFound
from dialog.locking import TurnLockTimeout
from ui.channel.caller import AccessDenied

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    sqlite3.OperationalError,
    psycopg.OperationalError,
)
"""Locked or unreachable past the bounded wait: answered 503, never 500 (the lock queue uses the
driver directly)."""
RETRY_AFTER_S = 5
KNOWN: tuple[type[Exception], ...] = (
    *DATABASE_UNAVAILABLE,
    TurnLockTimeout,
    ConversationNotFound,
    EventNotFound,
    AccessDenied,
    LLMError,
)
"""The errors with a mapping of their own; any other is a failed answer (500)."""


@dataclass(frozen=True)
class Failure:
    """A failed turn or call as a front end shows it.

    >>> failure_for(TurnLockTimeout("conversation c1 is busy (waited 60 s)")).status
    503
    """

    status: int
    """The HTTP status a REST client gets."""
    kind: str
    """The error's class name (the SSE `error` event, logs)."""
    message: str
    """What a person reads, lower case, no final stop: it goes after "Sorry, " as well."""
    retry_after_s: int | None = None
    """Nothing was lost: the same request may be sent again after this many seconds."""

    @property
    def sentence(self) -> str:
        """The message as a sentence on its own (terminal, web chat)."""
        return self.message[:1].upper() + self.message[1:] + "."


def failure_for(err: BaseException) -> Failure:
    """The one mapping; an error it does not know is a failed answer (500) that may be retried."""
    kind = type(err).__name__
    if isinstance(err, AccessDenied):
        return Failure(err.status, kind, str(err))
    if isinstance(err, ConversationNotFound | EventNotFound):
        return Failure(404, kind, str(err))
    if isinstance(err, TurnLockTimeout):
        return Failure(
            503, kind, f"{err}; nothing was lost, please try again shortly", RETRY_AFTER_S
        )
    if isinstance(err, DATABASE_UNAVAILABLE):
        return Failure(
            503,
            kind,
            "the database is unavailable right now; nothing was lost, please try again shortly",
            RETRY_AFTER_S,
        )
    if isinstance(err, LLMError):
        return Failure(
            503,
            kind,
            "the language model is unavailable right now; please try again shortly",
            RETRY_AFTER_S,
        )
    return Failure(500, kind, f"the answer failed ({kind}); please try again")
