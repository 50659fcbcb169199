"""`assistant eval`: how well the assistant answers from a knowledge base, measured on a file of
questions: source hits, answer hits, abstention, invented facts, degenerate answers, latency."""

from assistant.evaluation.questions import (
    Question,
    QuestionFileError,
    QuestionSet,
    load_questions,
    subset,
)
from assistant.evaluation.report import render_markdown
from assistant.evaluation.runner import (
    BASELINE_NAME,
    EvalReport,
    EvaluationError,
    RunResult,
    Variant,
    ask_all,
    ask_baseline,
    evaluate,
)
from assistant.evaluation.scoring import Checks, ItemResult, default_checks, summarise

__all__ = [
    "BASELINE_NAME",
    "Checks",
    "EvalReport",
    "EvaluationError",
    "ItemResult",
    "Question",
    "QuestionFileError",
    "QuestionSet",
    "RunResult",
    "Variant",
    "ask_all",
    "ask_baseline",
    "default_checks",
    "evaluate",
    "load_questions",
    "render_markdown",
    "subset",
    "summarise",
]
