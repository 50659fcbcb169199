"""Who the assistant is for one company: its name, tone, languages, instructions and the web chat's
texts, read from the domain file's `persona:` block.

Nothing here names a company: an empty persona gives a neutral assistant, so one deployment's
texts never leak into another's.

>>> Persona(company="Acme", tone="warm and brief").instructions_line()
'You are the customer-support assistant of Acme. Your tone is warm and brief.'
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebTexts(_Strict):
    """What the web chat shows before the first message."""

    title: str = "Support assistant"
    intro: str = "Answers come from the knowledge base, with the passages they used."
    placeholder: str = "Ask a question…"
    examples: list[str] = Field(default_factory=list)
    """Example questions offered as buttons under the message box."""


class Persona(_Strict):
    """The company's voice; every field has a neutral default."""

    assistant_name: str = ""
    company: str = ""
    tone: str = ""
    """A few words on how to sound (`friendly and concise`); empty: the model's plain register."""
    languages: list[str] = Field(default_factory=list)
    """Languages the company supports, the first being its default (empty: any)."""
    instructions: str = ""
    """Extra system instructions for every answer (what to call the product, what never to
    promise)."""
    greeting: str = "Hello! How can I help you today?"
    web: WebTexts = Field(default_factory=WebTexts)
    link_hosts: list[str] = Field(default_factory=list)
    """The company's own hosts, which answers may link to (besides those of its web sources)."""

    def instructions_line(self) -> str:
        """Who is speaking, for the top of the system prompt."""
        who = f"You are {self.assistant_name}, " if self.assistant_name else "You are "
        who += (
            f"the customer-support assistant of {self.company}."
            if self.company
            else ("a customer-support assistant.")
        )
        return f"{who} Your tone is {self.tone}." if self.tone else who
