"""The dialog manager: one turn from an incoming message to stored events and a (streamed) reply.

A turn, under the conversation's lock:
  guard -> label sentiment/urgency -> handoff? stay silent -> slash command? dispatch ->
  pending yes/no question? resolve -> rule extraction (slots, corrections) -> explicit request for a
  person? hand off -> active form? continue it -> route (domain triggers, then the LM by function
  calling or constrained JSON) to a tool/form -> else answer from the knowledge base, grounded.
Every step returns events (never mutates stored state); they are appended with the bot's reply.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from assistant.errors import AssistantError, LLMError, LLMOverloaded, LLMTimeout, LLMUnavailable
from assistant.llm.protocol import ChatModel
from dialog import events as ev
from dialog.answer import EXTRACTIVE_INTRO, GroundedAnswer
from dialog.builtins import builtin_commands
from dialog.commands import CommandContext, CommandError, CommandRegistry, Outcome
from dialog.domain import Domain, SlotSpec
from dialog.errors import DialogError, EventNotFound
from dialog.extract import RULES, extract_rules, extract_with_model
from dialog.fallback import fallback_answer
from dialog.guard import check_message
from dialog.locking import Held, TurnLocks, locks_for
from dialog.messages import Grounding, Message, Reply, Source
from dialog.prompt import KB_UNAVAILABLE, NO_ANSWER, SYSTEM_PROMPT, build_messages
from dialog.quotes import Embed, QuotePicker
from dialog.relevance import judge
from dialog.safety import OutputScrubber
from dialog.sentiment import label_turn
from dialog.state import ConversationState
from dialog.store import ConversationStore
from dialog.summary import agent_brief, summarize, transcript
from dialog.tools import (
    Tool,
    ToolContext,
    ToolError,
    ToolRegistry,
    describe_validation,
    parse_arguments,
)
from dialog.turnwork import TurnWork
from knowledge.base import Hit, KnowledgeBase
from knowledge.errors import KnowledgeError

log = logging.getLogger(__name__)
_YES = re.compile(
    r"^\s*(yes|y|yeah|yep|yup|sure|ok|okay|please do|go ahead|do it|confirm\w*|correct|right|"
    r"that's right)\b",
    re.I,
)
_NO = re.compile(r"^\s*(no|n|nope|nah|cancel|don't|do not|stop|wrong|not right|incorrect)\b", re.I)
_CANCEL = re.compile(r"^\s*(cancel|stop|never ?mind|forget it|quit)\b", re.I)
_HUMAN = re.compile(
    r"\b(human|real person|a person|someone real|live agent|an agent|a representative|"
    r"customer service rep\w*|"
    r"(talk|speak|chat) (to|with) (someone|somebody|a (person|human|manager)))\b",
    re.I,
)

HANDOFF_TEXT = (
    "I'm passing you to a colleague now. They can see our conversation and will reply here."
)
OFFER_TEXT = (
    "I'm sorry this has been frustrating. Would you like me to connect you with a person? (yes/no)"
)
ROUTER_PROMPT = (
    "You are the router of a customer-support assistant. If the customer asks for one of the "
    "tools, call it with the arguments from the message. Otherwise do not call a tool."
)


@dataclass(frozen=True)
class TurnOptions:
    """Knobs of one turn, from settings."""

    top_k: int = 3
    min_score: float = 0.2
    history_turns: int = 2
    max_new_tokens: int = 160
    temperature: float = 0.0
    max_message_chars: int = 4000
    lock_timeout_s: float = 60.0
    summarize_after: int = 4
    """Summarise once this many turns lie beyond the history window."""
    max_prompt_chars: int = 12_000
    """About 3,000 tokens: older history is dropped beyond it (the summary keeps its gist)."""
    route_with_model: bool = True
    route_requires_slot: bool = True
    """Ask the LM to route only when the message carries a value some action needs (an order id, an
    email): FAQ questions then cost no routing call, and a small model cannot divert them to a
    tool."""
    extract_with_model: bool = True
    check_relevance: bool = True
    """Abstain unless the passages stand out from the knowledge base, cover the question's words
    and hold the kind of value it asks for (dialog.relevance); off: any passage above
    `min_score` is answered from."""
    allowed_link_hosts: tuple[str, ...] = ()
    """Hosts the answer may link to; links elsewhere are removed as the answer streams."""


@dataclass(frozen=True)
class Action:
    """Something the assistant can do: fill `slots`, then run `tool` (a form, or a tool on its
    own)."""

    name: str
    description: str
    slots: list[str]
    tool: Tool
    triggers: list[str] = field(default_factory=list)
    done: str = ""

    def spec(self) -> dict[str, Any]:
        """The function-calling spec the LM chooses from."""
        spec = self.tool.spec()
        spec["function"] = {**spec["function"], "name": self.name, "description": self.description}
        return spec


@dataclass(frozen=True)
class Route:
    action: str
    arguments: dict[str, Any]
    chosen_by: str


Settled = tuple[str, list[Source], Grounding]
"""A streamed answer as it is finally stored: its text, its sources (with quotes), the check."""


@dataclass
class _AnswerPlan:
    messages: list[dict[str, Any]]
    sources: list[Source]
    suffix: str = ""
    relevance: dict[str, object] = field(default_factory=dict)


class Turn:
    """A turn in progress: its sources are known at once, its text arrives as you iterate.

    >>> turn = assistant.start(Message("How long does shipping take?"))
    >>> for delta in turn: print(delta, end="")
    >>> turn.reply.sources[0].source
    """

    def __init__(
        self,
        conversation_id: str,
        sources: list[Source],
        deltas: Iterator[str],
        finish: Callable[[str], None] | None = None,
        fail: Callable[[str, str], None] | None = None,
        *,
        handoff: bool = False,
        release: Callable[[], None] | None = None,
        recover: Callable[[LLMError], str] | None = None,
        settle: Callable[[str], Settled] | None = None,
        grounding: Grounding | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.sources = sources
        self.handoff = handoff
        self.grounding = grounding or Grounding()
        self._settle = settle
        self._deltas = deltas
        self._finish = finish
        self._fail = fail
        self._release = release
        self._recover = recover
        self._failed = False
        self._parts: list[str] = []
        self._reply: Reply | None = None

    def __iter__(self) -> Iterator[str]:
        if self._reply is not None:
            return
        try:
            try:
                for delta in self._deltas:
                    self._parts.append(delta)
                    yield delta
                answer = "".join(self._parts).strip()
                if self._settle is not None:
                    answer, self.sources, self.grounding = self._settle(answer)
            except LLMError as err:
                if self._recover is None:
                    raise
                partial = "".join(self._parts)
                self._record_failure(err, partial)
                answer = self._recover(err)
                yield ("\n\n" if partial.strip() else "") + answer
            if self._finish:
                self._finish(answer)
            self._reply = Reply(
                self.conversation_id, answer, self.sources, self.handoff, self.grounding
            )
        except BaseException as err:
            if self._reply is None:
                self._record_failure(err, "".join(self._parts))
            raise
        finally:
            self.close()

    def _record_failure(self, err: BaseException, partial: str) -> None:
        """Mark the unfinished answer failed, once; it is never stored as an answer."""
        if self._fail and not self._failed:
            self._failed = True
            self._fail(type(err).__name__ + (f": {err}" if str(err) else ""), partial)

    def close(self) -> None:
        """Release the conversation's lock (iterating to the end does it; so does dropping the
        turn)."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    @property
    def reply(self) -> Reply:
        """The finished reply; iterates to the end first if nobody has."""
        if self._reply is None:
            for _ in self:
                pass
        assert self._reply is not None
        return self._reply


