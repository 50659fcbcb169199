"""Knowledge gaps: questions the assistant answered badly (abstained, thumbs down, followed by a
request for a person), grouped by meaning, with the closest existing documents: what to write next.

Questions are embedded with the knowledge base's embedder and grouped by agglomerative clustering
(scikit-learn, average linkage, a cosine distance threshold: no number of groups to guess).

>>> gaps = find_gaps(database.engine, embedder.embed, closest_documents(knowledge))
>>> gaps[0].size, gaps[0].examples[0]
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, and_, func, or_, select

from assistant_core.db import stored_utc
from dialog.insights.report import ANSWER_ACTIONS, Gap
from dialog.records import EventRow

Embed = Callable[[Sequence[str]], NDArray[np.float32]]
"""Texts to L2-normalised vectors (`Embedder.embed`)."""
Closest = Callable[[str], list[dict[str, Any]]]
"""A question to the closest documents: [{"title", "source", "score"}], best first."""

DISTANCE_THRESHOLD = 0.55
"""Cosine distance (1 − similarity) below which groups merge; paraphrases under all-MiniLM-L6-v2
sit at 0.1–0.45, different questions about the same shop at 0.6 and more."""
MAX_QUESTIONS = 5000
"""The newest bad questions clustered at most (memory and time stay bounded on any history)."""
EXAMPLES = 3


class _Searches(Protocol):
    def search(self, query: str, *, k: int = 3, min_score: float = -1.0) -> list[Any]: ...


@dataclass
class BadQuestion:
    """A customer's question and what went wrong with its answer."""

    conversation_id: str
    seq: int
    text: str
    at: datetime
    reasons: set[str] = field(default_factory=set)


def bad_questions(
    engine: Engine, since: date | None = None, *, limit: int = MAX_QUESTIONS
) -> list[BadQuestion]:
    """The questions answered badly from `since` on, read from the events of the newest `limit`
    conversations that had an abstention, a thumbs down or a handoff."""
    e = EventRow
    start = datetime.combine(since, time(), UTC) if since else None
    signal = or_(
        and_(e.type == "bot", e.payload[("check", "action")].as_string() == "abstained"),
        and_(e.type == "feedback", ~e.payload["positive"].as_boolean()),
        e.type == "handoff",
    )
    flagged = select(e.conversation_id).where(signal)
    if start is not None:
        flagged = flagged.where(e.created_at >= start)
    newest = flagged.group_by(e.conversation_id).order_by(func.max(e.id).desc()).limit(limit)
    query = (
        select(e.conversation_id, e.seq, e.type, e.payload, e.created_at)
        .where(e.conversation_id.in_(newest), e.type.in_(_READ))
        .order_by(e.conversation_id, e.seq)
    )
    found: list[BadQuestion] = []
    with engine.connect() as connection:
        rows = connection.execute(query)
        conversation: list[Any] = []
        for row in rows:
            if conversation and row.conversation_id != conversation[0].conversation_id:
                found.extend(_walk(conversation))
                conversation = []
            conversation.append(row)
        found.extend(_walk(conversation))
    if start is not None:
        found = [q for q in found if q.at >= start]
    return sorted(found, key=lambda q: q.at)[-limit:]


_READ = ("user", "bot", "feedback", "handoff")


def _walk(rows: Sequence[Any]) -> Iterable[BadQuestion]:
    """Link each signal to its question: an abstention to the question it answered, a thumbs down
    to the question of the answer it rates, a handoff to the last question answered before it."""
    questions: dict[int, BadQuestion] = {}
    asked: BadQuestion | None = None
    answered: dict[int, BadQuestion] = {}
    last_answered: BadQuestion | None = None
    for row in rows:
        payload = row.payload
        if row.type == "user":
            text = str(payload.get("text", "")).strip()
            at = stored_utc(row.created_at)
            is_question = bool(text) and not text.startswith("/")
            asked = BadQuestion(row.conversation_id, row.seq, text, at) if is_question else None
        elif row.type == "bot":
            action = (payload.get("check") or {}).get("action")
            if asked is not None and action in ANSWER_ACTIONS:
                answered[row.seq] = last_answered = asked
                if action == "abstained":
                    _mark(questions, asked, "abstained")
        elif row.type == "feedback" and not payload.get("positive", True):
            target = payload.get("target_seq")
            rated = answered.get(target) if target is not None else last_answered
            if rated is not None:
                _mark(questions, rated, "thumbs_down")
        elif row.type == "handoff" and last_answered is not None:
            _mark(questions, last_answered, "handoff")
            last_answered = None
    return sorted(questions.values(), key=lambda q: q.seq)


