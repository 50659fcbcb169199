"""Run a question set through the real dialog manager under one or more settings, and through the
bare chat model as a baseline."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from assistant.evaluation.questions import Question, QuestionSet
from assistant.evaluation.scoring import (
    Checks,
    ItemResult,
    default_checks,
    score,
    source_matches,
    summarise,
)
from assistant_core.chat_model import ChatModel
from assistant_core.errors import AssistantError
from assistant_core.settings import Settings, load_settings
from dialog.messages import Message, Reply, new_conversation_id

log = logging.getLogger(__name__)

BASELINE_NAME = "model alone"
BASELINE_PROMPT = (
    "You are a helpful customer-support assistant. Answer the question in one to three short "
    "sentences."
)
INGEST_KEYS = ("chunk_size", "chunk_overlap", "embedding_model")
"""Settings that change what is stored: variants differing in them get their own knowledge base."""
_SHARED_LM_KEYS = ("chat_model", "llm_base_url", "llm_model", "llm_dtype", "device", "model_dir")
_SHARED_EMBEDDER_KEYS = ("embedding_model", "embedding_backend", "device", "model_dir")


class EvaluationError(AssistantError):
    """The evaluation could not run (a bad --compare, an empty corpus)."""


@dataclass(frozen=True)
class Variant:
    """One column of the report: settings overrides, e.g. {"retrieval": "vector"}."""

    overrides: dict[str, str] = field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        derived = ",".join(f"{k}={v}" for k, v in self.overrides.items())
        return self.label or derived or "configured settings"

    @classmethod
    def parse(cls, spec: str) -> Variant:
        """`retrieval=vector,top_k=5` -> Variant({"retrieval": "vector", "top_k": "5"})."""
        overrides = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip().lower().removeprefix("assistant_")
            if not sep or not key:
                raise EvaluationError(f"--compare {spec!r}: expected KEY=VALUE[,KEY=VALUE]")
            if key not in Settings.model_fields:
                raise EvaluationError(f"--compare {spec!r}: {key!r} is not a setting")
            overrides[key] = value.strip()
        if not overrides:
            raise EvaluationError(f"--compare {spec!r}: expected KEY=VALUE[,KEY=VALUE]")
        return cls(overrides)


@dataclass
class RunResult:
    """One column: the variant's (or the baseline's) figures and per-question results."""

    name: str
    overrides: dict[str, str]
    summary: dict[str, Any]
    items: list[ItemResult]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "settings": self.overrides,
            "summary": self.summary,
            "items": [i.as_json() for i in self.items],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        items = [ItemResult(**item) for item in data.get("items", [])]
        return cls(data["name"], dict(data.get("settings", {})), dict(data["summary"]), items)


@dataclass
class EvalReport:
    """Everything `assistant eval` measured in one run."""

    name: str
    path: str
    questions: int
    answerable: int
    unanswerable: int
    corpus: str | None
    runs: list[RunResult]
    baseline: RunResult | None
    k: int
    started_at: str = ""
    duration_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.path,
            "questions": self.questions,
            "answerable": self.answerable,
            "unanswerable": self.unanswerable,
            "corpus": self.corpus,
            "k": self.k,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 1),
            "runs": [r.as_json() for r in self.runs],
            "baseline": self.baseline.as_json() if self.baseline else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalReport:
        """A report read back from its `eval.json`, e.g. to render it again."""
        baseline = data.get("baseline")
        return cls(
            name=data["name"],
            path=data["file"],
            questions=data["questions"],
            answerable=data["answerable"],
            unanswerable=data["unanswerable"],
            corpus=data.get("corpus"),
            runs=[RunResult.from_json(r) for r in data["runs"]],
            baseline=RunResult.from_json(baseline) if baseline else None,
            k=data["k"],
            started_at=data.get("started_at", ""),
            duration_s=data.get("duration_s", 0.0),
        )


class Asker(Protocol):
    def handle(self, message: Message) -> Reply: ...


Retriever = Callable[[str], Sequence[str]]
"""A question -> the sources of the knowledge base's best passages, best first."""
OnItem = Callable[[str, ItemResult], None]


def _ignore(_name: str, _item: ItemResult) -> None:
    return None


def abstained(reply: Reply) -> bool:
    """The assistant declined to answer from the documents: its grounding check says so, or the
    reply has no passages and generated nothing (nothing relevant was retrieved)."""
    return reply.abstained or (
        reply.grounding.action == "none" and not reply.sources and not reply.handoff
    )


