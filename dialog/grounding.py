"""The grounding check on a streamed answer: show only what the evidence supports.

Text is released as it arrives up to the first place a fact may start (a digit, an `@`, a quote,
an option, a code-like word …); the rest of that sentence is held back until the sentence is
complete and every fact in the answer so far is found in the evidence. An unsupported fact or a
loop stops the stream: the model's text is dropped and the turn answers from the passages. With a
sentence check (`vet`), a sentence is also held from its first negating word until the check has
passed it: an answer that says "not" where its passages do not is stopped the same way.

>>> check = GroundedStream(Evidence(["Returns are accepted within 30 days."]))
>>> "".join(check.stream(["You have ", "30 days. ", "Then 10% is kept."]))
'You have 30 days. Then '
>>> check.failure, [f.text for f in check.unsupported]
('unsupported', ['10%'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from dialog.facts import Evidence, Fact, extract_facts, unsupported_facts
from dialog.loops import loop_reason
from dialog.polarity import NEGATION

_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
_MAY_START_FACT = re.compile(
    r"[\d@_`\"“$€£¥%/:]|(?<![\w-])-|\w\.\w|\b[A-Z]{2,}|\b[A-Z][a-z]+[A-Z]|\bhttps?|\bwww\."
)

_MAY_BECOME_NEGATION = re.compile(r"\b\w*n$")
"""An unfinished last word that the next token may turn into "isn't" or "cannot"."""


class GroundedStream:
    """Feed it the model's deltas; it yields what is verified and stops at the first problem."""

    def __init__(self, evidence: Evidence, *, vet: Callable[[str], str] | None = None) -> None:
        self.evidence = evidence
        self.vet = vet
        """A check on each complete sentence that negates: why it may not be shown, or "" (the
        answer's polarity against its passages)."""
        self.text = ""
        self.failure = ""
        """"" while all is well; "unsupported", "negated" or "loop" once the stream was stopped."""
        self.reason = ""
        self.unsupported: list[Fact] = []
        self._checked = 0
        self._released = 0

    @property
    def facts(self) -> list[Fact]:
        """Every checkable fact of the text so far."""
        return extract_facts(self.text)

    def stream(self, deltas: Iterable[str]) -> Iterator[str]:
        """Yield verified text; stop consuming (and close) the deltas at the first problem."""
        source = iter(deltas)
        try:
            for delta in source:
                released = self.feed(delta)
                if released:
                    yield released
                if self.failure:
                    return
            tail = self.finish()
            if tail:
                yield tail
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def feed(self, delta: str) -> str:
        """Add generated text; return the part that is now safe to show."""
        if self.failure:
            return ""
        self.text += delta
        reason = loop_reason(self.text)
        if reason:
            self._fail("loop", reason)
            return ""
        boundary = _last_boundary(self.text)
        if boundary > self._checked and not self._verify(self.text[:boundary], boundary):
            return ""
        self._checked = max(self._checked, boundary)
        return self._release(self._safe_end())

    def finish(self) -> str:
        """The stream ended: verify the last sentence and release it."""
        if self.failure or not self._verify(self.text, len(self.text)):
            return ""
        self._checked = len(self.text)
        return self._release(len(self.text))

    def _verify(self, text: str, end: int) -> bool:
        """The facts of all the text so far, then the sentences new up to `end`."""
        missing = unsupported_facts(text, self.evidence)
        if missing:
            self.unsupported = missing
            self._fail("unsupported", "not in the passages: " + ", ".join(f.text for f in missing))
            return False
        return self._vetted(self.text[self._checked : end])

    def _vetted(self, new: str) -> bool:
        """Each new sentence that negates, through the sentence check."""
        if self.vet is None:
            return True
        for sentence in _SENTENCE_END.split(new):
            reason = self.vet(sentence.strip()) if NEGATION.search(sentence) else ""
            if reason:
                self._fail("negated", reason)
                return False
        return True

    def _fail(self, failure: str, reason: str) -> None:
        self.failure, self.reason = failure, reason

    def _safe_end(self) -> int:
        """Up to the first possible fact of the unfinished sentence (cut before its word), else all:
        the first word goes out with the first token."""
        tail = self.text[self._checked :]
        risky = _MAY_START_FACT.search(tail)
        negated = NEGATION.search(tail) if self.vet is not None else None
        if negated is not None and (risky is None or negated.start() < risky.start()):
            risky = negated
        if risky is None:  # plain words, the last one perhaps unfinished: nothing to verify yet
            unfinished = _MAY_BECOME_NEGATION.search(tail) if self.vet is not None else None
            return self._checked + unfinished.start() if unfinished else len(self.text)
        cut = max(tail.rfind(" ", 0, risky.start() + 1), tail.rfind("\n", 0, risky.start() + 1))
        return self._checked + (cut + 1 if cut >= 0 else 0)

    def _release(self, end: int) -> str:
        if end <= self._released:
            return ""
        out, self._released = self.text[self._released : end], end
        return out


def _last_boundary(text: str) -> int:
    """The end of the last complete sentence (just after its terminator)."""
    last = 0
    for match in _SENTENCE_END.finditer(text):
        last = match.end()
    return last
