"""The domain file: slots (types, validators, prompts), forms, tool routing hints and responses
(YAML or TOML).

>>> domain = Domain.load(Path("domain.yaml"))  # as `assistant init` writes it
>>> domain.forms["callback_request"].slots
['name', 'phone', 'topic']
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dialog.errors import DialogError
from dialog.extract import normalise
from dialog.persona import Persona

SlotType = Literal["text", "email", "phone", "order_id", "date", "amount", "number"]


class DomainError(DialogError):
    """The domain file is missing or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotSpec(_Strict):
    """A slot: its type picks the rule extractor; `pattern`, `choices`, lengths validate it."""

    type: SlotType = "text"
    prompt: str
    description: str = ""
    pattern: str | None = None
    choices: list[str] | None = None
    min_length: int = Field(default=1, ge=0)
    max_length: int = Field(default=500, ge=1)
    invalid: str = "That doesn't look right."
    prefix: str = ""
    """An id's own prefix (`AB-`): a bare `1042` becomes `AB-1042` before the pattern is checked."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    def validate_value(self, raw: Any) -> Any | None:
        """The normalised value, or None when it fails the type, pattern, choices or lengths."""
        value = normalise(self.type, raw)
        if value is None:
            return None
        if self.prefix and isinstance(value, str) and value.isdigit():
            value = f"{self.prefix}{value}"
        text = str(value)
        if not self.min_length <= len(text) <= self.max_length:
            return None
        if self.pattern and not re.fullmatch(self.pattern, text):
            return None
        if self.choices:
            match = next((c for c in self.choices if c.lower() == text.lower()), None)
            return match
        return value


class FormSpec(_Strict):
    """Slots to fill in order, then a tool (`submit`) that receives them as arguments."""

    description: str
    slots: list[str]
    submit: str
    triggers: list[str] = Field(default_factory=list)
    done: str = ""


class ToolHints(_Strict):
    """Routing hints for a registered tool: regexes that pick it without asking the LM."""

    triggers: list[str] = Field(default_factory=list)


class Domain(_Strict):
    """Everything the dialog manager knows about a business, loaded from one file."""

    name: str = "assistant"
    persona: Persona = Field(default_factory=Persona)
    confirm_below: float = Field(default=0.7, ge=0.0, le=1.0)
    slots: dict[str, SlotSpec] = Field(default_factory=dict)
    forms: dict[str, FormSpec] = Field(default_factory=dict)
    tools: dict[str, ToolHints] = Field(default_factory=dict)
    responses: dict[str, str] = Field(default_factory=dict)
    handoff_triggers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Domain:
        for name, form in self.forms.items():
            unknown = [s for s in form.slots if s not in self.slots]
            if unknown:
                raise ValueError(f"form {name!r} uses undeclared slots {unknown}")
            if name in self.tools:
                raise ValueError(f"{name!r} is both a form and a tool")
        for pattern in (
            [t for f in self.forms.values() for t in f.triggers]
            + self.handoff_triggers
            + [t for h in self.tools.values() for t in h.triggers]
        ):
            re.compile(pattern)
        return self

    @classmethod
    def load(cls, path: Path) -> Domain:
        """Read a `.yaml`/`.yml` or `.toml` domain file; errors name the file and the field."""
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise DomainError(f"cannot read domain file {path}: {err}") from err
        try:
            return cls.model_validate(data or {})
        except ValidationError as err:
            raise DomainError(f"invalid domain file {path}:\n{err}") from err

    def slot_types(self) -> dict[str, str]:
        return {name: spec.type for name, spec in self.slots.items()}

    def response(self, key: str, default: str = "", **values: Any) -> str:
        """A response template filled with `values` (missing names are left as they are)."""
        template = self.responses.get(key, default)
        return template.format_map(_Keep(values))


class _Keep(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
