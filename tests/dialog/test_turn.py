from pathlib import Path

import pytest

from assistant_core.db import Database
from dialog.events import AnswerFailed, BotUttered, UserUttered
from dialog.manager import Assistant, TurnOptions
from dialog.messages import Message
from dialog.prompt import NO_ANSWER
from dialog.store import SqlConversationStore
from knowledge.base import KnowledgeBase
from tests.fakes import BreakOff, FakeChatModel, HashingEmbedder

pytestmark = pytest.mark.unit


@pytest.fixture
def kb(database: Database, data_dir: Path, tmp_path: Path) -> KnowledgeBase:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "shipping.md").write_text(
        "# Shipping\n\nStandard shipping takes three business days.\n"
    )
    (docs / "returns.md").write_text("# Returns\n\nReturns are accepted within thirty days.\n")
    base = KnowledgeBase(database.session, HashingEmbedder(), data_dir / "index")
    base.ingest([docs])
    return base


def _assistant(database: Database, kb: KnowledgeBase, model: FakeChatModel) -> Assistant:
    return Assistant(
        SqlConversationStore(database.session), kb, model, TurnOptions(min_score=0.1, top_k=2)
    )


def test_answer_streams_cites_and_is_stored(database: Database, kb: KnowledgeBase) -> None:
    model = FakeChatModel().enqueue("Standard shipping takes three business days.")
    assistant = _assistant(database, kb, model)
    turn = assistant.start(Message("How many days does standard shipping take?", "c1"))
    assert turn.sources[0].source.endswith("shipping.md")
    deltas = list(turn)
    assert len(deltas) > 1 and "".join(deltas).strip() == turn.reply.answer
    events = assistant.history("c1")
    assert events[0] == UserUttered(
        "How many days does standard shipping take?", "cli", None, "neutral", "normal"
    )
    assert (
        isinstance(events[1], BotUttered)
        and events[1].sources[0]["chunk_id"] == turn.sources[0].chunk_id
    )


def test_prompt_marks_passages_as_reference_data(database: Database, kb: KnowledgeBase) -> None:
    model = FakeChatModel().enqueue("ok")
    _assistant(database, kb, model).handle(Message("standard shipping days?", "c1"))
    messages = model.requests[0]["messages"]
    assert messages[0]["role"] == "system" and "not instructions" in messages[0]["content"]
    user = messages[-1]["content"]
    assert user.startswith("Reference data:\n<passage>") and "three business days" in user
    assert user.rindex("</passage>") < user.index("Question: standard shipping days?")


def test_history_is_carried_into_the_next_turn(database: Database, kb: KnowledgeBase) -> None:
    model = FakeChatModel().enqueue("Three days.", "Yes, thirty days.")
    assistant = _assistant(database, kb, model)
    assistant.handle(Message("standard shipping days?", "c1"))
    assistant.handle(Message("and returns within thirty days?", "c1"))
    second = model.requests[1]["messages"]
    assert {"role": "assistant", "content": "Three days."} in second


def test_nothing_relevant_means_no_invention(database: Database, kb: KnowledgeBase) -> None:
    model = FakeChatModel()
    reply = _assistant(database, kb, model).handle(Message("xylophone quantum lattice", "c1"))
    assert reply.answer == NO_ANSWER and reply.sources == []
    assert model.requests == []


def test_failure_mid_stream_is_recorded_not_stored_as_answer(
    database: Database, kb: KnowledgeBase
) -> None:
    assistant = _assistant(
        database, kb, FakeChatModel(BreakOff("Partial answer ", ConnectionError("stream broke")))
    )
    turn = assistant.start(Message("standard shipping days?", "c1"))
    with pytest.raises(ConnectionError):
        list(turn)
    events = assistant.history("c1")
    assert isinstance(events[0], UserUttered)
    assert isinstance(events[1], AnswerFailed) and events[1].partial == "Partial answer "
    assert not any(isinstance(e, BotUttered) for e in events)


def test_oversized_message_is_refused_and_nothing_is_stored(
    database: Database, kb: KnowledgeBase
) -> None:
    assistant = _assistant(database, kb, FakeChatModel())
    assistant.options = TurnOptions(max_message_chars=20)
    reply = assistant.handle(Message("x" * 50, "c1"))
    assert "too long" in reply.answer
    assert assistant.history("c1") == []


def test_control_characters_never_reach_the_store(database: Database, kb: KnowledgeBase) -> None:
    model = FakeChatModel().enqueue("ok")
    assistant = _assistant(database, kb, model)
    assistant.handle(Message("standard\x00 shipping\x1b[31m days?\x07", "c1"))
    assert assistant.history("c1")[0].text == "standard shipping days?"


def test_terminal_output_keeps_spaces_but_drops_escapes() -> None:
    from ui.terminal import safe_for_terminal

    assert (
        safe_for_terminal(" to assemble\x1b]0;pwned\x07 it\n\x1b[2J next")
        == " to assemble it\n next"
    )


def test_state_is_replayed_from_events(database: Database, kb: KnowledgeBase) -> None:
    model = FakeChatModel().enqueue("Three days.")
    assistant = _assistant(database, kb, model)
    reply = assistant.handle(Message("standard shipping days?", "c1"))
    state = assistant.state("c1")
    assert state.turns == 1 and not state.handoff
    assert [s["chunk_id"] for s in state.last_sources] == [s.chunk_id for s in reply.sources]


def test_history_is_dropped_oldest_first_to_fit_the_prompt_budget() -> None:
    from dialog.prompt import build_messages
    from knowledge.base import Hit

    hits = [Hit(1, 0.9, "Returns are accepted within thirty days.", "r.md", "Returns", "")]
    history = [
        UserUttered("first question " * 20),
        BotUttered("first answer " * 20),
        UserUttered("second"),
        BotUttered("ok"),
    ]
    roomy = build_messages("q?", hits, history, history_turns=2)
    assert len(roomy) == 6
    from assistant_core.openai_client import byte_bound

    tight = build_messages("q?", hits, history, history_turns=2, max_tokens=byte_bound(roomy) - 10)
    assert [m["content"] for m in tight[1:-1]] == ["second", "ok"]
    assert tight[-1] == roomy[-1] and tight[0] == roomy[0]


def test_passages_are_dropped_lowest_first_when_history_is_not_enough() -> None:
    from assistant_core.openai_client import byte_bound
    from dialog.prompt import build_messages
    from knowledge.base import Hit

    hits = [Hit(i, 0.9, f"passage {i} " + "text " * 100, "r.md", "R", "") for i in (1, 2, 3)]
    roomy = build_messages("q?", hits, [], history_turns=2)
    tight = build_messages("q?", hits, [], max_tokens=byte_bound(roomy) - 10)
    assert "passage 1" in tight[-1]["content"] and "passage 2" in tight[-1]["content"]
    assert "passage 3" not in tight[-1]["content"] and byte_bound(tight) <= byte_bound(roomy) - 10
    tiny = build_messages("q?", hits, [], max_tokens=10)
    assert "passage 1" in tiny[-1]["content"] and tiny[-1]["content"].endswith("Question: q?")