ErasureHook = Callable[[str], None]
"""Called with a conversation id when it is erased, to delete data derived from it elsewhere."""
AnswerHook = Callable[[Grounding], None]
"""Called with the grounding check of every answered (or abstained) question: metrics."""


class Assistant:
    """Handles messages: commands, forms, tools, grounded answers, handoff; every step an event.

    >>> assistant = Assistant(store, knowledge, model, domain=Domain.load(path), tools=shop_tools())
    >>> assistant.handle(Message("Where is my order NW-1042?", "c1")).answer
    'Order NW-1042 has shipped …'
    >>> assistant.state("c1").slots["order_id"].extractor
    'rule:order_id'
    """

    def __init__(
        self,
        store: ConversationStore,
        knowledge: KnowledgeBase,
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
        self.quotes = QuotePicker(embed)
        self.answer_hooks: list[AnswerHook] = []
        self.actions = self._build_actions()
        self._native_tools: bool | None = None

    def _build_actions(self) -> dict[str, Action]:
        actions: dict[str, Action] = {}
        for name, form in self.domain.forms.items():
            tool = self.tools.get(form.submit)
            if tool is None:
                raise DialogError(
                    f"form {name!r} submits to {form.submit!r}, which is not a registered tool"
                )
            actions[name] = Action(
                name, form.description, list(form.slots), tool, form.triggers, form.done
            )
        submits = {form.submit for form in self.domain.forms.values()}
        for tool in self.tools:
            if tool.name in submits:
                continue  # reached through its form, which collects and checks its arguments
            hints = self.domain.tools.get(tool.name)
            triggers = hints.triggers if hints else []
            actions.setdefault(
                tool.name, Action(tool.name, tool.description, tool.required(), tool, triggers)
            )
        return actions

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

    def _start_locked(self, message: Message, text: str, held: Held) -> Turn:
        cid = message.conversation_id
        state, history = self.store.load_turn(
            cid, history=12 * max(self.options.history_turns, 1) + 24
        )
        label = label_turn(text)
        work = TurnWork(message, text, state, label, history)
        work.add(
            ev.UserUttered(
                text, message.channel, message.delivery_id, label.sentiment, label.urgency
            )
        )
        if state.handoff and not self._handoff_command(text):
            self.store.append(cid, work.events, channel=message.channel)
            held.release()
            return Turn(cid, [], iter([]), handoff=True)
        decided = self._decide(work)
        if isinstance(decided, _AnswerPlan):
            return self._stream(work, decided, held)
        return self._finish_fixed(work, decided, held)

    def _answered(self, grounding: Grounding) -> None:
        for hook in self.answer_hooks:
            try:
                hook(grounding)
            except Exception:  # noqa: BLE001 - a metrics hook never fails a turn
                log.exception("answer hook failed")

    def _handoff_command(self, text: str) -> bool:
        if not text.startswith("/"):
            return False
        command = self.commands.get(text[1:].split(maxsplit=1)[0].lower() if len(text) > 1 else "")
        return command is not None and command.allowed_in_handoff

    def _finish_fixed(self, work: TurnWork, outcome: Outcome, held: Held) -> Turn:
        cid, channel = work.conversation_id, work.message.channel
        try:
            if outcome.erase:
                self._erase(cid)
                return Turn(cid, [], iter([outcome.text]))
            text = outcome.text
            if (
                work.offer_handoff
                and not outcome.asks
                and not work.state.handoff
                and work.state.pending is None
            ):
                text = f"{text}\n\n{OFFER_TEXT}" if text else OFFER_TEXT
                work.add(ev.ConfirmationRequested("handoff"))
            refs = _refs(outcome.sources)
            check = outcome.grounding.as_json() if outcome.grounding else {}
            work.add(ev.BotUttered(text, refs, check))
            if outcome.grounding is not None:
                self._answered(outcome.grounding)
            self.store.append(cid, work.events, channel=channel)
        finally:
            held.release()
        return Turn(
            cid,
            outcome.sources,
            iter([text] if text else []),
            handoff=work.state.handoff,
            grounding=outcome.grounding,
        )

    def _stream(self, work: TurnWork, plan: _AnswerPlan, held: Held) -> Turn:
        cid, channel = work.conversation_id, work.message.channel
        self.store.append(cid, work.events, channel=channel)
        suffix = plan.suffix
        closing: list[ev.Event] = []
        if work.offer_handoff and not suffix:
            suffix, closing = OFFER_TEXT, [ev.ConfirmationRequested("handoff")]
        answer = GroundedAnswer(
            work.text,
            plan.sources,
            self.quotes,
            conversation=_said_by_customer(work),
            intro=self.domain.response("extractive", EXTRACTIVE_INTRO),
            suffix=suffix,
            relevance=plan.relevance,
        )
        deltas = self.model.stream(
            plan.messages,
            max_tokens=self.options.max_new_tokens,
            temperature=self.options.temperature,
        )
        deltas = OutputScrubber(
            allowed_hosts=self.options.allowed_link_hosts, secret_text=SYSTEM_PROMPT
        ).scrub(deltas)

        def finish(text: str) -> None:
            offer = closing or (
                [ev.ConfirmationRequested("handoff")] if answer.asks_for_person else []
            )
            said = ev.BotUttered(text, _refs(turn.sources), turn.grounding.as_json())
            self.store.append(cid, [said, *offer], channel=channel)
            self._answered(turn.grounding)

        def fail(reason: str, partial: str) -> None:
            self.store.append(cid, [ev.AnswerFailed(reason, partial)], channel=channel)

        def recover(err: LLMError) -> str:
            return fallback_answer(err, plan.sources)

        turn = Turn(
            cid,
            plan.sources,
            answer.stream(deltas),
            finish,
            fail,
            release=held.release,
            recover=recover,
            settle=answer.settle,
        )
        return turn

    def _decide(self, work: TurnWork) -> Outcome | _AnswerPlan:
        if work.text.startswith("/"):
            return self._command(work)
        if work.state.pending is not None:
            resolved = self._resolve_pending(work)
            if resolved is not None:
                return resolved
        requested = work.state.requested_slot
        found = self._extract(work, requested)
        if _HUMAN.search(work.text) or any(
            re.search(t, work.text, re.I) for t in self.domain.handoff_triggers
        ):
            return self.start_handoff(work, "the customer asked for a person")
        if work.label.sentiment == "angry":
            work.offer_handoff = True
        if work.state.active_form:
            return self._continue_form(work, requested, found)
        route = self._route(work, found)
        if route is not None:
            return self._start_action(work, route, found)
        return self._answer(work)

    # ---- commands ------------------------------------------------------------------------------

    def _command(self, work: TurnWork) -> Outcome:
        try:
            command, args = self.commands.parse(work.text)
        except CommandError as err:
            return Outcome(str(err))
        work.add(ev.CommandRun(command.name, args.model_dump()))
        return command.handler(CommandContext(self, work), args)

    # ---- handoff -------------------------------------------------------------------------------

    def start_handoff(self, work: TurnWork, reason: str) -> Outcome:
        """Move the conversation to a human and write the agent's brief."""
        brief = agent_brief(work.state, reason, [*work.history, *work.events])
        work.add(ev.HandoffStarted(reason, brief))
        return Outcome(self.domain.response("handoff", HANDOFF_TEXT), handoff=True, asks=True)

    # ---- yes/no questions ----------------------------------------------------------------------

    def _resolve_pending(self, work: TurnWork) -> Outcome | None:
        pending = work.state.pending
        assert pending is not None
        yes, no = bool(_YES.match(work.text)), bool(_NO.match(work.text))
        work.add(ev.ConfirmationResolved(yes and not no))
        if pending.kind == "handoff":
            if yes:
                return self.start_handoff(work, "the customer accepted the offer of a person")
            return Outcome("Alright, I'm here if you need anything else.") if no else None
        action = self.actions.get(
            pending.name if pending.kind == "tool" else work.state.active_form or ""
        )
        if pending.kind == "slot":
            slot = work.state.slots.get(pending.name)
            if yes and slot is not None:
                work.add(
                    ev.SlotSet(
                        pending.name,
                        slot.value,
                        slot.turn,
                        slot.span,
                        f"{slot.extractor}+confirmed",
                        1.0,
                    )
                )
                return self._next_step(work, action) if action else Outcome("Thanks, noted.")
            if no:
                work.add(ev.SlotCleared(pending.name), ev.SlotRequested(pending.name))
                return Outcome(self._slot_spec(pending.name).prompt, asks=True)
            return None
        if pending.kind == "tool" and action is not None:
            if yes:
                return self._run_tool(work, action, dict(pending.arguments), "user-confirmed")
            if no:
                if work.state.active_form:
                    work.add(ev.FormEnded(work.state.active_form, "cancelled"))
                return Outcome("OK, I haven't changed anything.")
        return None

    # ---- extraction and forms --------------------------------------------------------------------

    def _slot_spec(self, name: str) -> SlotSpec:
        return self.domain.slots.get(name) or SlotSpec(
            prompt=f"What is the {name.replace('_', ' ')}?"
        )

    def _extract(self, work: TurnWork, requested: str | None) -> list[str]:
        """Rule extraction over every rule-typed slot; a new value replaces the old (a
        correction)."""
        filled = []
        for found in extract_rules(work.text, self.domain.slot_types(), requested=requested):
            value = self._slot_spec(found.slot).validate_value(found.value)
            if value is None:
                continue
            work.add(
                ev.SlotSet(
                    found.slot, value, work.turn, found.span, found.extractor, found.confidence
                )
            )
            filled.append(found.slot)
        return filled

    def _fill_with_model(self, work: TurnWork, action: Action) -> list[str]:
        """The LM layer: free-text slots of the action still missing, with JSON-schema output."""
        missing = {
            name: (self._slot_spec(name).description or self._slot_spec(name).prompt)
            for name in action.slots
            if name not in work.state.slots and self._slot_spec(name).type not in RULES
        }
        if not missing or not self.options.extract_with_model:
            return []
        filled = []
        for found in extract_with_model(self.model, work.text, missing):
            value = self._slot_spec(found.slot).validate_value(found.value)
            if value is not None:
                work.add(
                    ev.SlotSet(
                        found.slot, value, work.turn, found.span, found.extractor, found.confidence
                    )
                )
                filled.append(found.slot)
        return filled

    def _continue_form(
        self, work: TurnWork, requested: str | None, found: list[str]
    ) -> Outcome | _AnswerPlan:
        form = work.state.active_form
        action = self.actions.get(form or "")
        if action is None:
            work.add(ev.FormEnded(form or "", "failed"))
            return self._answer(work)
        if _CANCEL.match(work.text):
            work.add(ev.FormEnded(action.name, "cancelled"))
            return Outcome(f"OK, I've stopped: {action.description.lower()}.")
        if requested and requested not in found:
            spec = self._slot_spec(requested)
            if "?" in work.text:  # a question in the middle of the form: answer it, then ask again
                return self._answer(work, suffix=spec.prompt)
            if found:  # the message corrected another slot; the next step asks again
                return self._next_step(work, action)
            if spec.type in RULES:
                work.add(ev.SlotRequested(requested))
                return Outcome(f"{spec.invalid} {spec.prompt}", asks=True)
            value = spec.validate_value(work.text)
            if value is None:
                work.add(ev.SlotRequested(requested))
                return Outcome(f"{spec.invalid} {spec.prompt}", asks=True)
            work.add(ev.SlotSet(requested, value, work.turn, work.text, "requested_slot", 0.9))
        return self._next_step(work, action)

    def _start_action(self, work: TurnWork, route: Route, found: list[str]) -> Outcome:
        action = self.actions[route.action]
        for name, raw in route.arguments.items():
            if name in found or raw in (None, ""):
                continue
            value = self._slot_spec(name).validate_value(raw)
            if value is None:
                continue
            quoted = str(raw) if str(raw).lower() in work.text.lower() else ""
            work.add(
                ev.SlotSet(name, value, work.turn, quoted, route.chosen_by, 0.85 if quoted else 0.5)
            )
        if len(work.text.split()) >= 8:
            self._fill_with_model(work, action)
        return self._next_step(work, action, route.chosen_by)

    def _next_step(self, work: TurnWork, action: Action, chosen_by: str = "") -> Outcome:
        """Ask for the next missing slot, confirm a doubtful one or a side effect, or run the
        tool."""
        for name in action.slots:
            slot = work.state.slots.get(name)
            if slot is None:
                self._activate(work, action)
                work.add(ev.SlotRequested(name))
                return Outcome(self._slot_spec(name).prompt, asks=True)
            if slot.confidence < self.domain.confirm_below:
                self._activate(work, action)
                work.add(ev.ConfirmationRequested("slot", name, {"value": slot.value}))
                label = name.replace("_", " ")
                return Outcome(
                    f'Just to check: is your {label} "{slot.value}"? (yes/no)', asks=True
                )
        arguments = {
            n: work.state.slot(n) for n in action.tool.fields() if work.state.slot(n) is not None
        }
        try:
            action.tool.validate(arguments)
        except ValidationError as err:
            bad = str(err.errors()[0]["loc"][0]) if err.errors()[0]["loc"] else ""
            if bad in action.tool.fields():
                self._activate(work, action)
                work.add(ev.SlotCleared(bad), ev.SlotRequested(bad))
                spec = self._slot_spec(bad)
                return Outcome(f"{spec.invalid} {spec.prompt}", asks=True)
            work.add(ev.ToolRejected(action.tool.name, describe_validation(err)))
            return Outcome("Sorry, I couldn't do that.")
        if action.tool.side_effects:
            self._activate(work, action)
            work.add(ev.ConfirmationRequested("tool", action.name, arguments))
            summary = (
                action.tool.confirm.format_map(_Blank(arguments))
                if action.tool.confirm
                else action.description
            )
            return Outcome(f"{summary} Shall I go ahead? (yes/no)", asks=True)
        return self._run_tool(work, action, arguments, chosen_by)

    def _activate(self, work: TurnWork, action: Action) -> None:
        if work.state.active_form != action.name:
            work.add(ev.FormStarted(action.name))

    def _run_tool(
        self, work: TurnWork, action: Action, arguments: dict[str, Any], chosen_by: str
    ) -> Outcome:
        call_id = uuid.uuid4().hex[:12]
        tool = action.tool
        work.add(ev.ToolCalled(call_id, tool.name, arguments, chosen_by))
        context = ToolContext(work.conversation_id, self.store.sessions, self.tool_context)
        try:
            result = tool.run(arguments, context)
        except ToolError as err:
            work.add(ev.ToolResult(call_id, tool.name, False, error=str(err)))
            self._end(work, action, "failed")
            return Outcome(str(err))
        except ValidationError as err:
            work.add(ev.ToolResult(call_id, tool.name, False, error=describe_validation(err)))
            self._end(work, action, "failed")
            return Outcome("Sorry, I couldn't do that.")
        work.add(ev.ToolResult(call_id, tool.name, True, result))
        self._end(work, action, "completed")
        message = str(result.get("message") or "")
        if action.done:
            message = action.done.format_map(_Blank({**arguments, **result}))
        return Outcome(message or "Done.")

    def _end(self, work: TurnWork, action: Action, outcome: str) -> None:
        if work.state.active_form == action.name:
            work.add(ev.FormEnded(action.name, outcome))

    # ---- routing -------------------------------------------------------------------------------

    def _route(self, work: TurnWork, found: list[str]) -> Route | None:
        """Domain triggers first (cheap, exact), then the LM: native function calling, else
        constrained JSON."""
        for action in self.actions.values():
            if any(re.search(t, work.text, re.I) for t in action.triggers):
                return Route(action.name, {}, "rule:trigger")
        if not self.actions or not self.options.route_with_model:
            return None
        if self.options.route_requires_slot and not any(
            set(a.slots) & set(found) for a in self.actions.values()
        ):
            return None
        if self._native_tools is not False:
            try:
                completion = self.model.complete(
                    [
                        {"role": "system", "content": ROUTER_PROMPT},
                        {"role": "user", "content": work.text},
                    ],
                    max_tokens=128,
                    tools=[a.spec() for a in self.actions.values()],
                )
            except (LLMUnavailable, LLMTimeout, LLMOverloaded):
                return None  # the server is in trouble: answer (the answer path reports it)
            except LLMError:
                self._native_tools = False  # it answered, but cannot call tools
            else:
                self._native_tools = True
                return self._route_from_call(work, completion.tool_calls)
        return self._route_with_json(work, found)

    def _route_from_call(self, work: TurnWork, calls: list[Any]) -> Route | None:
        if not calls:
            return None
        call = calls[0]
        if call.name not in self.actions:
            work.add(ev.ToolRejected(call.name, "not a registered tool"))
            return None
        try:
            arguments = parse_arguments(call.arguments)
        except ToolError as err:
            work.add(ev.ToolRejected(call.name, str(err)))
            return None
        return Route(call.name, arguments, "lm:function_call")

    def _route_with_json(self, work: TurnWork, found: list[str]) -> Route | None:
        """A server without tools: pick an action name under a JSON-schema enum.

        A small model picks a tool for almost anything, so its choice counts only when the message
        carries one of that action's slots (an order id for order status, say).
        """
        names = list(self.actions)
        listing = "\n".join(f"- {n}: {a.description}" for n, a in self.actions.items())
        schema = {
            "type": "object",
            "properties": {"action": {"type": "string", "enum": [*names, "answer_question"]}},
            "required": ["action"],
            "additionalProperties": False,
        }
        messages = [
            {
                "role": "system",
                "content": (
                    f"Pick the action that fits the customer's message.\n{listing}\n"
                    "- answer_question: anything else"
                ),
            },
            {"role": "user", "content": work.text},
        ]
        try:
            completion = self.model.complete(
                messages,
                max_tokens=24,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "route", "schema": schema},
                },
            )
            import json

            choice = json.loads(completion.text).get("action")
        except (LLMError, ValueError, AttributeError):
            return None
        action = self.actions.get(choice or "")
        if action is None or not set(action.slots) & set(found):
            return None
        return Route(action.name, {}, "lm:json")

    # ---- grounded answers ------------------------------------------------------------------------

    def _answer(self, work: TurnWork, *, suffix: str = "") -> Outcome | _AnswerPlan:
        opts = self.options
        try:
            retrieval = self.knowledge.retrieve(work.text, k=opts.top_k, min_score=opts.min_score)
            relevance = (
                judge(work.text, retrieval, self.knowledge.term_stats())
                if opts.check_relevance
                else None
            )
        except KnowledgeError as err:
            # a corrupted or mismatched index: keep talking, say so, log why
            log.warning("answering without the knowledge base: %s", err)
            work.add(ev.ConfirmationRequested("handoff"))
            return Outcome(
                self.domain.response("kb_unavailable", KB_UNAVAILABLE),
                asks=True,
                grounding=Grounding("abstained", reason="the knowledge base is unavailable"),
            )
        hits = retrieval.hits
        signals = relevance.as_json() if relevance else {}
        if not hits or (relevance is not None and not relevance.relevant):
            why = relevance.reason if relevance else "no relevant passage"
            abstained = Grounding("abstained", reason=why, relevance=signals)
            if suffix:
                return Outcome(f"{NO_ANSWER}\n\n{suffix}", asks=True, grounding=abstained)
            work.add(ev.ConfirmationRequested("handoff"))
            return Outcome(
                self.domain.response("no_answer", NO_ANSWER), asks=True, grounding=abstained
            )
        self._maybe_summarize(work)
        state = work.state
        messages = build_messages(
            work.text,
            hits,
            work.history,
            history_turns=opts.history_turns,
            summary=state.summary,
            language=state.language,
            max_chars=opts.max_prompt_chars,
        )
        return _AnswerPlan(messages, [_source(h) for h in hits], suffix, signals)

    def _maybe_summarize(self, work: TurnWork) -> None:
        """Fold turns older than the history window into the running summary, a few at a time."""
        opts, state = self.options, work.state
        through = work.turn - 1 - opts.history_turns
        if through - state.summary_through_turn < max(opts.summarize_after, 1):
            return
        utterances = [e for e in work.history if isinstance(e, ev.UserUttered | ev.BotUttered)]
        keep = 2 * opts.history_turns
        older = utterances[: len(utterances) - keep] if keep else utterances
        new_turns = through - state.summary_through_turn
        lines = transcript(older)[-2 * new_turns :]
        text = summarize(self.model, state.summary, lines)
        work.add(ev.SummaryUpdated(text, through))


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _said_by_customer(work: TurnWork) -> list[str]:
    """What the customer said in this conversation, and the slot values known: facts an answer may
    repeat without a passage."""
    said = [e.text for e in work.history if isinstance(e, ev.UserUttered)]
    return [*said, *(str(slot.value) for slot in work.state.slots.values())]


def _refs(sources: list[Source]) -> list[dict[str, Any]]:
    return [
        {"chunk_id": s.chunk_id, "source": s.source, "score": s.score}
        | ({"quote": s.quote} if s.quote else {})
        for s in sources
    ]


def _source(hit: Hit) -> Source:
    return Source(
        source=hit.source,
        chunk_id=hit.chunk_id,
        score=hit.score,
        text=hit.text,
        title=hit.title,
        kb_version=hit.kb_version,
    )


__all__ = ["Action", "Assistant", "AssistantError", "Turn", "TurnOptions"]
