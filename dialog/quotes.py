"""Evidence for an answer: the sentence or line of a passage that best answers the question.

Reference documents are prose and option lists alike (`-o, --output=FILE  write the result to
FILE`), so a passage is cut into its lines and lines into sentences; the embedding model
ranks them against the question. The quote is verbatim, so a customer can trust it as it stands.

>>> picker = QuotePicker(embed=None)  # no embedder: ranks by shared words
>>> picker.best("How long do refunds take?", ["Refunds\\n\\nThey take 5 days. Then we mail you."])
[Quote(passage=0, text='Refunds\\nThey take 5 days. Then we mail you.', score=0.6667)]
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Embed = Callable[[Sequence[str]], NDArray[np.float32]]
"""Texts in, L2-normalised vectors out (the knowledge base's embedder)."""

MAX_QUOTE_CHARS = 320
MIN_UNIT_CHARS = 12
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`*_-])")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+(?=\S)|>(?!>)\s*)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_ITEM = re.compile(r"^\s*(?:[-*+]\s|\d{1,2}[.)]\s|--?[A-Za-z]|\||>>>|\.\.\.)")
"""A line that stands on its own: a list item, an option (`-o, --output`), a table row, code
typed at a prompt."""
CACHED_UNITS = 4096
"""Unit vectors kept between turns (about 6 MB with MiniLM)."""
WINDOW = 2
"""Sentences per unit: a sentence and the next, so a definition's first sentence is scored and
shown with the one that completes it."""
WRAPPED_LINE_CHARS = 40
"""A line at least this long followed by another is taken as prose wrapped at a fixed width."""
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
    """The passage's quotable units: the sentences of its paragraphs (hard-wrapped lines joined
    again) and its list, option and table lines whole; a paragraph's first sentence keeps the
    short line above it (`str.rstrip([chars])`, an FAQ's question), which often names the thing
    the sentence describes. Headings are titles, not answers: they are left out."""
    found: list[str] = []
    label = ""
    for block, heading in _blocks(passage):
        if heading:
            label = ""
        elif _ITEM.match(block):
            found.append(block)
            label = ""
        elif _is_label(block):
            label = block
        else:
            sentences = [s.strip() for s in _SENTENCE_END.split(block) if s.strip()]
            windows = [" ".join(sentences[i : i + WINDOW]) for i in range(len(sentences))]
            if label and windows:
                windows[0] = f"{label}\n{windows[0]}"
            found += windows
            label = ""
    return [_shorten(u) for u in found if len(u) >= MIN_UNIT_CHARS and any(c.isalpha() for c in u)]


def _blocks(passage: str) -> list[tuple[str, bool]]:
    """(text, is a heading) of each paragraph with its wrapped lines joined, each list, option or
    table line, and each heading (`# Title`, or a line underlined with `===`)."""
    blocks: list[tuple[list[str], bool]] = []
    previous, item_indent = "", -1
    for raw in passage.splitlines():
        line = _MARKUP.sub("", raw).strip()
        if line and len(line) >= 3 and set(line) <= set("*=-#~^_"):  # underlines its line
            if previous and len(blocks[-1][0]) == 1:
                blocks[-1] = (blocks[-1][0], True)
            previous = ""
            continue
        if not line:
            previous = ""
            continue
        if _HEADING.match(raw):
            blocks.append(([line], True))
            previous = ""
            continue
        indent = len(raw) - len(raw.lstrip())
        if item_indent >= 0:  # an item goes on only in lines indented under it
            continues = bool(previous) and indent > item_indent
        else:
            continues = (
                bool(previous)
                and not _ITEM.match(raw.strip())
                and len(previous) >= WRAPPED_LINE_CHARS
                and not previous.endswith(":")
            )
        if continues:
            blocks[-1][0].append(line)
        else:
            blocks.append(([line], False))
            item_indent = indent if _ITEM.match(raw.strip()) else -1
        previous = line
    return [(" ".join(lines), heading) for lines, heading in blocks]


def _is_label(block: str) -> bool:
    """A short line that names what follows: a signature, a term, a question."""
    letters = sum(c.isalpha() for c in block)
    return (
        len(block) < WRAPPED_LINE_CHARS
        and letters >= 4
        and not block.startswith(("'", '"'))
        and not block.endswith((".", "!", ":", ";", ","))
    )


class QuotePicker:
    """Ranks the units of passages against a question, with the embedder when there is one."""

    def __init__(self, embed: Embed | None, *, min_similarity: float = 0.0) -> None:
        self._embed = embed
        self._vectors: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self.min_similarity = min_similarity if embed is not None else 0.0
        """Units less similar to the question than this are not quotes of an answer (cosine of
        the embedding model; without one, shared words rank and nothing is cut)."""

    def best(self, question: str, passages: Sequence[str], n: int = 1) -> list[Quote]:
        """The n units most similar to the question, best first, none below `min_similarity`."""
        candidates = [(i, unit) for i, text in enumerate(passages) for unit in units(text)]
        if not candidates:
            return []
        scores = self._scores(question, [unit for _, unit in candidates])
        chosen: list[Quote] = []
        for j in sorted(range(len(candidates)), key=lambda j: (-scores[j], j)):
            quote = Quote(candidates[j][0], candidates[j][1], round(scores[j], 4))
            if scores[j] < self.min_similarity:
                break
            if not any(_overlap(quote, other) for other in chosen):
                chosen.append(quote)
            if len(chosen) == n:
                break
        return chosen

    def _scores(self, question: str, texts: list[str]) -> list[float]:
        if self._embed is None:
            asked = _words(question)
            return [len(asked & _words(t)) / max(len(asked), 1) for t in texts]
        vectors = self._vectors_of([question, *texts])
        return [float(v) for v in vectors[1:] @ vectors[0]]

    def _vectors_of(self, texts: list[str]) -> NDArray[np.float32]:
        """Embedded in one call, and kept: the same passages come back turn after turn (a first
        look at three passages costs ~150 ms on 2 cores, a second ~10 ms)."""
        assert self._embed is not None
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for text, vector in zip(missing, self._embed(missing), strict=True):
                self._vectors[text] = vector
        for text in texts:
            self._vectors.move_to_end(text)
        while len(self._vectors) > CACHED_UNITS:
            self._vectors.popitem(last=False)
        return np.stack([self._vectors[t] for t in texts])


def _overlap(a: Quote, b: Quote) -> bool:
    """Two windows of one passage that share a sentence (quoting both would repeat it)."""
    if a.passage != b.passage:
        return False
    return bool(set(_SENTENCE_END.split(a.text)) & set(_SENTENCE_END.split(b.text)))


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
