import pytest

from assistant.db import Database
from dialog.errors import ConversationNotFound
from dialog.events import AnswerFailed, BotUttered, UserUttered
from dialog.store import ConversationStore

pytestmark = pytest.mark.unit


def test_events_come_back_in_order(database: Database) -> None:
    store = ConversationStore(database.session)
    store.append("c1", [UserUttered("hi", "web")], channel="web")
    store.append("c1", [BotUttered("hello", [{"chunk_id": 3}]), AnswerFailed("boom", "par")])
    assert store.events("c1") == [
        UserUttered("hi", "web"),
        BotUttered("hello", [{"chunk_id": 3}]),
        AnswerFailed("boom", "par"),
    ]
    assert store.events("c1", last=2)[0] == BotUttered("hello", [{"chunk_id": 3}])


def test_conversations_are_kept_apart(database: Database) -> None:
    store = ConversationStore(database.session)
    store.append("a", [UserUttered("for a")])
    store.append("b", [UserUttered("for b")])
    assert store.events("a") == [UserUttered("for a")]
    assert store.events("missing") == []


def test_require_unknown_conversation(database: Database) -> None:
    with pytest.raises(ConversationNotFound):
        ConversationStore(database.session).require("nope")
