"""Answering from the knowledge base: retrieve, judge relevance, build the prompt (or abstain).

The prompt carries a summary of the turns older than the history window, updated here when enough
of them have gathered: a model call, as is the answer itself (streamed by `dialog.steps.reply`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from assistant_core.chat_model import ChatMessages
from dialog import events as ev
from dialog.commands import Outcome
from dialog.messages import Grounding, Source
from dialog.prompt import KB_UNAVAILABLE, NO_ANSWER, build_messages, system_prompt
from dialog.relevance import judge
from dialog.steps.services import Services
from dialog.summary import summarize, transcript
from dialog.turnwork import TurnWork
from knowledge.base import Hit
from knowledge.errors import KnowledgeError

log = logging.getLogger(__name__)


@dataclass
class AnswerPlan:
    """An answer to generate: the prompt, the passages it cites, and what follows the answer."""

    messages: ChatMessages
    sources: list[Source]
    suffix: str = ""
    relevance: dict[str, object] = field(default_factory=dict)


def plan_answer(services: Services, work: TurnWork, *, suffix: str = "") -> Outcome | AnswerPlan:
    """The prompt for a grounded answer, or an abstention that offers a person."""
    opts, knowledge = services.options, services.knowledge
    try:
        retrieval = knowledge.retrieve(work.text, k=opts.top_k, min_score=opts.min_score)
        relevance = (
            judge(work.text, retrieval, knowledge.term_stats()) if opts.check_relevance else None
        )
    except KnowledgeError as err:
        # a corrupted or mismatched index: keep talking, say so, log why
        log.warning("answering without the knowledge base: %s", err)
        return Outcome(
            services.domain.response("kb_unavailable", KB_UNAVAILABLE),
            asks=True,
            grounding=Grounding("abstained", reason="the knowledge base is unavailable"),
            events=[ev.ConfirmationRequested("handoff")],
        )
    hits = retrieval.hits
    signals = relevance.as_json() if relevance else {}
    if not hits or (relevance is not None and not relevance.relevant):
        why = relevance.reason if relevance else "no relevant passage"
        abstained = Grounding("abstained", reason=why, relevance=signals)
        if suffix:
            return Outcome(f"{NO_ANSWER}\n\n{suffix}", asks=True, grounding=abstained)
        return Outcome(
            services.domain.response("no_answer", NO_ANSWER),
            asks=True,
            grounding=abstained,
            events=[ev.ConfirmationRequested("handoff")],
        )
    _maybe_summarize(services, work)
    messages = build_messages(
        work.text,
        hits,
        work.history,
        history_turns=opts.history_turns,
        summary=work.state.summary,
        language=work.state.language,
        max_tokens=opts.max_prompt_tokens,
        system=system_prompt(services.domain.persona),
    )
    return AnswerPlan(messages, [_source(h) for h in hits], suffix, signals)


def _maybe_summarize(services: Services, work: TurnWork) -> None:
    """Fold turns older than the history window into the running summary, a few at a time."""
    opts, state = services.options, work.state
    through = work.turn - 1 - opts.history_turns
    if through - state.summary_through_turn < max(opts.summarize_after, 1):
        return
    utterances = [e for e in work.history if isinstance(e, ev.UserUttered | ev.BotUttered)]
    keep = 2 * opts.history_turns
    older = utterances[: len(utterances) - keep] if keep else utterances
    new_turns = through - state.summary_through_turn
    lines = transcript(older)[-2 * new_turns :]
    text = summarize(services.model, state.summary, lines)
    work.add(ev.SummaryUpdated(text, through))


def _source(hit: Hit) -> Source:
    return Source(
        source=hit.source,
        chunk_id=hit.chunk_id,
        score=hit.score,
        text=hit.text,
        title=hit.title,
        kb_version=hit.kb_version,
        url=hit.url,
    )