def ask_all(
    assistant: Asker,
    questions: Sequence[Question],
    *,
    name: str,
    retriever: Retriever | None = None,
    checks: Checks | None = None,
    k: int = 5,
    on_item: OnItem = _ignore,
) -> list[ItemResult]:
    """Each question in a fresh conversation, scored; a turn that fails is recorded, not raised."""
    checks = checks or default_checks()
    items = []
    for question in questions:
        item = ItemResult(question.id, question.question, question.answerable)
        evidence: list[str] = [question.question]
        started = time.perf_counter()
        try:
            reply = assistant.handle(
                Message(question.question, new_conversation_id(), channel="eval")
            )
        except Exception as err:  # noqa: BLE001 - one failed turn must not end the run
            log.warning("eval %s: %s failed: %s", name, question.id, err)
            item.error = f"{type(err).__name__}: {err}"
        else:
            item.latency_ms = round((time.perf_counter() - started) * 1000, 1)
            item.answer = reply.answer
            item.abstained = abstained(reply)
            item.grounding = reply.grounding.action
            item.reason = reply.grounding.reason
            item.sources = [s.source for s in reply.sources]
            item.quotes = [s.quote for s in reply.sources if s.quote]
            evidence += [f"{s.title}\n{s.text}" for s in reply.sources]
        retrieved = retriever(question.question) if retriever and question.source else None
        items.append(
            score(question, item, evidence=evidence, checks=checks, retrieved=retrieved, k=k)
        )
        on_item(name, item)
    return items


def ask_baseline(
    model: ChatModel,
    questions: Sequence[Question],
    *,
    gold: Callable[[Question], Sequence[str]],
    checks: Checks | None = None,
    max_tokens: int = 160,
    temperature: float = 0.0,
    on_item: OnItem = _ignore,
) -> list[ItemResult]:
    """The same chat model asked each question directly, without passages. Its facts are checked
    against the expected document's text (and the question)."""
    checks = checks or default_checks()
    items = []
    for question in questions:
        item = ItemResult(question.id, question.question, question.answerable, grounding="none")
        messages = [
            {"role": "system", "content": BASELINE_PROMPT},
            {"role": "user", "content": question.question},
        ]
        started = time.perf_counter()
        try:
            parts = model.stream(messages, max_tokens=max_tokens, temperature=temperature)
            item.answer = "".join(parts).strip()
            item.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        except Exception as err:  # noqa: BLE001
            item.error = f"{type(err).__name__}: {err}"
        evidence = [question.question, *gold(question)]
        items.append(score(question, item, evidence=evidence, checks=checks, can_abstain=False))
        on_item(BASELINE_NAME, item)
    return items


def baseline_summary(questions: Sequence[Question], items: Sequence[ItemResult]) -> dict[str, Any]:
    """The baseline's figures: what retrieval and abstention would measure is not applicable."""
    summary = summarise(questions, items, k=0, citations=0)
    for key in (
        "answered",
        "answered_rate",
        "source_hits_at_k",
        "source_hit_at_k",
        "citation_hits",
        "citation_hit_rate",
        "abstained_unanswerable",
        "abstention_rate",
    ):
        summary[key] = None
    return summary


# ---- building real assistants ---------------------------------------------------------------


def variant_settings(base: Settings, variant: Variant, data_dir: Path | None) -> Settings:
    """The base settings with the variant's overrides; with `data_dir`, a fresh database and index
    there (converted models stay where they are)."""
    exclude = {"data_dir", "database_url", "upload_dir"} if data_dir else set()
    values: dict[str, Any] = base.model_dump(exclude=exclude)
    values.update(variant.overrides)
    if data_dir is not None:
        values["data_dir"] = data_dir
    try:
        return load_settings(**values)
    except AssistantError as err:
        raise EvaluationError(f"--compare {variant.name}: {err}") from err


class Bench:
    """Builds one `Components` per variant, sharing what can be shared (the chat model, the
    embedder, a knowledge base ingested once per chunking), and closes them all."""

    def __init__(
        self,
        base: Settings,
        *,
        corpus: Path | None = None,
        overrides: dict[str, Any] | None = None,
        status: Callable[[str], None] = lambda _text: None,
    ) -> None:
        self.base = base
        self.corpus = corpus
        self.overrides = dict(overrides or {})
        self.status = status
        self._stack = ExitStack()
        self._workdir: Path | None = None
        self._knowledge_dirs: dict[tuple[Any, ...], Path] = {}
        self._models: dict[tuple[Any, ...], Any] = {}
        self._embedders: dict[tuple[Any, ...], Any] = {}
        self._built: list[Any] = []

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def components(self, variant: Variant) -> Any:
        from assistant.wiring import Components

        data_dir = self._data_dir(variant) if self.corpus else None
        settings = variant_settings(self.base, variant, data_dir)
        shared = dict(self.overrides)
        lm_key = tuple(getattr(settings, k) for k in _SHARED_LM_KEYS)
        embed_key = tuple(getattr(settings, k) for k in _SHARED_EMBEDDER_KEYS)
        if "chat_model" not in shared and lm_key in self._models:
            shared["chat_model"] = self._models[lm_key]
        if "embedder" not in shared and embed_key in self._embedders:
            shared["embedder"] = self._embedders[embed_key]
        components = Components(settings, shared)
        self._built.append(components)
        self._embedders.setdefault(embed_key, components.embedder)
        if self.corpus and data_dir is not None and not (data_dir / ".ingested").exists():
            self._ingest(components, data_dir)
        elif not self.corpus and components.knowledge.count()[1] == 0:
            raise EvaluationError(
                "the knowledge base is empty: ingest documents first (assistant ingest PATH), "
                "or evaluate on a folder with --corpus DIR"
            )
        self.status(f"{variant.name}: loading the chat model")
        if "chat_model" not in shared:
            self._models[lm_key] = components.chat_model
            self._stack.callback(_close_model, components.chat_model)
        _ = components.assistant
        components.warm_up()
        _warm_model(components.chat_model)
        return components

    def _data_dir(self, variant: Variant) -> Path:
        if self._workdir is None:
            self._workdir = Path(
                self._stack.enter_context(tempfile.TemporaryDirectory(prefix="assistant-eval-"))
            )
        merged = {**self.base.model_dump(include=set(INGEST_KEYS)), **variant.overrides}
        key = tuple(str(merged.get(k)) for k in INGEST_KEYS)
        if key not in self._knowledge_dirs:
            self._knowledge_dirs[key] = self._workdir / f"kb-{len(self._knowledge_dirs)}"
        return self._knowledge_dirs[key]

    def _ingest(self, components: Any, data_dir: Path) -> None:
        assert self.corpus is not None
        self.status(f"ingesting {self.corpus}")
        report = components.knowledge.ingest([self.corpus])
        for failure in report.failed:
            log.warning("eval: skipped %s", failure)
        if not report.chunks:
            raise EvaluationError(f"--corpus {self.corpus}: no readable documents")
        (data_dir / ".ingested").write_text(str(report.chunks))

    def close(self) -> None:
        for components in reversed(self._built):
            components.close()
        self._built.clear()
        self._stack.close()


