"""The dialog manager's parts: the turn lock around streaming, registries, feedback, erasure,
wiring."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydantic import BaseModel

from assistant.demo.shop import ReturnRow
from assistant_core.db import Database
from dialog import events as ev
from dialog.commands import CommandError
from dialog.errors import DialogError
from dialog.locking import TurnLockTimeout
from dialog.messages import Message
from dialog.tools import ToolContext, ToolRegistry, load_tools
from tests.dialog.conftest import ShopFactory
from tests.fakes import FakeChatModel

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
QUESTION = "How much does standard shipping cost?"


def test_the_lock_is_held_while_an_answer_streams_and_released_after(
    sqlite_db: Database, shop: ShopFactory
) -> None:
    assistant = shop(sqlite_db, FakeChatModel().enqueue("It costs 4.95 EUR."))
    turn = assistant.start(Message(QUESTION, "c1"))
    with pytest.raises(TurnLockTimeout):
        assistant.locks.acquire("c1", timeout=0.2)
    with assistant.locks.acquire("c2", timeout=0.2):
        pass
    assert turn.reply.answer == "It costs 4.95 EUR."
    with assistant.locks.acquire("c1", timeout=0.2):
        pass


def test_an_abandoned_turn_releases_the_lock(sqlite_db: Database, shop: ShopFactory) -> None:
    assistant = shop(sqlite_db, FakeChatModel().enqueue("never read"))
    turn = assistant.start(Message(QUESTION, "c1"))
    del turn
    gc.collect()
    with assistant.locks.acquire("c1", timeout=0.5):
        pass


def test_threads_on_one_conversation_take_turns(sqlite_db: Database, shop: ShopFactory) -> None:
    model = FakeChatModel().enqueue(*[f"answer {i}" for i in range(8)])
    assistant = shop(sqlite_db, model, summarize_after=100)
    threads = [
        threading.Thread(target=assistant.handle, args=(Message(QUESTION, "c1"),)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [e.type for e in assistant.history("c1")] == ["user", "bot"] * 8


def test_two_processes_on_one_conversation_never_interleave(
    database: Database, tmp_path: Path
) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.dialog.turn_worker", url, "shared", name, "4"], cwd=REPO
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    from dialog.store import SqlConversationStore

    events = SqlConversationStore(database.session).events("shared")
    assert len(events) == 16
    for user, bot in zip(events[::2], events[1::2], strict=True):
        assert isinstance(user, ev.UserUttered) and isinstance(bot, ev.BotUttered)
        assert bot.text == f"echo: {user.text}"


def test_feedback_and_hand_back_are_events(sqlite_db: Database, shop: ShopFactory) -> None:
    assistant = shop(sqlite_db, FakeChatModel().enqueue("4.95 EUR."))
    assistant.handle(Message(QUESTION, "c1"))
    assert assistant.feedback("c1", 2, False) == 3
    assert assistant.history("c1")[-1] == ev.FeedbackGiven(False, 2)
    with pytest.raises(DialogError):
        assistant.feedback("c1", 99, True)
    with pytest.raises(DialogError):
        assistant.feedback("nobody", None, True)
    assert assistant.hand_back("c1") is False


def test_handoff_brief_tells_the_agent_what_is_known(
    sqlite_db: Database, shop: ShopFactory
) -> None:
    assistant = shop(sqlite_db, FakeChatModel())
    assistant.handle(Message("I want to return order NW-1044", "c1"))
    reply = assistant.handle(Message("This is useless, get me a real person", "c1"))
    assert reply.handoff and reply.answer
    state = assistant.state("c1")
    assert state.handoff and "asked for a person" in state.handoff_reason
    brief = state.handoff_summary
    assert (
        "order_id=NW-1044 (rule:order_id)" in brief
        and "angry" in brief
        and "return request" in brief
    )
    assert "customer: I want to return order NW-1044" in brief


def test_forget_erases_the_conversation_and_detaches_business_records(
    sqlite_db: Database, shop: ShopFactory
) -> None:
    assistant = shop(sqlite_db, FakeChatModel())
    for text in ["I want to return order NW-1044", "itchy", "carla@example.com", "yes"]:
        assistant.handle(Message(text, "c1"))
    with sqlite_db.session() as session:
        assert session.query(ReturnRow).one().conversation_id == "c1"
    assert assistant.handle(Message("/forget", "c1")).answer.startswith("I have erased")
    (marker,) = assistant.history("c1")
    assert isinstance(marker, ev.ConversationErased) and marker.erased_events > 10
    assert assistant.state("c1").slots == {}
    with sqlite_db.session() as session:
        row = session.query(ReturnRow).one()
        assert row.conversation_id is None and row.order_id == "NW-1044"


class Args(BaseModel):
    order_id: str
    note: str = ""


def test_registries_check_what_is_registered() -> None:
    tools = ToolRegistry()

    @tools.tool(description="Look it up")
    def look(args: Args, ctx: ToolContext) -> dict[str, object]:
        return {"message": args.order_id}

    spec = tools.specs()[0]["function"]
    assert spec["name"] == "look" and spec["parameters"]["required"] == ["order_id"]
    assert tools.get("look").required() == ["order_id"]  # type: ignore[union-attr]
    with pytest.raises(DialogError):
        tools.tool()(look)
    with pytest.raises(DialogError, match="pydantic"):
        tools.tool()(lambda args, ctx: {})  # type: ignore[arg-type, misc]
    with pytest.raises(DialogError, match="cannot load"):
        load_tools("no.such.module:tools")
    assert len(load_tools("assistant.demo.shop:shop_tools")) == 3


def test_command_arguments_are_validated(sqlite_db: Database, shop: ShopFactory) -> None:
    commands = shop(sqlite_db, FakeChatModel()).commands
    command, args = commands.parse("/translate  Brazilian Portuguese")
    assert command.name == "translate" and args.language == "Brazilian Portuguese"  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="takes no arguments"):
        commands.parse("/reset now")
    with pytest.raises(CommandError, match="Usage: /translate LANGUAGE"):
        commands.parse("/translate 42")


def test_a_form_needs_its_submit_tool(sqlite_db: Database, shop: ShopFactory) -> None:
    from dialog.domain import Domain
    from dialog.manager import Assistant

    assistant = shop(sqlite_db, FakeChatModel())
    assert "create_return" not in assistant.actions and "return_request" in assistant.actions
    with pytest.raises(DialogError, match="not a registered tool"):
        Assistant(
            assistant.store,
            assistant.knowledge,
            assistant.model,
            domain=assistant.domain,
            tools=ToolRegistry(),
        )
    assert (
        Assistant(assistant.store, assistant.knowledge, assistant.model, domain=Domain()).actions
        == {}
    )


def test_wiring_builds_the_demo_shop_or_a_plain_assistant(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.wiring import Components
    from assistant_core.settings import load_settings
    from tests.fakes import HashingEmbedder

    parts = Components(
        load_settings(), {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()}
    )
    assert parts.assistant.handle(Message("where is my order NW-1043?", "c1")).answer.startswith(
        "Order NW-1043"
    )
    parts.close()
    monkeypatch.setenv("ASSISTANT_DOMAIN", "none")
    plain = Components(
        load_settings(), {"chat_model": FakeChatModel(), "embedder": HashingEmbedder()}
    )
    assert plain.assistant.actions == {}
    plain.close()


def test_many_concurrent_turns_do_not_starve_the_connection_pool(
    database: Database, shop: ShopFactory
) -> None:
    model = FakeChatModel().enqueue(*["ok"] * 24)
    assistant = shop(database, model, summarize_after=100)
    turns = [
        assistant.start(Message(QUESTION, f"c{i}")) for i in range(24)
    ]  # 24 locks held at once
    assert [t.reply.answer for t in turns] == ["ok"] * 24
