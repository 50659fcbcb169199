"""Whether the retrieved passages can answer the question, or the assistant should abstain.

A global cosine threshold lets unrelated passages through: cosines run high in a narrow corpus
and low in a broad one, and an in-domain question the documents do not answer ("what is your
refund rate for software?") finds passages on the same topic with good scores. Three signals,
each measured against this knowledge base rather than a constant:

- **standout**: how far the best passage's cosine lies above the query's cosine with a random
  sample of the knowledge base, in standard deviations of that sample;
- **coverage**: the question's content words that the passages use (a word the knowledge base
  never uses counts twice), and the options and identifiers the question names, which must be
  there verbatim;
- **answer type**: a question that asks for a phone number, an email, a time, an amount, a
  percentage or a number needs passages that contain one.

>>> judge("What is your phone number?", retrieval, kb.term_stats()).relevant
False
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dialog.facts import extract_facts
from knowledge.base import Hit, Retrieval
from knowledge.lexical import TermStats, stem_of

STANDOUT_MIN = 1.5
"""Below this the best passage is no more similar to the question than passages at large are."""
STANDOUT_STRONG = 3.0
"""Above this a passage matches so well that a word the documents never use (a synonym, a typo)
does not outweigh it; also taken as the standout where none can be measured (a knowledge base
too small to sample)."""
COVERAGE_MIN = 0.5
"""Share of the question's content words that the passages must use (see `_coverage`)."""

