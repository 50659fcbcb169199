"""Summaries: older turns folded into a few sentences for the prompt, and a brief for a human
agent."""

from __future__ import annotations

from collections.abc import Sequence

from assistant_core.chat_model import ChatModel
from assistant_core.errors import LLMError
from dialog.events import BotUttered, Event, UserUttered
from dialog.state import ConversationState

SYSTEM_SUMMARY = (
    "Summarise this customer-support conversation in at most three short sentences. Keep order "
    "numbers, email addresses and what the customer wants. Write only the summary."
)
MAX_SUMMARY_CHARS = 700


def transcript(events: Sequence[Event], *, limit: int = 200) -> list[str]:
    """`customer: …` / `assistant: …` lines, each cut to `limit` characters."""
    lines = []
    for event in events:
        if isinstance(event, UserUttered):
            lines.append(f"customer: {event.text[:limit]}")
        elif isinstance(event, BotUttered) and event.text:
            lines.append(f"assistant: {event.text[:limit]}")
    return lines


def extractive_summary(previous: str, lines: Sequence[str]) -> str:
    """The fallback when the model fails: the earlier summary plus what the customer said."""
    said = "; ".join(
        line.removeprefix("customer: ") for line in lines if line.startswith("customer: ")
    )
    text = f"{previous} The customer said: {said}." if previous else f"The customer said: {said}."
    return text.strip()[-MAX_SUMMARY_CHARS:]


def summarize(
    model: ChatModel, previous: str, lines: Sequence[str], *, max_tokens: int = 96
) -> str:
    """A short summary from the model, or the extractive one if it fails or says nothing."""
    if not lines:
        return previous
    earlier = f"Earlier summary: {previous}\n\n" if previous else ""
    messages = [
        {"role": "system", "content": SYSTEM_SUMMARY},
        {"role": "user", "content": earlier + "Conversation:\n" + "\n".join(lines)},
    ]
    try:
        text = model.complete(messages, max_tokens=max_tokens).text.strip()
    except LLMError:
        text = ""
    return text[:MAX_SUMMARY_CHARS] if text else extractive_summary(previous, lines)


def agent_brief(state: ConversationState, reason: str, recent: Sequence[Event]) -> str:
    """What a human agent reads when the conversation is handed over: no model call, nothing
    invented."""
    parts = [f"Reason: {reason}."]
    if state.last_sentiment or state.last_urgency:
        parts.append(
            f"Customer mood: {state.last_sentiment or 'neutral'}, "
            f"urgency {state.last_urgency or 'normal'}."
        )
    if state.active_form:
        parts.append(f"In progress: {state.active_form.replace('_', ' ')}.")
    if state.slots:
        known = ", ".join(
            f"{name}={slot.value} ({slot.extractor or 'set'})" for name, slot in state.slots.items()
        )
        parts.append(f"Known details: {known}.")
    if state.summary:
        parts.append(f"Earlier: {state.summary}")
    lines = transcript(recent)[-6:]
    if lines:
        parts.append("Recent messages:\n" + "\n".join(f"- {line}" for line in lines))
    return "\n".join(parts)
