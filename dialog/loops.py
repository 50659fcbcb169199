"""Degenerate output: repetition loops, runs of one character, lines of symbols.

A small model sometimes falls into a loop (one option repeated 40 times, a run of 120 zeros, lines
of "#"). Generation-side repetition control makes that rarer; this catches what gets through, on
the stream, so the turn can cut it and answer from the passages instead.

>>> is_degenerate("ok " + "-v, --verbose " * 6)
True
>>> is_degenerate("Returns are free within 30 days. Pack the item and print the label.")
False
"""

from __future__ import annotations

import re
from collections import Counter

_CHAR_RUN = re.compile(r"(\S)\1{15,}")
"""Sixteen of one character in a row: "0000…", "####…", "!!!!…" (a Markdown rule is shorter)."""
_WORD = re.compile(r"\w+")
NGRAM = 5
"""Repeated word n-grams this long mark a loop; shorter ones recur in ordinary prose."""
NGRAM_REPEATS = 3
LINE_REPEATS = 3
MIN_WORDS_FOR_VARIETY = 40
MIN_VARIETY = 0.25
"""Below this share of distinct words in a long answer, it is going round in circles."""


def is_degenerate(text: str) -> bool:
    """Whether the text loops or repeats itself in a way no useful answer does."""
    return bool(loop_reason(text))


def loop_reason(text: str) -> str:
    """Why the text is degenerate ("" when it is not), for the turn's record."""
    if _CHAR_RUN.search(text):
        return "a run of one character"
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= 3]
    if lines and Counter(lines).most_common(1)[0][1] >= LINE_REPEATS:
        return "a repeated line"
    words = _WORD.findall(text.lower())
    grams = Counter(tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1))
    if grams and grams.most_common(1)[0][1] >= NGRAM_REPEATS:
        return "a repeated phrase"
    if len(words) >= MIN_WORDS_FOR_VARIETY and len(set(words)) / len(words) < MIN_VARIETY:
        return "too little variety"
    return ""
