"""The steps of a turn on their own: each returns its events in its Outcome instead of changing
the turn, and the manager stores them in order."""

from __future__ import annotations

import pytest

from assistant_core.db import Database
from dialog import events as ev
from dialog.commands import CommandContext, NoArgs, Outcome
from dialog.messages import Message
from dialog.sentiment import label_turn
from dialog.state import ConversationState
from dialog.steps.commands import run_command
from dialog.steps.confirmation import resolve_pending
from dialog.steps.forms import next_step
from dialog.steps.services import Services
from dialog.turnwork import TurnWork
from tests.dialog.conftest import ShopFactory
from tests.fakes import FakeChatModel

pytestmark = pytest.mark.unit


def _services(sqlite_db: Database, shop: ShopFactory, model: FakeChatModel) -> Services:
    return shop(sqlite_db, model)._services()


def _work(text: str, *earlier: ev.Event) -> TurnWork:
    work = TurnWork(Message(text, "c1"), text, ConversationState("c1"), label_turn(text))
    work.add(*earlier, ev.UserUttered(text))
    return work


def test_a_command_returns_its_events_and_leaves_the_turn_alone(
    sqlite_db: Database, shop: ShopFactory
) -> None:
    services = _services(sqlite_db, shop, FakeChatModel())
    work = _work("/reset", ev.SlotSet("order_id", "NW-1042", 1, "NW-1042", "rule:order_id", 0.99))
    before = list(work.events)
    outcome = run_command(services, work)
    assert outcome.events == [ev.CommandRun("reset", {}), ev.ConversationRestarted()]
    assert work.events == before and "order_id" in work.state.slots


def test_translate_returns_the_language_it_sets(sqlite_db: Database, shop: ShopFactory) -> None:
    services = _services(sqlite_db, shop, FakeChatModel())
    work = _work("/translate german")
    outcome = run_command(services, work)
    assert outcome.events[1:] == [ev.LanguageSet("German")] and work.state.language == ""


def test_handoff_command_returns_the_handoff_with_its_brief(
    sqlite_db: Database, shop: ShopFactory
) -> None:
    services = _services(sqlite_db, shop, FakeChatModel())
    work = _work("/handoff")
    outcome = run_command(services, work)
    started = outcome.events[-1]
    assert outcome.handoff and isinstance(started, ev.HandoffStarted)
    assert "(/handoff)" in started.summary and not work.state.handoff


def test_a_custom_commands_events_are_stored_after_the_command(
    sqlite_db: Database, shop: ShopFactory
) -> None:
    assistant = shop(sqlite_db, FakeChatModel())

    @assistant.commands.command("german", "Answer in German from now on")
    def german(ctx: CommandContext, args: NoArgs) -> Outcome:
        return Outcome(f"Noted, {ctx.work.state.turns}.", events=[ev.LanguageSet("German")])

    reply = assistant.handle(Message("/german", "c1"))
    assert reply.answer == "Noted, 1."
    assert [e.type for e in assistant.history("c1")] == ["user", "command", "language", "bot"]
    assert assistant.state("c1").language == "German"


def test_the_next_form_step_returns_its_question_as_events(
    sqlite_db: Database, shop: ShopFactory
) -> None:
    services = _services(sqlite_db, shop, FakeChatModel())
    work = _work("I want to return something")
    outcome = next_step(services, work, services.actions["return_request"])
    assert outcome.asks and outcome.text == services.slot_spec("order_id").prompt
    assert outcome.events == [ev.FormStarted("return_request"), ev.SlotRequested("order_id")]
    assert work.state.active_form is None


def test_without_a_pending_question_the_next_step_runs(
    sqlite_db: Database, shop: ShopFactory
) -> None:
    services = _services(sqlite_db, shop, FakeChatModel())
    work = _work("yes")
    assert resolve_pending(services, work) is None and work.events == [ev.UserUttered("yes")]
