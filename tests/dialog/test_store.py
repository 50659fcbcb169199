"""What the SQL store does beyond the ConversationStore contract (tests/contracts): snapshots
that bound the replay, erasure down to the snapshot rows."""

import pytest

from assistant_core.db import Database
from dialog.events import BotUttered, UserUttered
from dialog.state import ConversationState
from dialog.store import SqlConversationStore

pytestmark = pytest.mark.unit


def test_snapshots_bound_the_replay_of_long_conversations(database: Database) -> None:
    from dialog import events as ev

    store = SqlConversationStore(database.session, snapshot_every=50)
    batch = [UserUttered("hi"), BotUttered("hello")] * 500
    store.append("c1", batch + [ev.SlotSet("email", "a@b.co")])
    first = store.load_state("c1")
    assert store.replayed == 1001 and first.turns == 500
    store.append(
        "c1", [UserUttered("again"), ev.SlotSet("email", "c@d.co", extractor="rule:email")]
    )
    second = store.load_state("c1")
    assert store.replayed == 2
    assert second.turns == 501 and second.slot("email") == "c@d.co" and second.seq == 1003
    assert second == SqlConversationStore(database.session, snapshot_every=10_000).load_state("c1")
    fresh = ConversationState.replay("c1", store.events("c1"))
    assert fresh.to_json() == {**second.to_json(), "seq": 0}


def test_erase_leaves_only_a_marker_and_no_snapshot(database: Database) -> None:
    from sqlalchemy import func, select

    from dialog import events as ev
    from dialog.records import SnapshotRow

    store = SqlConversationStore(database.session, snapshot_every=2)
    store.append(
        "c1", [UserUttered("my email is a@b.co"), ev.SlotSet("email", "a@b.co"), BotUttered("ok")]
    )
    store.load_state("c1")
    store.append("c2", [UserUttered("other")])
    assert store.erase("c1") == 3
    assert store.events("c1") == [ev.ConversationErased(3)]
    state = store.load_state("c1")
    assert state.erased and state.slots == {} and state.turns == 0
    with database.session() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(SnapshotRow)
                .where(SnapshotRow.conversation_id == "c1")
            )
            == 0
        )
    assert store.events("c2") == [UserUttered("other")]


def test_events_written_by_newer_code_still_load(database: Database) -> None:
    from dialog.events import event_from_row

    assert event_from_row("user", {"text": "hi", "future_field": 1}) == UserUttered("hi")


@pytest.mark.parametrize("window", [3, 10, 40])
def test_a_turn_reads_the_same_state_and_history_as_separate_reads(
    database: Database, window: int
) -> None:
    store = SqlConversationStore(database.session, snapshot_every=8)
    for n in range(13):
        store.append("c1", [UserUttered(f"question {n}"), BotUttered(f"answer {n}", [])])
        if n == 4:
            store.load_state("c1")  # a snapshot at seq 10; 16 events follow it
    expected = ConversationState.replay("c1", store.events("c1"))
    state, history = store.load_turn("c1", history=window)
    assert state.to_json() == {**expected.to_json(), "seq": 26}
    assert history == store.events("c1", last=window)
    assert store.replayed == 16  # from the snapshot on, also when the window is shorter