_WORD = re.compile(r"[a-z][a-z0-9]+")
_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each else even
    ever every few for from further get gets getting give go goes going got had has have having
    he her here hers him his how i if in into is it its itself just know let like ll make makes
    many may me might more most much must my need needs no nor not now of off on once one only or
    other our ours out over own please possible re really same say see she should so some such
    take tell than that the their them then there these they thing things this those through to
    too try under until up us use used using ve very want wants was way we well were what when
    where which while who whom why will with within without work works would yes yet you your
    yours long able anyone anything someone something
    happen happens mean means exactly actually correct right best ways difference different
    still s t d m""".split()
)
_EXPECTS: list[tuple[re.Pattern[str], frozenset[str]]] = [
    (
        re.compile(r"\b(?:phone|telephone|hotline|fax|whatsapp)\b(?:\s+number)?", re.I),
        frozenset({"phone"}),
    ),
    (
        re.compile(r"\be-?mail address\b|\bwhat(?:'s| is) (?:the|your) e-?mail\b", re.I),
        frozenset({"email"}),
    ),
    (re.compile(r"\b(?:url|website|web address|web site|link to)\b", re.I), frozenset({"url"})),
    (
        re.compile(
            r"\bwhat time\b|\bopening (?:hours|times)\b|\b(?:business|office) hours\b|"
            r"\bwhen (?:do|does|are|is) .{0,40}\b(?:open|close)\b",
            re.I,
        ),
        frozenset({"time", "number"}),
    ),
    (
        re.compile(r"\bhow much\b|\bprice\b|\bcost\b|\bfee\b|\bcharge\b", re.I),
        frozenset({"money", "number", "percent"}),
    ),
    (re.compile(r"\bpercent(?:age)?\b|\brate\b", re.I), frozenset({"percent", "number"})),
    (
        re.compile(
            r"\bhow (?:many|long|old|big|large|fast|often|far)\b|\b(?:maximum|minimum|limit)\b",
            re.I,
        ),
        frozenset({"number", "money", "percent", "time", "date"}),
    ),
    (
        re.compile(r"\bwhat (?:date|year)\b|\bwhich year\b|\brelease date\b", re.I),
        frozenset({"date", "number"}),
    ),
]
_NUMBER_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|sixty|hundred|thousand|million|once|twice|daily|weekly|monthly|annually)\b",
    re.I,
)


@dataclass(frozen=True)
class Relevance:
    """The decision and the signals behind it (recorded on the turn, reported by `eval`)."""

    relevant: bool
    reason: str = ""
    standout: float = 0.0
    coverage: float = 1.0
    missing: tuple[str, ...] = ()
    """Content words of the question that no retrieved passage uses."""
    unknown: tuple[str, ...] = ()
    """Content words of the question that the whole knowledge base never uses."""
    expects: tuple[str, ...] = ()
    """Kinds of fact the question asks for (phone, time, number …); empty for open questions."""

    def as_json(self) -> dict[str, object]:
        return {
            "relevant": self.relevant,
            "reason": self.reason,
            "standout": self.standout,
            "coverage": self.coverage,
            "missing": list(self.missing),
            "unknown": list(self.unknown),
            "expects": list(self.expects),
        }


def judge(question: str, retrieval: Retrieval, terms: TermStats) -> Relevance:
    """Decide whether the hits of this retrieval can answer the question."""
    hits = retrieval.hits
    if not hits:
        return Relevance(False, "no passage")
    best = max(hits, key=lambda hit: hit.score)
    standout = retrieval.standout(best) if retrieval.background_std else STANDOUT_STRONG
    words = content_words(question)
    used = _words_of(hits)
    missing = tuple(w for w in words if not _uses(used, w))
    unknown = tuple(w for w in missing if terms.documents and w not in terms)
    expects = expected_kinds(question)
    signals = Relevance(
        True,
        standout=round(standout, 3),
        coverage=round(_coverage(words, missing, terms), 3),
        missing=missing,
        unknown=unknown,
        expects=tuple(sorted(expects)),
    )
    passages = _normalise(" ".join(hit.text for hit in hits))
    absent = [name for name in named_things(question) if _normalise(name) not in passages]
    reason = ""
    if standout < STANDOUT_MIN:
        reason = "no passage stands out"
    elif absent:
        reason = "the passages never name " + ", ".join(absent)
    elif expects and not _contains_kind(hits, expects):
        reason = "the passages hold no such value"
    elif unknown and standout < STANDOUT_STRONG:
        reason = "the documents never mention " + ", ".join(unknown)
    elif signals.coverage < COVERAGE_MIN:
        reason = "the passages miss most of the question" + (
            f" (the documents never mention {', '.join(unknown)})" if unknown else ""
        )
    return replace(signals, relevant=not reason, reason=reason)


def named_things(question: str) -> list[str]:
    """Options, identifiers and code the question names (`dict.popitem()` as `popitem`):
    passages that lack them are about something else."""
    kinds = {"option", "identifier", "code", "email", "url"}
    names = [re.sub(r"\(.*\)$", "", f.text) for f in extract_facts(question) if f.kind in kinds]
    return [
        name.rsplit(".", 1)[-1] if "@" not in name and "/" not in name else name for name in names
    ]


def _coverage(words: Sequence[str], missing: Sequence[str], terms: TermStats) -> float:
    """The share of the question's words that the passages use; a word the knowledge base never
    uses counts twice (weighting by inverse document frequency was tried: in a small corpus it
    made everyday words such as "happens" or "temporary" decide the question)."""
    if not words:
        return 1.0
    unknown = [w for w in missing if terms.documents and w not in terms]
    return 1.0 - (len(missing) + len(unknown)) / (len(words) + len(unknown))


def content_words(text: str) -> tuple[str, ...]:
    """The question's words that carry its topic, in order, once each."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower().replace("'", " ")):
        if word not in _STOP and len(word) > 2:
            seen.setdefault(word, None)
    return tuple(seen)


def expected_kinds(question: str) -> frozenset[str]:
    """The kinds of fact a question asks for; empty when it asks how or why."""
    kinds: set[str] = set()
    for pattern, wanted in _EXPECTS:
        if pattern.search(question):
            kinds |= wanted
    return frozenset(kinds)


def _contains_kind(hits: Sequence[Hit], kinds: frozenset[str]) -> bool:
    text = "\n".join(hit.text for hit in hits)
    if "number" in kinds and _NUMBER_WORDS.search(text):
        return True
    return any(fact.kind in kinds for fact in extract_facts(text))


def _words_of(hits: Sequence[Hit]) -> frozenset[str]:
    text = " ".join(f"{hit.title} {hit.heading} {hit.text}" for hit in hits)
    return frozenset(_WORD.findall(text.lower()))


def _uses(words: frozenset[str], term: str) -> bool:
    """The word, or one sharing its stem (refund ~ refunds, ship ~ shipping), is among `words`."""
    stem = stem_of(term)
    return term in words or any(w.startswith(stem) for w in words)


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace("`", "").split())
