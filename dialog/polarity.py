"""Polarity: an answer may say "not" only where its passages do.

A small model copies the passages' words and flips their meaning: asked whether support is open on
Saturday, it answers "No, support is not open on Saturday" from a passage that gives the Saturday
hours. Every word and value is in the passages, so the fact check lets it through. So an answer
sentence that negates (`NEGATION`) must find a negation in its evidence: the passage sentence
closest to it, read as an answer to the question (the question and the sentence together, ranked
by the quote picker). Sentence by sentence, not the two-sentence quote windows, so that "We are not
open on Sunday" next to the Saturday hours does not back "not open on Saturday". Lexical and
one-sided on purpose: a paraphrased negation ("closed", "non-refundable") is a false alarm, and a
false alarm only quotes the passages instead of the model's words.

>>> picker = QuotePicker(embed=None)
>>> flipped_negation("Is support open on Saturday?", "No, support is not open on Saturday.",
...                  ["Support is open on Saturday from 10:00 to 16:00."], picker)
'No'
>>> flipped_negation("Can I get a refund?", "No, refunds are not possible after 30 days.",
...                  ["Refunds are not possible after 30 days."], picker)
''
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dialog.quotes import QuotePicker, units

_CONTRACTED = re.compile(r"\Bn[’']t(?![\w-])")
NEGATION = re.compile(
    r"(?<![\w-])(?:not|no|never|cannot|none|nothing|nobody|neither|nor|without)(?![\w-])"
    rf"|{_CONTRACTED.pattern}",
    re.I,
)
"""Words that flip what a sentence says; whole words only ("no-reply@…", "notice" are not)."""
_LITERAL = re.compile(r"`[^`\n]*`|\"[^\"\n]*\"|“[^”\n]*”")
"""Code and quoted strings: values the fact check looks up verbatim, not the answer's own words
(`x is not None`)."""
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n")


def negation(sentence: str) -> str:
    """The first negating word of the sentence outside its code and quotes, else ""."""
    found = NEGATION.search(_LITERAL.sub(" ", sentence))
    return found.group(0) if found else ""


def flipped_negation(
    question: str, sentence: str, passages: Sequence[str], quotes: QuotePicker
) -> str:
    """The sentence's negating word when the passage sentence closest to it carries none (the
    answer says the opposite of its evidence), else ""."""
    word = negation(sentence)
    if not word:
        return ""
    sentences = list(
        dict.fromkeys(
            s.strip() for text in passages for u in units(text) for s in _SENTENCE.split(u)
        )
    )
    asked = f"{question} {_CONTRACTED.sub(' not', sentence)}"  # "isn't" ranks as "is not"
    best = quotes.best(asked, [s for s in sentences if s], n=1)
    return "" if best and NEGATION.search(best[0].text) else word
