"""The Conversations tab: find conversations (text, channel, dates, feedback, handoff), read one
as a transcript with its sources and its state, and hand a handed-off one back to the assistant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import gradio as gr
from sqlalchemy import Engine, and_, exists, func, select
from sqlalchemy.sql.elements import ColumnElement

from dialog.errors import ConversationNotFound
from dialog.records import ConversationRow, EventRow
from ui.access import Action
from ui.admin.desk import AdminDesk, admin_caller
from ui.channel import failure_for
from ui.channel.failures import KNOWN
from ui.views import NO_CONVERSATION, export_markdown, state_markdown

ANY = "any"
FEEDBACK_CHOICES = [ANY, "thumbs up", "thumbs down", "none"]
HANDOFF_CHOICES = [ANY, "handed off", "not handed off"]
RESULT_COLUMNS = [
    "conversation",
    "channel",
    "started",
    "last message",
    "turns",
    "handoff",
    "thumbs up",
    "thumbs down",
]
LIMIT = 100


@dataclass(frozen=True)
class ReviewQuery:
    """What the admin searches by; empty fields do not filter."""

    text: str = ""
    channel: str = ANY
    since: date | None = None
    until: date | None = None
    feedback: str = ANY
    handoff: str = ANY


@dataclass(frozen=True)
class Found:
    """One conversation in the results, with the counts the list shows."""

    conversation_id: str
    channel: str
    started: datetime
    updated: datetime
    turns: int
    handoffs: int
    thumbs_up: int
    thumbs_down: int

    def row(self) -> list[Any]:
        return [
            self.conversation_id,
            self.channel,
            _minute(self.started),
            _minute(self.updated),
            self.turns,
            "yes" if self.handoffs else "",
            self.thumbs_up,
            self.thumbs_down,
        ]


def search_conversations(engine: Engine, query: ReviewQuery, limit: int = LIMIT) -> list[Found]:
    """The newest `limit` conversations matching every filter, counted in one SQL statement (the
    same on SQLite and PostgreSQL)."""
    c = ConversationRow
    columns = (
        _count(c, "user"),
        _count(c, "handoff"),
        _count(c, "feedback", EventRow.payload["positive"].as_boolean().is_(True)),
        _count(c, "feedback", EventRow.payload["positive"].as_boolean().is_(False)),
    )
    statement = (
        select(c.id, c.channel, c.created_at, c.updated_at, *columns)
        .where(*_filters(query))
        .order_by(c.updated_at.desc(), c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [Found(*row) for row in connection.execute(statement)]


def _events(kind: str, *also: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(EventRow.conversation_id == ConversationRow.id, EventRow.type == kind, *also)


def _count(c: type[ConversationRow], kind: str, *also: ColumnElement[bool]) -> Any:
    return select(func.count()).where(_events(kind, *also)).scalar_subquery()


def _filters(query: ReviewQuery) -> list[ColumnElement[bool]]:
    c = ConversationRow
    found: list[ColumnElement[bool]] = []
    if query.text.strip():
        pattern = "%" + _escape_like(query.text.strip()) + "%"
        text = EventRow.payload["text"].as_string()
        found.append(
            exists().where(
                EventRow.conversation_id == c.id,
                EventRow.type.in_(("user", "bot")),
                text.ilike(pattern, escape="\\"),
            )
        )
    if query.channel and query.channel != ANY:
        found.append(c.channel == query.channel)
    if query.since:
        found.append(c.updated_at >= datetime.combine(query.since, time(), UTC))
    if query.until:
        found.append(c.created_at < datetime.combine(query.until + timedelta(days=1), time(), UTC))
    positive = EventRow.payload["positive"].as_boolean()
    if query.feedback == "thumbs up":
        found.append(exists().where(_events("feedback", positive.is_(True))))
    elif query.feedback == "thumbs down":
        found.append(exists().where(_events("feedback", positive.is_(False))))
    elif query.feedback == "none":
        found.append(~exists().where(_events("feedback")))
    if query.handoff == "handed off":
        found.append(exists().where(_events("handoff")))
    elif query.handoff == "not handed off":
        found.append(~exists().where(_events("handoff")))
    return found


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _minute(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def parse_day(value: str | None) -> date | None:
    """`YYYY-MM-DD`, or None for an empty field; a malformed day raises ValueError."""
    return date.fromisoformat(value.strip()) if value and value.strip() else None


class ReviewAdmin:
    """Handlers of the Conversations tab.

    >>> review = ReviewAdmin(AdminDesk(runtime))
    >>> rows, note = review.search("warranty", "any", "", "", "thumbs down", "any")
    """

    def __init__(self, desk: AdminDesk) -> None:
        self.desk = desk

    def channels(self) -> Any:
        """The channel filter's choices: every channel a conversation came through."""
        statement = select(ConversationRow.channel).distinct().order_by(ConversationRow.channel)
        with self.desk.components.database.engine.connect() as connection:
            names = list(connection.scalars(statement))
        return gr.Dropdown(choices=[ANY, *names], value=ANY)

    def search(
        self, text: str, channel: str, since: str, until: str, feedback: str, handoff: str
    ) -> tuple[list[list[Any]], str]:
        """The matching conversations, newest first, and a line saying how many."""
        try:
            days = parse_day(since), parse_day(until)
            query = ReviewQuery(text, channel, *days, feedback=feedback, handoff=handoff)
        except ValueError:
            return [], "Dates are days like 2026-11-01."
        found = search_conversations(self.desk.components.database.engine, query)
        more = " (the newest shown)" if len(found) == LIMIT else ""
        return [f.row() for f in found], f"{len(found)} conversation(s){more}."

    def pick(self, event: gr.SelectData) -> str:
        """A click on a result row opens that conversation: its id goes into the id field."""
        row = getattr(event, "row_value", None) or []
        return str(row[0]) if row else gr.skip()

    def open(self, conversation_id: str, request: gr.Request | None = None) -> tuple[str, str, str]:
        """The transcript with each answer's sources and quotes, and the state panel."""
        conversation_id = (conversation_id or "").strip()
        if not conversation_id:
            return "", NO_CONVERSATION, "Choose a conversation first."
        caller = admin_caller(request)
        try:
            events, state = self.desk.channel.conversation(caller, conversation_id)
        except ConversationNotFound:
            return "", NO_CONVERSATION, f"No conversation with id `{conversation_id}`."
        except KNOWN as err:
            return "", NO_CONVERSATION, failure_for(err).sentence
        return export_markdown(conversation_id, events), state_markdown(state), ""

    def hand_back(self, conversation_id: str, request: gr.Request | None = None) -> tuple[str, str]:
        """Give a handed-off conversation back to the assistant; recorded in the audit trail."""
        conversation_id = (conversation_id or "").strip()
        if not conversation_id:
            return NO_CONVERSATION, "Open a conversation first."
        caller = admin_caller(request)
        try:
            handed = self.desk.channel.hand_back(caller, conversation_id, caller.subject)
            state = self.desk.channel.state(caller, conversation_id)
        except KNOWN as err:
            return NO_CONVERSATION, failure_for(err).sentence
        if not handed:
            return state_markdown(state), "This conversation is not handed off."
        self.desk.record(caller, Action.HAND_BACK, conversation_id)
        return state_markdown(state), "Handed back: the assistant answers again."


__all__ = [
    "FEEDBACK_CHOICES",
    "HANDOFF_CHOICES",
    "RESULT_COLUMNS",
    "Found",
    "ReviewAdmin",
    "ReviewQuery",
    "parse_day",
    "search_conversations",
]
