"""Forms and tools: continue the active form, ask for the next slot or a confirmation, run the tool.

Each returns an Outcome carrying its events; slot values the next question depends on are added to
the turn at once.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from pydantic import ValidationError

from dialog import events as ev
from dialog.commands import Outcome
from dialog.domain import SlotSpec
from dialog.extract import RULES
from dialog.steps.actions import Action
from dialog.steps.answer import AnswerPlan, plan_answer
from dialog.steps.extraction import fill_by_model
from dialog.steps.routing import Route
from dialog.steps.services import Services
from dialog.tools import ToolContext, ToolError, describe_validation
from dialog.turnwork import TurnWork

_CANCEL = re.compile(r"^\s*(cancel|stop|never ?mind|forget it|quit)\b", re.I)


def continue_form(
    services: Services, work: TurnWork, requested: str | None, found: list[str]
) -> Outcome | AnswerPlan:
    """The message answers the slot just asked for, corrects another, cancels, or asks a
    question."""
    form = work.state.active_form
    action = services.actions.get(form or "")
    if action is None:
        work.add(ev.FormEnded(form or "", "failed"))
        return plan_answer(services, work)
    if _CANCEL.match(work.text):
        return Outcome(
            f"OK, I've stopped: {action.description.lower()}.",
            events=[ev.FormEnded(action.name, "cancelled")],
        )
    if requested and requested not in found:
        spec = services.slot_spec(requested)
        if "?" in work.text:  # a question in the middle of the form: answer it, then ask again
            return plan_answer(services, work, suffix=spec.prompt)
        if found:  # the message corrected another slot; the next step asks again
            return next_step(services, work, action)
        value = None if spec.type in RULES else spec.validate_value(work.text)
        if value is None:
            return _ask_again(spec, [ev.SlotRequested(requested)])
        work.add(ev.SlotSet(requested, value, work.turn, work.text, "requested_slot", 0.9))
    return next_step(services, work, action)


def start_action(services: Services, work: TurnWork, route: Route, found: list[str]) -> Outcome:
    """Take the route's arguments as slots (the message's own values win), then the next step."""
    action = services.actions[route.action]
    for name, raw in route.arguments.items():
        if name in found or raw in (None, ""):
            continue
        value = services.slot_spec(name).validate_value(raw)
        if value is None:
            continue
        quoted = str(raw) if str(raw).lower() in work.text.lower() else ""
        work.add(
            ev.SlotSet(name, value, work.turn, quoted, route.chosen_by, 0.85 if quoted else 0.5)
        )
    if len(work.text.split()) >= 8:
        fill_by_model(services, work, action)
    return next_step(services, work, action, route.chosen_by)


def next_step(services: Services, work: TurnWork, action: Action, chosen_by: str = "") -> Outcome:
    """Ask for the next missing slot, confirm a doubtful one or a side effect, or run the tool."""
    started = _activate(work, action)
    for name in action.slots:
        slot = work.state.slots.get(name)
        if slot is None:
            prompt = services.slot_spec(name).prompt
            return Outcome(prompt, asks=True, events=[*started, ev.SlotRequested(name)])
        if slot.confidence < services.domain.confirm_below:
            label = name.replace("_", " ")
            return Outcome(
                f'Just to check: is your {label} "{slot.value}"? (yes/no)',
                asks=True,
                events=[*started, ev.ConfirmationRequested("slot", name, {"value": slot.value})],
            )
    arguments = {
        n: work.state.slot(n) for n in action.tool.fields() if work.state.slot(n) is not None
    }
    try:
        action.tool.validate(arguments)
    except ValidationError as err:
        bad = str(err.errors()[0]["loc"][0]) if err.errors()[0]["loc"] else ""
        if bad in action.tool.fields():
            events = [*started, ev.SlotCleared(bad), ev.SlotRequested(bad)]
            return _ask_again(services.slot_spec(bad), events)
        rejected = ev.ToolRejected(action.tool.name, describe_validation(err))
        return Outcome("Sorry, I couldn't do that.", events=[rejected])
    if action.tool.side_effects:
        summary = (
            action.tool.confirm.format_map(_Blank(arguments))
            if action.tool.confirm
            else action.description
        )
        return Outcome(
            f"{summary} Shall I go ahead? (yes/no)",
            asks=True,
            events=[*started, ev.ConfirmationRequested("tool", action.name, arguments)],
        )
    return run_tool(services, work, action, arguments, chosen_by)


def run_tool(
    services: Services, work: TurnWork, action: Action, arguments: dict[str, Any], chosen_by: str
) -> Outcome:
    """Run the action's tool; its call and result are events, and a form ends with it."""
    call_id, tool = uuid.uuid4().hex[:12], action.tool
    called = ev.ToolCalled(call_id, tool.name, arguments, chosen_by)
    context = ToolContext(work.conversation_id, services.store.sessions, services.tool_context)
    try:
        result = tool.run(arguments, context)
    except ToolError as err:
        return _failed(work, action, called, str(err), reply=str(err))
    except ValidationError as err:
        error = describe_validation(err)
        return _failed(work, action, called, error, reply="Sorry, I couldn't do that.")
    message = str(result.get("message") or "")
    if action.done:
        message = action.done.format_map(_Blank({**arguments, **result}))
    done = ev.ToolResult(call_id, tool.name, True, result)
    return Outcome(message or "Done.", events=[called, done, *_end(work, action, "completed")])


def _failed(
    work: TurnWork, action: Action, called: ev.ToolCalled, error: str, *, reply: str
) -> Outcome:
    """The tool failed: its result records why, and a form ends with it."""
    failed = ev.ToolResult(called.call_id, called.name, False, error=error)
    return Outcome(reply, events=[called, failed, *_end(work, action, "failed")])


def _ask_again(spec: SlotSpec, events: list[ev.Event]) -> Outcome:
    return Outcome(f"{spec.invalid} {spec.prompt}", asks=True, events=events)


def _activate(work: TurnWork, action: Action) -> list[ev.Event]:
    """The form starts when it first asks something (a tool on its own may never need to)."""
    return [] if work.state.active_form == action.name else [ev.FormStarted(action.name)]


def _end(work: TurnWork, action: Action, outcome: str) -> list[ev.Event]:
    return [ev.FormEnded(action.name, outcome)] if work.state.active_form == action.name else []


class _Blank(dict[str, Any]):
    """Format values for a template; a missing one shows as `?`."""

    def __missing__(self, key: str) -> str:
        return "?"
