"""Scoring one reply against its question, and the figures of a whole run."""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

from assistant.evaluation.questions import Question


@dataclass(frozen=True)
class Checks:
    """The fact and loop detectors the scores use (the dialog manager's own, by default)."""

    unsupported: Callable[[str, Sequence[str]], Sequence[Any]]
    """Facts of an answer found in none of the evidence texts (objects with `.kind`, `.text`)."""
    degenerate: Callable[[str], bool]


def default_checks() -> Checks:
    from dialog.facts import unsupported_facts
    from dialog.loops import is_degenerate

    return Checks(unsupported_facts, is_degenerate)


_PLAIN = str.maketrans({"‘": "'", "’": "'", "‐": "-", "‑": "-", "–": "-", "—": "-"})
_MARKUP = re.compile(r"[\"“”„`*]")


def normalise(text: str) -> str:
    """The form answer hits compare: case, width, whitespace, curly quotes and Markdown/quote marks
    (`code`, **bold**, "quoted") do not matter."""
    text = _MARKUP.sub("", unicodedata.normalize("NFKC", text).translate(_PLAIN))
    return re.sub(r"\s+", " ", text).casefold().strip()


def contains_any(text: str, expected: Sequence[str]) -> bool:
    haystack = normalise(text)
    return any(normalise(e) in haystack for e in expected)


def source_matches(expected: str, actual: str) -> bool:
    """`refunds.md` or `help/refunds.md` matches `/srv/kb/help/refunds.md` (path suffix, any
    case)."""
    want = [
        p.casefold() for p in PurePath(expected.replace("\\", "/")).parts if p not in {"/", "."}
    ]
    have = [p.casefold() for p in PurePath(actual.replace("\\", "/")).parts]
    return bool(want) and have[-len(want) :] == want


def source_rank(expected: Sequence[str], sources: Sequence[str]) -> int | None:
    """1-based rank of the first source matching any expected document, else None."""
    for rank, actual in enumerate(sources, start=1):
        if any(source_matches(e, actual) for e in expected):
            return rank
    return None


@dataclass
class ItemResult:
    """One question's outcome under one setting (or the model alone)."""

    id: str
    question: str
    answerable: bool
    answer: str = ""
    abstained: bool = False
    grounding: str = ""
    """The turn's grounding verdict (passed, extractive, abstained, none) and why."""
    reason: str = ""
    sources: list[str] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)
    citation_rank: int | None = None
    """Rank of the expected document among the reply's sources."""
    retrieval_rank: int | None = None
    """Rank of the expected document among the knowledge base's top-k passages."""
    answer_hit: bool | None = None
    invented: list[str] = field(default_factory=list)
    degenerate: bool = False
    latency_ms: float = 0.0
    error: str = ""
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def fact_label(fact: Any) -> str:
    kind = getattr(fact, "kind", "")
    text = getattr(fact, "text", str(fact))
    return f"{text} ({kind})" if kind else str(text)


def score(
    question: Question,
    item: ItemResult,
    *,
    evidence: Sequence[str],
    checks: Checks,
    retrieved: Sequence[str] | None = None,
    k: int = 5,
    can_abstain: bool = True,
) -> ItemResult:
    """Fill in `item`'s scores from its answer, sources and quotes; `evidence` is what an answer's
    facts must be found in."""
    if item.error:
        item.problems.append(f"error: {item.error}")
        return item
    if question.source and retrieved is not None:
        item.retrieval_rank = source_rank(question.source, retrieved[:k])
    if question.source and can_abstain:
        item.citation_rank = source_rank(question.source, item.sources)
    if question.expect_any:
        item.answer_hit = not item.abstained and contains_any(
            "\n".join([item.answer, *item.quotes]), question.expect_any
        )
    if not item.abstained:
        item.invented = [fact_label(f) for f in checks.unsupported(item.answer, evidence)]
    item.degenerate = bool(item.answer.strip()) and checks.degenerate(item.answer)
    item.problems.extend(_problems(question, item, can_abstain=can_abstain, k=k))
    return item


def _problems(question: Question, item: ItemResult, *, can_abstain: bool, k: int) -> list[str]:
    problems = []
    if question.answerable and item.abstained:
        problems.append("abstained on an answerable question")
    if not question.answerable and can_abstain and not item.abstained:
        problems.append("answered an unanswerable question")
    if item.answer_hit is False and not item.abstained:
        problems.append("expected text missing: " + " / ".join(map(repr, question.expect_any)))
    if question.source and can_abstain and item.citation_rank is None and not item.abstained:
        problems.append("expected source not cited")
    if question.source and item.retrieval_rank is None and can_abstain:
        problems.append(f"expected source not in the top {k} passages")
    if item.invented:
        problems.append("invented facts: " + "; ".join(item.invented))
    if item.degenerate:
        problems.append("degenerate answer")
    return problems


def percentile(samples: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    if q == 0.5:
        return float(statistics.median(ordered))
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(
    questions: Sequence[Question], items: Sequence[ItemResult], *, k: int, citations: int
) -> dict[str, Any]:
    """The run's figures: counts and rates (None where nothing was measured), latency in ms."""
    pairs = list(zip(questions, items, strict=True))
    answerable = [(q, i) for q, i in pairs if q.answerable]
    unanswerable = [(q, i) for q, i in pairs if not q.answerable]
    with_text = [i for q, i in answerable if q.expect_any]
    with_source = [i for q, i in answerable if q.source]
    answered = sum(1 for _, i in answerable if not i.abstained and not i.error)
    abstained = sum(1 for _, i in unanswerable if i.abstained)
    hits = sum(1 for i in with_text if i.answer_hit)
    cited = sum(1 for i in with_source if i.citation_rank is not None)
    retrieved = sum(1 for i in with_source if i.retrieval_rank is not None)
    latencies = [i.latency_ms for i in items if not i.error]
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    return {
        "questions": len(items),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "answered": answered,
        "answered_rate": _rate(answered, len(answerable)),
        "answer_hits": hits,
        "answer_hit_rate": _rate(hits, len(with_text)),
        "answer_hit_questions": len(with_text),
        "source_questions": len(with_source),
        "source_hits_at_k": retrieved,
        "source_hit_at_k": _rate(retrieved, len(with_source)),
        "k": k,
        "citation_hits": cited,
        "citation_hit_rate": _rate(cited, len(with_source)),
        "citations": citations,
        "abstained_unanswerable": abstained,
        "abstention_rate": _rate(abstained, len(unanswerable)),
        "invented_answers": sum(1 for i in items if i.invented),
        "invented_facts": sum(len(i.invented) for i in items),
        "degenerate_answers": sum(1 for i in items if i.degenerate),
        "errors": sum(1 for i in items if i.error),
        "latency_ms_p50": None if p50 is None else round(p50, 1),
        "latency_ms_p95": None if p95 is None else round(p95, 1),
    }
