"""The ConversationStore contract (dialog/protocols.py), run against every store: the SQL store on
SQLite and on PostgreSQL (skipped, saying why, when no server answers)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from assistant_core.db import Database
from dialog import events as ev
from dialog.errors import ConversationNotFound
from dialog.events import AnswerFailed, BotUttered, UserUttered
from dialog.protocols import ConversationStore
from dialog.state import ConversationState
from dialog.store import SqlConversationStore

pytestmark = pytest.mark.unit

StoreFactory = Callable[[Database], ConversationStore]
IMPLEMENTATIONS: dict[str, StoreFactory] = {
    "sql": lambda database: SqlConversationStore(database.session),
    "sql-snapshot-every-2": lambda database: SqlConversationStore(
        database.session, snapshot_every=2
    ),
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request: pytest.FixtureRequest, database: Database) -> ConversationStore:
    """Each implementation on each database (`database` runs SQLite and PostgreSQL)."""
    return IMPLEMENTATIONS[request.param](database)


def test_it_is_a_conversation_store(store: ConversationStore) -> None:
    assert isinstance(store, ConversationStore)


def test_events_come_back_in_order(store: ConversationStore) -> None:
    assert store.append("c1", [UserUttered("hi", "web")], channel="web") == 1
    last = store.append("c1", [BotUttered("hello", [{"chunk_id": 3}]), AnswerFailed("boom", "par")])
    assert last == 3
    assert store.events("c1") == [
        UserUttered("hi", "web"),
        BotUttered("hello", [{"chunk_id": 3}]),
        AnswerFailed("boom", "par"),
    ]
    assert store.events("c1", last=2)[0] == BotUttered("hello", [{"chunk_id": 3}])
    assert store.events("c1", after=2) == [AnswerFailed("boom", "par")]


def test_numbered_events_carry_their_seq(store: ConversationStore) -> None:
    store.append("c1", [UserUttered("one"), BotUttered("two")])
    store.append("c1", [UserUttered("three")])
    numbered = store.numbered_events("c1")
    assert [seq for seq, _ in numbered] == [1, 2, 3]
    assert [event for _, event in numbered] == store.events("c1")
    assert store.numbered_events("c1", last=1) == [(3, UserUttered("three"))]


def test_conversations_are_kept_apart(store: ConversationStore) -> None:
    store.append("a", [UserUttered("for a")])
    store.append("b", [UserUttered("for b")])
    assert store.events("a") == [UserUttered("for a")]
    assert store.events("missing") == []


def test_an_unknown_conversation_does_not_exist(store: ConversationStore) -> None:
    assert not store.exists("nope")
    with pytest.raises(ConversationNotFound):
        store.require("nope")
    store.append("nope", [UserUttered("now it does")])
    assert store.exists("nope")
    store.require("nope")


def test_state_replays_slots_forms_and_handoff(store: ConversationStore) -> None:
    store.append(
        "c1",
        [
            UserUttered("return NW-1042 please"),
            ev.FormStarted("return_request"),
            ev.SlotSet(
                "order_id",
                "NW-1042",
                turn=1,
                span="NW-1042",
                extractor="rule:order_id",
                confidence=0.99,
            ),
            ev.SlotRequested("reason"),
            ev.HandoffStarted("asked for a human", "summary"),
        ],
    )
    state = store.load_state("c1")
    assert state.active_form == "return_request" and state.requested_slot == "reason"
    assert (
        state.slots["order_id"].span == "NW-1042"
        and state.slots["order_id"].extractor == "rule:order_id"
    )
    assert state.handoff and state.seq == 5
    store.append("c1", [ev.HandedBack("ann"), ev.ConversationRestarted()])
    state = store.load_state("c1")
    assert (
        not state.handoff and state.slots == {} and state.active_form is None and state.turns == 1
    )


def test_the_state_is_what_replaying_the_events_gives(store: ConversationStore) -> None:
    for n in range(7):
        store.append("c1", [UserUttered(f"q {n}"), ev.SlotSet("email", f"a{n}@b.co")])
        store.load_state("c1")  # a store may snapshot on any read
    expected = ConversationState.replay("c1", store.events("c1"))
    assert store.load_state("c1").to_json() == {**expected.to_json(), "seq": 14}


@pytest.mark.parametrize("window", [3, 10, 40])
def test_a_turn_reads_the_same_state_and_history_as_separate_reads(
    store: ConversationStore, window: int
) -> None:
    for n in range(13):
        store.append("c1", [UserUttered(f"question {n}"), BotUttered(f"answer {n}", [])])
        if n == 4:
            store.load_state("c1")
    state, history = store.load_turn("c1", history=window)
    assert state == store.load_state("c1")
    assert history == store.events("c1", last=window)


def test_a_turn_of_a_new_conversation_starts_empty(store: ConversationStore) -> None:
    state, history = store.load_turn("new", history=5)
    assert (state.seq, state.turns, history) == (0, 0, [])


def test_erase_leaves_only_a_marker(store: ConversationStore) -> None:
    store.append(
        "c1", [UserUttered("my email is a@b.co"), ev.SlotSet("email", "a@b.co"), BotUttered("ok")]
    )
    store.load_state("c1")
    store.append("c2", [UserUttered("other")])
    assert store.erase("c1") == 3
    assert store.events("c1") == [ev.ConversationErased(3)]
    state = store.load_state("c1")
    assert state.erased and state.slots == {} and state.turns == 0
    assert store.events("c2") == [UserUttered("other")]


def test_a_snapshot_of_state_from_before_an_erasure_is_not_written(
    store: ConversationStore,
) -> None:
    store.append("c1", [UserUttered("my email is a@b.co")] * 3)
    before = store.load_state("c1")
    store.erase("c1")
    store.save_snapshot(before)
    assert store.load_state("c1").erased and store.load_state("c1").turns == 0


def test_a_snapshot_changes_nothing_a_reader_sees(store: ConversationStore) -> None:
    store.append("c1", [UserUttered("hi"), ev.SlotSet("email", "a@b.co")])
    state = store.load_state("c1")
    store.save_snapshot(state)
    store.append("c1", [BotUttered("hello")])
    again = store.load_state("c1")
    assert again.seq == 3 and again.slot("email") == "a@b.co" and again.turns == 1