def _mark(questions: dict[int, BadQuestion], question: BadQuestion, reason: str) -> None:
    questions.setdefault(question.seq, question).reasons.add(reason)


def group_by_meaning(
    texts: Sequence[str], embed: Embed, *, threshold: float = DISTANCE_THRESHOLD
) -> tuple[list[int], NDArray[np.float32]]:
    """A group label per text (agglomerative clustering on cosine distance) and the vectors.

    Each distinct text (ignoring case and surrounding space) is embedded and clustered once:
    embedding is the slow part, and customers often ask the very same thing.
    """
    keys = [t.strip().casefold() for t in texts]
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    distinct = list(first)
    unique = np.asarray(embed([texts[first[k]] for k in distinct]), dtype=np.float32)
    slot = {key: i for i, key in enumerate(distinct)}
    rows = [slot[k] for k in keys]
    if len(distinct) < 2:
        return [0] * len(texts), unique[rows]
    from sklearn.cluster import AgglomerativeClustering

    clustering = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="cosine", linkage="average"
    )
    labels = clustering.fit_predict(unique)
    return [int(labels[r]) for r in rows], unique[rows]


def find_gaps(
    engine: Engine,
    embed: Embed,
    closest: Closest | None = None,
    since: date | None = None,
    *,
    threshold: float = DISTANCE_THRESHOLD,
    redact: Callable[[str], str] | None = None,
    limit: int = MAX_QUESTIONS,
) -> list[Gap]:
    """The knowledge gaps from `since` on, largest group first (examples masked by `redact`)."""
    questions = bad_questions(engine, since, limit=limit)
    if not questions:
        return []
    labels, vectors = group_by_meaning([q.text for q in questions], embed, threshold=threshold)
    members: defaultdict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        members[label].append(i)
    gaps = [
        _gap([questions[i] for i in group], vectors[group], closest, redact)
        for group in members.values()
    ]
    return sorted(gaps, key=lambda g: (-g.size, g.examples[0]))


def _gap(
    questions: list[BadQuestion],
    vectors: NDArray[np.float32],
    closest: Closest | None,
    redact: Callable[[str], str] | None,
) -> Gap:
    """A group's examples are its distinct questions nearest its centre; the first one stands for
    the group when the closest documents are looked up."""
    centre = vectors.mean(axis=0)
    order = np.argsort(-(vectors @ centre), kind="stable")
    examples: list[str] = []
    for i in order:
        text = questions[int(i)].text
        if text.casefold() not in {e.casefold() for e in examples}:
            examples.append(text)
        if len(examples) == EXAMPLES:
            break
    reasons = Counter(reason for q in questions for reason in q.reasons)
    documents = closest(examples[0]) if closest else []
    shown = [redact(e) for e in examples] if redact else examples
    return Gap(len(questions), shown, dict(sorted(reasons.items())), documents)


def closest_documents(knowledge: _Searches, k: int = 3) -> Closest:
    """The knowledge base's best passages for a question, one per document."""

    def closest(question: str) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for hit in knowledge.search(question, k=k * 3):
            if hit.source not in seen:
                seen[hit.source] = {
                    "title": hit.title,
                    "source": hit.source,
                    "score": round(float(hit.score), 3),
                }
        return list(seen.values())[:k]

    return closest
