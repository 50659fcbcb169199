"""One grounded answer: the model's text checked as it streams, a verbatim quote as evidence, and
the passages themselves whenever the model's text cannot be trusted."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence

from dialog.facts import Evidence, extract_facts
from dialog.grounding import GroundedStream
from dialog.messages import Grounding, Source
from dialog.quotes import Quote, QuotePicker

EXTRACTIVE_INTRO = "Here is what I found in our documents:"
NOTHING_TO_QUOTE = "I couldn't find a reliable answer to that in our documents."
DECLINE_OFFER = "Would you like me to connect you with a person?"
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
        self.check = GroundedStream(evidence)
        self.replacement = ""
        """The extractive answer that replaced the model's text ("" while it stands)."""
        self._replacement_quotes: list[Quote] = []
        self.declined = False

    def stream(self, deltas: Iterable[str]) -> Iterator[str]:
        """Verified text as it comes; after a failed check, the passages' best lines instead."""
        shown = False
        for part in self.check.stream(deltas):
            shown = shown or bool(part.strip())
            yield part
        if self.check.failure:
            self.replacement = self._extractive()
            yield ("\n\n" if shown else "") + self.replacement
        elif _DECLINED.search(self.check.text):
            self.declined = True
            if not _PERSON.search(self.check.text) and not self.suffix:
                yield f" {DECLINE_OFFER}"
        if self.suffix:
            yield self.suffix

    @property
    def asks_for_person(self) -> bool:
        """The answer ended with the offer of a person, so a "yes" next hands off."""
        return self.declined or bool(self.check.failure and not self._replacement_quotes)

    def settle(self, streamed: str) -> tuple[str, list[Source], Grounding]:
        """The answer as stored: the replacement alone when the check failed, else what streamed,
        with the quote that backs it."""
        facts = tuple(f.text for f in extract_facts(self.check.text))
        if self.check.failure:
            unsupported = tuple(f.text for f in self.check.unsupported)
            action = "extractive" if self._replacement_quotes else "abstained"
            grounding = Grounding(action, facts, unsupported, self.check.reason, self.relevance)
            text = self.replacement + self.suffix
            return text, self._quoted(self._replacement_quotes), grounding
        if self.declined:
            declined = Grounding("abstained", facts, (), "the model declined", self.relevance)
            return streamed, self.sources, declined
        best = self.quotes.best(self.question, [s.text for s in self.sources], n=1)
        return streamed, self._quoted(best), Grounding("passed", facts, relevance=self.relevance)

    def _extractive(self) -> str:
        quotes = self.quotes.best(self.question, [s.text for s in self.sources], n=2)
        if len(quotes) == 2 and quotes[1].score < SECOND_QUOTE_SHARE * quotes[0].score:
            quotes = quotes[:1]
        self._replacement_quotes = quotes
        if not quotes:
            return f"{NOTHING_TO_QUOTE} {DECLINE_OFFER}"
        blocks = [f"> {q.text}\n>\n> — {_cite(self.sources[q.passage])}" for q in quotes]
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
