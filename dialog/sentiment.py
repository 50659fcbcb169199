"""A sentiment and urgency label for each user turn, by rules: cheap, explainable, no model call.

>>> label_turn("This is RIDICULOUS, I want my money back now!!")
Label(sentiment='angry', urgency='high')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ANGRY = re.compile(
    r"\b(angry|furious|ridiculous|outrageous|unacceptable|terrible|horrible|awful|worst|useless|"
    r"scam|disgusting|fed up|sick of|pathetic|incompetent|wtf|damn|hate|livid|joke)\b",
    re.I,
)
_NEGATIVE = re.compile(
    r"\b(disappointed|unhappy|upset|annoyed|frustrated|broken|damaged|late|wrong|missing|"
    r"never arrived|not happy|problem|complain\w*)\b",
    re.I,
)
_POSITIVE = re.compile(
    r"\b(thanks?|thank you|great|perfect|love|awesome|excellent|helpful|brilliant)\b", re.I
)
_URGENT = re.compile(r"\b(urgent\w*|asap|immediately|right now|right away|emergency)\b", re.I)


@dataclass(frozen=True)
class Label:
    """`sentiment`: angry, negative, neutral or positive; `urgency`: high or normal."""

    sentiment: str
    urgency: str


def _shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.7


def label_turn(text: str) -> Label:
    """Anger: abusive words, shouting, or negative words with `!!`; urgency: urgent words, `!!` or
    shouting."""
    exclaims = text.count("!") >= 2
    if _ANGRY.search(text) or _shouting(text) or (_NEGATIVE.search(text) and exclaims):
        sentiment = "angry"
    elif _NEGATIVE.search(text):
        sentiment = "negative"
    elif _POSITIVE.search(text):
        sentiment = "positive"
    else:
        sentiment = "neutral"
    urgency = "high" if _URGENT.search(text) or exclaims or _shouting(text) else "normal"
    return Label(sentiment, urgency)
