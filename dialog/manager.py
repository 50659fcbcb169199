"""The dialog manager: one turn from an incoming message to stored events and a (streamed) reply.

A turn, under the conversation's lock, runs the steps of `dialog.steps` in order:
  guard -> label sentiment/urgency -> handoff? stay silent -> slash command? dispatch ->
  pending yes/no question? resolve -> rule extraction (slots, corrections) -> explicit request for a
  person? hand off -> active form? continue it -> route (domain triggers, then the LM by function
  calling or constrained JSON) to a tool/form -> else answer from the knowledge base, grounded.
Every step returns events (never mutates stored state); they are appended with the bot's reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant_core.chat_model import ChatModel
from assistant_core.errors import AssistantError
from dialog import events as ev
from dialog.builtins import builtin_commands
from dialog.commands import CommandRegistry, Outcome
from dialog.domain import Domain
from dialog.errors import EventNotFound
from dialog.guard import check_message
from dialog.locking import Held, TurnLocks, locks_for
from dialog.messages import Message, Reply
from dialog.protocols import ConversationStore
from dialog.quotes import Embed, QuotePicker
from dialog.redelivery import delivered_before
from dialog.sentiment import label_turn
from dialog.state import ConversationState
from dialog.steps.actions import Action, build_actions
from dialog.steps.answer import AnswerPlan, plan_answer
from dialog.steps.commands import allowed_in_handoff, run_command
from dialog.steps.confirmation import resolve_pending
from dialog.steps.extraction import fill_by_rules
from dialog.steps.forms import continue_form, start_action
from dialog.steps.handoff import asks_for_person, start_handoff
from dialog.steps.reply import fixed_reply, streamed_answer
from dialog.steps.routing import Route, Router
from dialog.steps.services import AnswerHook, Services, TurnOptions
from dialog.tools import ToolRegistry
from dialog.turn import Turn
from dialog.turnwork import TurnWork
from knowledge.protocols import Retriever

ErasureHook = Callable[[str], None]
"""Called with a conversation id when it is erased, to delete data derived from it elsewhere."""


class Assistant:
    """Handles messages: commands, forms, tools, grounded answers, handoff; every step an event.

    >>> assistant = Assistant(store, knowledge, model, domain=Domain.load(path), tools=my_tools())
    >>> assistant.handle(Message("Where is my order AB-1042?", "c1")).answer
    'Order AB-1042 has shipped …'
    >>> assistant.state("c1").slots["order_id"].extractor
    'rule:order_id'
    """

    def __init__(
        self,
        store: ConversationStore,
        knowledge: Retriever,
        model: ChatModel,
        options: TurnOptions | None = None,
        *,
        domain: Domain | None = None,
        tools: ToolRegistry | None = None,
        commands: CommandRegistry | None = None,
        locks: TurnLocks | None = None,
        tool_context: dict[str, Any] | None = None,
        erasure_hooks: list[ErasureHook] | None = None,
        embed: Embed | None = None,
    ) -> None:
        self.store = store
        self.knowledge = knowledge
        self.model = model
        self.options = options or TurnOptions()
        self.domain = domain or Domain()
        self.tools = tools or ToolRegistry()
        self.commands = commands or builtin_commands()
        self.locks = locks or locks_for(store.sessions.kw["bind"])
        self.tool_context = tool_context or {}
        self.erasure_hooks = list(erasure_hooks or [])
        self.quotes = QuotePicker(embed, min_similarity=self.options.min_quote_similarity)
        self.answer_hooks: list[AnswerHook] = []
        self.actions = build_actions(self.domain, self.tools)
        self.router = Router()

    # ---- public interface -------------------------------------------------------------------

    def handle(self, message: Message) -> Reply:
        """Run a whole turn and return the reply."""
        return self.start(message).reply

    def start(self, message: Message) -> Turn:
        """Take the conversation's lock, run the turn, and return it; an answer streams as it is
        read."""
        verdict = check_message(message.text, max_chars=self.options.max_message_chars)
        if verdict.refusal:
            return Turn(message.conversation_id, [], iter([verdict.refusal]))
        held = self.locks.acquire(message.conversation_id, timeout=self.options.lock_timeout_s)
        try:
            return self._start_locked(message, verdict.text, held)
        except BaseException:
            held.release()
            raise

    def history(self, conversation_id: str) -> list[ev.Event]:
        return self.store.events(conversation_id)

    def state(self, conversation_id: str) -> ConversationState:
        """The conversation's state: the newest snapshot plus the events after it."""
        return self.store.load_state(conversation_id)

    def feedback(self, conversation_id: str, event_seq: int | None, positive: bool) -> int:
        """Record a thumbs up/down on one event (or the whole conversation); returns the event's
        seq."""
        self.store.require(conversation_id)
        with self.locks.acquire(conversation_id, timeout=self.options.lock_timeout_s):
            if event_seq is not None:
                last = self.store.load_state(conversation_id).seq
                if not 1 <= event_seq <= last:
                    raise EventNotFound(f"conversation {conversation_id} has no event {event_seq}")
            return self.store.append(conversation_id, [ev.FeedbackGiven(positive, event_seq)])

    def hand_back(self, conversation_id: str, agent: str = "") -> bool:
        """A human agent returns the conversation to the bot; False if it was not with a human."""
        self.store.require(conversation_id)
        with self.locks.acquire(conversation_id, timeout=self.options.lock_timeout_s):
            if not self.store.load_state(conversation_id).handoff:
                return False
            self.store.append(conversation_id, [ev.HandedBack(agent)])
            return True

    def forget(self, conversation_id: str) -> int:
        """Erase the conversation and what was derived from it; returns how many events were
        deleted."""
        with self.locks.acquire(conversation_id, timeout=self.options.lock_timeout_s):
            return self._erase(conversation_id)

    def _erase(self, conversation_id: str) -> int:
        count = self.store.erase(conversation_id)
        for hook in self.erasure_hooks:
            hook(conversation_id)
        return count

    # ---- the turn ----------------------------------------------------------------------------

    def _services(self) -> Services:
        """This turn's view of the assistant (built per turn: `assistant.options = …` applies to
        the next one)."""
        return Services(
            self.store,
            self.knowledge,
            self.model,
            self.options,
            self.domain,
            self.commands,
            self.actions,
            self.quotes,
            self.tool_context,
            self.answer_hooks,
        )

    def _start_locked(self, message: Message, text: str, held: Held) -> Turn:
        cid = message.conversation_id
        state, history = self.store.load_turn(
            cid, history=12 * max(self.options.history_turns, 1) + 24
        )
        earlier = delivered_before(history, message.delivery_id)
        if earlier is not None and earlier.answer is not None:
            held.release()  # delivered again: the stored answer, not a second turn
            return earlier.turn(cid, state.handoff)
        if earlier is not None:  # a crash interrupted this delivery's turn: resume it
            history = history[: earlier.index]
        label = label_turn(text)
        work = TurnWork(message, text, state, label, history)
        if earlier is None:
            work.add(
                ev.UserUttered(
                    text, message.channel, message.delivery_id, label.sentiment, label.urgency
                )
            )
        if state.handoff and not allowed_in_handoff(self.commands, text):
            self.store.append(cid, work.events, channel=message.channel)
            held.release()
            return Turn(cid, [], iter([]), handoff=True)
        services = self._services()
        decided = self._decide(services, work)
        if isinstance(decided, AnswerPlan):
            return streamed_answer(services, work, decided, held)
        work.add(*decided.events)
        if decided.erase:
            try:
                self._erase(cid)
            finally:
                held.release()
            return Turn(cid, [], iter([decided.text]))
        return fixed_reply(services, work, decided, held)

    def _decide(self, services: Services, work: TurnWork) -> Outcome | AnswerPlan:
        """The steps in order; the first that decides ends the turn."""
        if work.text.startswith("/"):
            return run_command(services, work)
        resolved = resolve_pending(services, work)
        if resolved is not None:
            return resolved
        requested = work.state.requested_slot
        found = fill_by_rules(services, work, requested)
        if asks_for_person(services.domain, work.text):
            return start_handoff(services, work, "the customer asked for a person")
        if work.label.sentiment == "angry":
            work.offer_handoff = True
        if work.state.active_form:
            return continue_form(services, work, requested, found)
        route = self.router.route(services, work, found)
        if route is not None:
            return start_action(services, work, route, found)
        return plan_answer(services, work)


__all__ = ["Action", "Assistant", "AssistantError", "Route", "Turn", "TurnOptions"]
