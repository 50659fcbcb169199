"""What the steps of a turn may use: the turn's options and the assistant's parts, in one value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dialog.domain import SlotSpec

if TYPE_CHECKING:
    from assistant_core.chat_model import ChatModel
    from dialog.commands import CommandRegistry
    from dialog.domain import Domain
    from dialog.messages import Grounding
    from dialog.protocols import ConversationStore
    from dialog.quotes import QuotePicker
    from dialog.steps.actions import Action
    from knowledge.protocols import Retriever

AnswerHook = Callable[["Grounding"], None]
"""Called with the grounding check of every answered (or abstained) question: metrics."""


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
    max_prompt_tokens: int = 3_000
    """The answer prompt's budget in tokens, counted as an upper bound (dialog.prompt): older
    history, then the lowest passages, are dropped beyond it. With `max_new_tokens` it must stay
    within the model's context (8,192 for SmolLM2; checked at start-up by the wiring)."""
    route_with_model: bool = True
    route_requires_slot: bool = True
    """Ask the LM to route only when the message carries a value some action needs (an order id, an
    email): FAQ questions then cost no routing call, and a small model cannot divert them to a
    tool."""
    extract_with_model: bool = True
    min_quote_similarity: float = 0.5
    """An answer needs a passage sentence at least this similar to the question (cosine of the
    embedding model; 0.5 suits all-MiniLM-L6-v2): without one it is an abstention, whatever the
    model wrote."""
    check_relevance: bool = True
    """Abstain unless the passages stand out from the knowledge base, cover the question's words
    and hold the kind of value it asks for (dialog.relevance); off: any passage above
    `min_score` is answered from."""
    allowed_link_hosts: tuple[str, ...] = ()
    """Hosts the answer may link to; links elsewhere are removed as the answer streams."""


@dataclass(frozen=True)
class Services:
    """The assistant's parts, gathered for one turn: steps depend on this, not on the Assistant."""

    store: ConversationStore
    knowledge: Retriever
    model: ChatModel
    options: TurnOptions
    domain: Domain
    commands: CommandRegistry
    actions: Mapping[str, Action]
    quotes: QuotePicker
    tool_context: dict[str, Any]
    """Whatever the application hands its tools (`ToolContext.extra`)."""
    answer_hooks: list[AnswerHook]

    def slot_spec(self, name: str) -> SlotSpec:
        """The domain's spec of a slot, or a plain one that asks for it by name."""
        return self.domain.slots.get(name) or SlotSpec(
            prompt=f"What is the {name.replace('_', ' ')}?"
        )