def _close_model(model: Any) -> None:
    close = getattr(model, "close", None)
    if callable(close):
        close()


def _warm_model(model: ChatModel) -> None:
    """One tiny generation, so the first question's latency is not the model's start-up."""
    try:
        for _ in model.stream([{"role": "user", "content": "Hello"}], max_tokens=2):
            pass
    except Exception as err:  # noqa: BLE001 - the first question reports it properly
        log.warning("eval: model warm-up failed: %s", err)


def gold_texts(knowledge: Any) -> Callable[[Question], list[str]]:
    """The text of each question's expected documents, loaded from the ingested files."""
    from knowledge.loaders import load_document

    sources = [d.source for d in knowledge.documents()]
    cache: dict[str, str] = {}

    def texts(question: Question) -> list[str]:
        found = []
        for source in sources:
            if any(source_matches(e, source) for e in question.source):
                if source not in cache:
                    try:
                        cache[source] = load_document(Path(source)).text
                    except Exception as err:  # noqa: BLE001 - moved or unreadable: no evidence
                        log.warning("eval: cannot read %s: %s", source, err)
                        cache[source] = ""
                found.append(cache[source])
        return found

    return texts


def retriever_for(components: Any, k: int) -> Retriever:
    settings = components.settings

    def retrieve(question: str) -> list[str]:
        hits = components.knowledge.search(question, k=k, min_score=settings.min_score)
        return [h.source for h in hits]

    return retrieve


@contextmanager
def _timed() -> Iterator[Callable[[], float]]:
    started = time.perf_counter()
    yield lambda: time.perf_counter() - started


def evaluate(
    question_set: QuestionSet,
    *,
    base: Settings,
    variants: Sequence[Variant] = (),
    corpus: Path | None = None,
    baseline: bool = True,
    k: int = 5,
    overrides: dict[str, Any] | None = None,
    checks: Checks | None = None,
    on_item: OnItem = _ignore,
    status: Callable[[str], None] = lambda _text: None,
) -> EvalReport:
    """Every question under every variant (the configured settings when none), then the baseline,
    in one process."""
    checks = checks or default_checks()
    variants = list(variants) or [Variant()]
    questions = question_set.questions
    runs: list[RunResult] = []
    baseline_run = None
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with (
        _timed() as elapsed,
        Bench(base, corpus=corpus, overrides=overrides, status=status) as bench,
    ):
        first = None
        for variant in variants:
            components = bench.components(variant)
            first = first or components
            status(f"{variant.name}: asking {len(questions)} questions")
            items = ask_all(
                components.assistant,
                questions,
                name=variant.name,
                retriever=retriever_for(components, k),
                checks=checks,
                k=k,
                on_item=on_item,
            )
            summary = summarise(questions, items, k=k, citations=components.settings.top_k)
            runs.append(RunResult(variant.name, dict(variant.overrides), summary, items))
        if baseline and first is not None:
            status(f"{BASELINE_NAME}: asking {len(questions)} questions")
            items = ask_baseline(
                first.chat_model,
                questions,
                gold=gold_texts(first.knowledge),
                checks=checks,
                max_tokens=first.settings.max_new_tokens,
                temperature=first.settings.temperature,
                on_item=on_item,
            )
            baseline_run = RunResult(BASELINE_NAME, {}, baseline_summary(questions, items), items)
        duration = elapsed()
    return EvalReport(
        name=question_set.name,
        path=question_set.path,
        questions=len(questions),
        answerable=len(question_set.answerable),
        unanswerable=len(question_set.unanswerable),
        corpus=str(corpus) if corpus else None,
        runs=runs,
        baseline=baseline_run,
        k=k,
        started_at=started_at,
        duration_s=duration,
    )
