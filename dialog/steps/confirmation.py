"""The pending yes/no question: a person offered, a doubtful slot value, a tool with side effects.

The question is resolved whatever the answer; an answer that is neither yes nor no lets the turn go
on (None), as an ordinary message.
"""

from __future__ import annotations

import re

from dialog import events as ev
from dialog.commands import Outcome
from dialog.steps.forms import next_step, run_tool
from dialog.steps.handoff import start_handoff
from dialog.steps.services import Services
from dialog.turnwork import TurnWork

_YES = re.compile(
    r"^\s*(yes|y|yeah|yep|yup|sure|ok|okay|please do|go ahead|do it|confirm\w*|correct|right|"
    r"that's right)\b",
    re.I,
)
_NO = re.compile(r"^\s*(no|n|nope|nah|cancel|don't|do not|stop|wrong|not right|incorrect)\b", re.I)


def resolve_pending(services: Services, work: TurnWork) -> Outcome | None:
    """What a yes or a no to the pending question leads to; None: no question, or the message is
    something else."""
    pending = work.state.pending
    if pending is None:
        return None
    yes, no = bool(_YES.match(work.text)), bool(_NO.match(work.text))
    work.add(ev.ConfirmationResolved(yes and not no))
    if pending.kind == "handoff":
        if yes:
            return start_handoff(services, work, "the customer accepted the offer of a person")
        return Outcome("Alright, I'm here if you need anything else.") if no else None
    if pending.kind == "slot":
        return _slot(services, work, pending.name, yes=yes, no=no)
    action = services.actions.get(pending.name) if pending.kind == "tool" else None
    if action is None:
        return None
    if yes:
        return run_tool(services, work, action, dict(pending.arguments), "user-confirmed")
    if no:
        form = work.state.active_form
        return Outcome(
            "OK, I haven't changed anything.",
            events=[ev.FormEnded(form, "cancelled")] if form else [],
        )
    return None


def _slot(services: Services, work: TurnWork, name: str, *, yes: bool, no: bool) -> Outcome | None:
    """A confirmed value is kept (the form goes on); a denied one is asked for again."""
    slot = work.state.slots.get(name)
    if yes and slot is not None:
        confirmed = f"{slot.extractor}+confirmed"
        work.add(ev.SlotSet(name, slot.value, slot.turn, slot.span, confirmed, 1.0))
        action = services.actions.get(work.state.active_form or "")
        return next_step(services, work, action) if action else Outcome("Thanks, noted.")
    if no:
        prompt = services.slot_spec(name).prompt
        return Outcome(prompt, asks=True, events=[ev.SlotCleared(name), ev.SlotRequested(name)])
    return None
