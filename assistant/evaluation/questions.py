"""Question files for `assistant eval`: YAML or JSONL, validated item by item.

```yaml
name: Our help centre            # optional
questions:                       # or the list alone at the top level
  - question: How much does standard shipping cost?
    expect_any: ["4.95"]         # any of these strings in the answer (or its quotes) is a hit
    source: shipping-times-and-costs.md   # a file name or path suffix expected among the sources
  - question: What is your phone number in Japan?
    answerable: false            # the documents do not say: the assistant should abstain
```

JSONL: one object per line with the same keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assistant_core.errors import AssistantError


class QuestionFileError(AssistantError):
    """A question file that cannot be read or has an invalid item; the message names the item."""


class Question(BaseModel):
    """One evaluation question."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(min_length=1)
    id: str = ""
    expect_any: list[str] = Field(default_factory=list)
    """Strings a good answer contains (any one of them; case and whitespace are ignored)."""
    source: list[str] = Field(default_factory=list)
    """Documents expected among the sources (any one of them), by file name or path suffix."""
    answerable: bool = True
    note: str = ""

    @field_validator("expect_any", "source", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("expect_any", "source")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("must not contain empty strings")
        return [item.strip() for item in value]

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if not self.answerable and (self.expect_any or self.source):
            raise ValueError("an unanswerable question takes no expect_any or source")
        if self.answerable and not (self.expect_any or self.source):
            raise ValueError("give expect_any and/or source, or answerable: false")
        return self


class QuestionSet(BaseModel):
    """A named list of questions, as read from one file."""

    name: str
    path: str = ""
    questions: list[Question]

    @property
    def answerable(self) -> list[Question]:
        return [q for q in self.questions if q.answerable]

    @property
    def unanswerable(self) -> list[Question]:
        return [q for q in self.questions if not q.answerable]


def load_questions(path: Path) -> QuestionSet:
    """Read and validate a `.yaml`/`.yml` or `.jsonl` question file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise QuestionFileError(f"{path}: cannot read the question file ({err})") from err
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        name, raw = path.stem, _jsonl_items(path, text)
    elif path.suffix.lower() in {".yaml", ".yml"}:
        name, raw = _yaml_items(path, text)
    else:
        raise QuestionFileError(f"{path}: a question file is .yaml, .yml or .jsonl")
    if not raw:
        raise QuestionFileError(f"{path}: no questions")
    questions, seen = [], set()
    for number, (line, item) in enumerate(raw, start=1):
        where = f"{path}, question {number} (line {line})"
        if not isinstance(item, dict):
            raise QuestionFileError(f"{where}: expected a mapping with a `question` key")
        try:
            question = Question.model_validate(item)
        except ValidationError as err:
            raise QuestionFileError(f"{where}: {_describe(err)}") from err
        if not question.id:
            question.id = f"q{number}"
        if question.id in seen:
            raise QuestionFileError(f"{where}: duplicate id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    return QuestionSet(name=name, path=str(path), questions=questions)


def _describe(err: ValidationError) -> str:
    parts = []
    for problem in err.errors():
        field = ".".join(str(p) for p in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


def _jsonl_items(path: Path, text: str) -> list[tuple[int, Any]]:
    items = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((line_number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise QuestionFileError(f"{path}, line {line_number}: not JSON ({err.msg})") from err
    return items


def _yaml_items(path: Path, text: str) -> tuple[str, list[tuple[int, Any]]]:
    """The items with the line each starts on (from YAML's node tree)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise QuestionFileError(f"{path}: not valid YAML ({err})") from err
    name = path.stem
    items_node: Any = root
    if isinstance(data, dict):
        unknown = set(data) - {"name", "description", "questions"}
        if unknown:
            raise QuestionFileError(
                f"{path}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))} "
                "(expected name, description, questions)"
            )
        name = str(data.get("name") or name)
        data = data.get("questions")
        pairs = root.value if isinstance(root, yaml.MappingNode) else []
        items_node = next((value for key, value in pairs if key.value == "questions"), None)
    if data is None:
        return name, []
    if not isinstance(data, list):
        raise QuestionFileError(f"{path}: `questions` must be a list")
    lines = [node.start_mark.line + 1 for node in items_node.value]
    return name, list(zip(lines, data, strict=True))


def subset(question_set: QuestionSet, limit: int) -> QuestionSet:
    """At most `limit` questions spread over the file, answerable and unanswerable in the file's
    proportion (at least one of each kind the file has, when the limit allows), in file order."""
    questions = question_set.questions
    if limit <= 0 or limit >= len(questions):
        return question_set
    unanswerable = len(question_set.unanswerable)
    take_unanswerable = round(limit * unanswerable / len(questions))
    if unanswerable and limit > 1:
        take_unanswerable = max(take_unanswerable, 1)
    if unanswerable < len(questions):
        take_unanswerable = min(take_unanswerable, limit - 1)
    keep = {id(q) for q in _spread(question_set.unanswerable, take_unanswerable)}
    keep |= {id(q) for q in _spread(question_set.answerable, limit - take_unanswerable)}
    chosen = [q for q in questions if id(q) in keep]
    return question_set.model_copy(update={"questions": chosen})


def _spread(items: list[Question], count: int) -> list[Question]:
    """`count` items evenly spaced through the list, the first included."""
    if count <= 0:
        return []
    step = len(items) / count
    return [items[int(i * step)] for i in range(min(count, len(items)))]
