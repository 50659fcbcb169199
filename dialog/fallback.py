"""What the user gets when the language model fails: a clear reason and the best passage, quoted."""

from __future__ import annotations

from collections.abc import Sequence

from assistant_core.chat_model import ContextTooLong
from assistant_core.errors import LLMError, LLMOverloaded, LLMTimeout, LLMUnavailable
from dialog.messages import Source

_WHY: dict[type[LLMError], str] = {
    LLMUnavailable: "is unavailable right now",
    LLMTimeout: "did not answer in time",
    LLMOverloaded: "is busy right now",
}
EXCERPT_CHARS = 500


TOO_LONG = (
    "Your message is too long for me to answer in one go. Could you shorten it, or ask one "
    "question at a time?"
)


def fallback_answer(err: LLMError, sources: Sequence[Source]) -> str:
    """An extractive answer with its citation, so a customer is helped even while the LM is down."""
    if isinstance(err, ContextTooLong):  # the question alone overflows the model's context
        return TOO_LONG
    why = next((text for kind, text in _WHY.items() if isinstance(err, kind)), "failed")
    head = f"Sorry, the language model {why}, so I can't write an answer myself."
    if not sources:
        return f"{head} Please try again in a moment, or ask for a person."
    best = sources[0]
    excerpt = " ".join(best.text.split())
    if len(excerpt) > EXCERPT_CHARS:
        excerpt = excerpt[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"
    return f"{head} This is what our documents say ({best.title or best.source}):\n\n> {excerpt}"
