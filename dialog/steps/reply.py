"""The turn's reply: a decided one stored at once, or an answer streamed and stored as it ends.

Either way the customer may be offered a person (after an angry message), and every answered or
abstained question reports its grounding check to the answer hooks.
"""

from __future__ import annotations

import logging
from typing import Any

from assistant_core.errors import LLMError
from dialog import events as ev
from dialog.answer import EXTRACTIVE_INTRO, GroundedAnswer
from dialog.commands import Outcome
from dialog.fallback import fallback_answer
from dialog.locking import Held
from dialog.messages import Grounding, Source
from dialog.prompt import system_prompt
from dialog.safety import OutputScrubber
from dialog.steps.answer import AnswerPlan
from dialog.steps.handoff import OFFER_TEXT
from dialog.steps.services import Services
from dialog.turn import Turn
from dialog.turnwork import TurnWork

log = logging.getLogger(__name__)


def fixed_reply(services: Services, work: TurnWork, outcome: Outcome, held: Held) -> Turn:
    """Store the turn's events and reply, release the conversation, and return the reply."""
    cid = work.conversation_id
    try:
        text = outcome.text
        if (
            work.offer_handoff
            and not outcome.asks
            and not work.state.handoff
            and work.state.pending is None
        ):
            offer = services.domain.response("offer", OFFER_TEXT)
            text = f"{text}\n\n{offer}" if text else offer
            work.add(ev.ConfirmationRequested("handoff"))
        check = outcome.grounding.as_json() if outcome.grounding else {}
        work.add(ev.BotUttered(text, _refs(outcome.sources), check))
        if outcome.grounding is not None:
            _answered(services, outcome.grounding)
        services.store.append(cid, work.events, channel=work.message.channel)
    finally:
        held.release()
    return Turn(
        cid,
        outcome.sources,
        iter([text] if text else []),
        handoff=work.state.handoff,
        grounding=outcome.grounding,
    )


def streamed_answer(services: Services, work: TurnWork, plan: AnswerPlan, held: Held) -> Turn:
    """Store the turn so far; the answer streams, checked, as the front end reads the Turn, and is
    stored (or recorded as failed) at its end, when the conversation is released."""
    cid, channel, opts = work.conversation_id, work.message.channel, services.options
    services.store.append(cid, work.events, channel=channel)
    suffix = plan.suffix
    closing: list[ev.Event] = []
    if work.offer_handoff and not suffix:
        suffix = services.domain.response("offer", OFFER_TEXT)
        closing = [ev.ConfirmationRequested("handoff")]
    answer = GroundedAnswer(
        work.text,
        plan.sources,
        services.quotes,
        conversation=_said_by_customer(work),
        intro=services.domain.response("extractive", EXTRACTIVE_INTRO),
        suffix=suffix,
        relevance=plan.relevance,
    )
    deltas = services.model.stream(
        plan.messages, max_tokens=opts.max_new_tokens, temperature=opts.temperature
    )
    secret = system_prompt(services.domain.persona)
    deltas = OutputScrubber(allowed_hosts=opts.allowed_link_hosts, secret_text=secret).scrub(deltas)

    def finish(text: str) -> None:
        offer = closing or ([ev.ConfirmationRequested("handoff")] if answer.asks_for_person else [])
        said = ev.BotUttered(text, _refs(turn.sources), turn.grounding.as_json())
        services.store.append(cid, [said, *offer], channel=channel)
        _answered(services, turn.grounding)

    def fail(reason: str, partial: str) -> None:
        services.store.append(cid, [ev.AnswerFailed(reason, partial)], channel=channel)

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


def _answered(services: Services, grounding: Grounding) -> None:
    for hook in services.answer_hooks:
        try:
            hook(grounding)
        except Exception:  # noqa: BLE001 - a metrics hook never fails a turn
            log.exception("answer hook failed")


def _said_by_customer(work: TurnWork) -> list[str]:
    """What the customer said in this conversation, and the slot values known: facts an answer may
    repeat without a passage."""
    said = [e.text for e in work.history if isinstance(e, ev.UserUttered)]
    return [*said, *(str(slot.value) for slot in work.state.slots.values())]


def _refs(sources: list[Source]) -> list[dict[str, Any]]:
    """Sources as stored on the bot event."""
    return [
        {"chunk_id": s.chunk_id, "source": s.source, "score": s.score}
        | ({"quote": s.quote} if s.quote else {})
        | ({"url": s.url} if s.url else {})
        for s in sources
    ]
