"""Evidence for an answer: the sentence or line of a passage that best answers the question.

Reference documents are prose and option lists alike (`-o, --output=FILE  write the result to
FILE`), so a passage is cut into its lines and lines into sentences; the embedding model
ranks them against the question. The quote is verbatim, so a customer can trust it as it stands.

>>> picker = QuotePicker(embed=None)  # no embedder: ranks by shared words
>>> picker.best("How long do returns take?", ["Returns\\nRefunds take 5 days after we get it."])
[Quote(passage=0, text='Refunds take 5 days after we get it.', score=0.3333)]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Embed = Callable[[Sequence[str]], NDArray[np.float32]]
"""Texts in, L2-normalised vectors out (the knowledge base's embedder)."""

MAX_QUOTE_CHARS = 320
MIN_UNIT_CHARS = 12
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`*_-])")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+(?=\S)|>\s*)")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by can do does for from how i in is it its me my of on or the this "
    "to was what when where which who why will with you your".split()
)


@dataclass(frozen=True)
class Quote:
    """A verbatim unit of passage `passage`, with its similarity to the question."""

    passage: int
    text: str
    score: float


def units(passage: str) -> list[str]:
    """Sentences of each line (an option line is one unit), stripped of Markdown markers; short
    ones dropped."""
    found: list[str] = []
    for line in passage.splitlines():
        line = _MARKUP.sub("", line).strip()
        for part in _SENTENCE_END.split(line):
            part = part.strip()
            if len(part) >= MIN_UNIT_CHARS and any(c.isalpha() for c in part):
                found.append(_shorten(part))
    return found


class QuotePicker:
    """Ranks the units of passages against a question, with the embedder when there is one."""

    def __init__(self, embed: Embed | None) -> None:
        self._embed = embed

    def best(self, question: str, passages: Sequence[str], n: int = 1) -> list[Quote]:
        """The n units most similar to the question, best first."""
        candidates = [(i, unit) for i, text in enumerate(passages) for unit in units(text)]
        if not candidates:
            return []
        scores = self._scores(question, [unit for _, unit in candidates])
        order = sorted(range(len(candidates)), key=lambda j: (-scores[j], j))[:n]
        return [Quote(candidates[j][0], candidates[j][1], round(scores[j], 4)) for j in order]

    def _scores(self, question: str, texts: list[str]) -> list[float]:
        if self._embed is None:
            asked = _words(question)
            return [len(asked & _words(t)) / max(len(asked), 1) for t in texts]
        vectors = self._embed([question, *texts])
        return [float(v) for v in vectors[1:] @ vectors[0]]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _shorten(text: str) -> str:
    """A unit longer than a quote should be: its leading sentences that fit, else a cut at a
    word."""
    if len(text) <= MAX_QUOTE_CHARS:
        return text
    kept = ""
    for sentence in _SENTENCE_END.split(text):
        if len(kept) + len(sentence) + 1 > MAX_QUOTE_CHARS:
            break
        kept = f"{kept} {sentence}".strip()
    return kept or text[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
