"""One grounded answer: the model's text checked as it streams, a verbatim quote as evidence, and
the passages themselves whenever the model's text cannot be trusted."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence

from dialog.facts import Evidence, extract_facts
from dialog.grounding import GroundedStream
from dialog.messages import Grounding, Source
from dialog.polarity import flipped_negation
from dialog.quotes import Quote, QuotePicker

EXTRACTIVE_INTRO = "Here is what I found in our documents:"
DECLINE_OFFER = "Would you like me to connect you with a person?"
NO_SENTENCE = f"I couldn't find a reliable answer to that in our documents. {DECLINE_OFFER}"
_DECLINED = re.compile(
    r"\b(?:i (?:do not|don't|cannot|can't|couldn't|could not) (?:know|find|answer|say|tell)|"
    r"(?:is|are) not (?:mentioned|provided|stated|included|specified|covered|given)|"
    r"(?:do|does|did)(?: not|n't) (?:say|mention|specify|state|contain|include)|"
    r"no (?:information|details|mention) (?:about|on|of)|not sure)\b",
    re.I,
)
_PERSON = re.compile(r"\b(?:person|human|agent|colleague|someone)\b", re.I)
SECOND_QUOTE_SHARE = 0.9
"""A second quote joins the extractive answer when it scores this close to the best one."""


class GroundedAnswer:
    """Wraps the model's stream for one question and settles what is stored and shown.

    >>> answer = GroundedAnswer("How long?", sources, QuotePicker(None))
    >>> "".join(answer.stream(model_deltas))   # verified text, or the passages quoted
    >>> text, sources, grounding = answer.settle(streamed_text)
    """

    def __init__(
        self,
        question: str,
        sources: Sequence[Source],
        quotes: QuotePicker,
        *,
        conversation: Sequence[str] = (),
        intro: str = EXTRACTIVE_INTRO,
        suffix: str = "",
        relevance: dict[str, object] | None = None,
    ) -> None:
        self.question = question
        self.sources = list(sources)
        self.quotes = quotes
        self.intro = intro
        self.suffix = f"\n\n{suffix}" if suffix else ""
        self.relevance = relevance or {}
        """Said after the answer whatever it is (a form's question, an offer of a person)."""
        evidence = Evidence(
            [*(f"{s.title}\n{s.text}" for s in self.sources), question, *conversation]
        )
        self.check = GroundedStream(evidence, vet=self._polarity)
        self.replacement = ""
        """What replaced the model's text: the passages quoted, or the offer of a person ("" while
        the model's text stands)."""
        self._quotes: list[Quote] = []
        self.declined = False

    def stream(self, deltas: Iterable[str]) -> Iterator[str]:
        """Verified text as it comes; after a failed check, the passages' best lines instead."""
        shown = False
        for part in self.check.stream(deltas):
            shown = shown or bool(part.strip())
            yield part
        if self.check.failure:
            self._quotes = self._pick(2)
            self.replacement = self._extractive() if self._quotes else NO_SENTENCE
        elif _DECLINED.search(self.check.text):
            self.declined = True
            if not _PERSON.search(self.check.text) and not self.suffix:
                yield f" {DECLINE_OFFER}"
        else:
            self._quotes = self._pick(1)
            if not self._quotes:  # fluent, but no sentence of the passages answers the question
                self.replacement = NO_SENTENCE
        if self.replacement:
            yield ("\n\n" if shown else "") + self.replacement
        if self.suffix:
            yield self.suffix

    @property
    def asks_for_person(self) -> bool:
        """The answer ended with the offer of a person, so a "yes" next hands off."""
        return self.declined or (bool(self.replacement) and not self._quotes)

    def settle(self, streamed: str) -> tuple[str, list[Source], Grounding]:
        """The answer as stored: the replacement alone when the check failed or no sentence
        backs the answer, else what streamed, with the quote that backs it."""
        facts = tuple(f.text for f in extract_facts(self.check.text))
        unsupported = tuple(f.text for f in self.check.unsupported)
        if self.declined:
            declined = Grounding("abstained", facts, (), "the model declined", self.relevance)
            return streamed, self.sources, declined
        if not self._quotes:
            reason = self.check.reason or "no sentence of the passages answers the question"
            grounding = Grounding("abstained", facts, unsupported, reason, self.relevance)
            return self.replacement + self.suffix, self.sources, grounding
        if self.replacement:
            grounding = Grounding(
                "extractive", facts, unsupported, self.check.reason, self.relevance
            )
            return self.replacement + self.suffix, self._quoted(self._quotes), grounding
        return (
            streamed,
            self._quoted(self._quotes),
            Grounding("passed", facts, relevance=self.relevance),
        )

    def _polarity(self, sentence: str) -> str:
        """Why a negating sentence may not stand: its closest passage sentence does not negate (a
        decline, "I don't know", is not a claim about the passages)."""
        if _DECLINED.search(sentence):
            return ""
        word = flipped_negation(
            self.question, sentence, [s.text for s in self.sources], self.quotes
        )
        return f'the answer negates what its passages say ("{word}")' if word else ""

    def _pick(self, n: int) -> list[Quote]:
        quotes = self.quotes.best(self.question, [s.text for s in self.sources], n=n)
        if len(quotes) == 2 and quotes[1].score < SECOND_QUOTE_SHARE * quotes[0].score:
            quotes = quotes[:1]
        return quotes

    def _extractive(self) -> str:
        blocks = [f"> {q.text}\n>\n> — {_cite(self.sources[q.passage])}" for q in self._quotes]
        return "\n\n".join([self.intro, *blocks])

    def _quoted(self, quotes: Sequence[Quote]) -> list[Source]:
        by_passage: dict[int, list[str]] = {}
        for quote in quotes:
            by_passage.setdefault(quote.passage, []).append(quote.text)
        return [
            dataclasses.replace(source, quote=" … ".join(by_passage[i]))
            if i in by_passage
            else source
            for i, source in enumerate(self.sources)
        ]


def _cite(source: Source) -> str:
    return source.title or source.source.rsplit("/", 1)[-1]
