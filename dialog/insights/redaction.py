"""Masking of personal data (emails, phone numbers, card numbers …) in stored text and exports.

`ASSISTANT_REDACT=emails,phones` builds a `Redactor`; the conversation store runs every event's
payload through it before writing, so customer text is kept masked, while slot values (what the
tools need, for as long as the conversation lives) are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

RedactPayload = Callable[[str, dict[str, Any]], dict[str, Any]]
"""(event type, payload) -> payload as stored: what `ConversationStore(redact=...)` takes."""

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().-]{0,2}\d){7,14}(?![\w])")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")
_IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")


def _luhn(digits: str) -> bool:
    """Card numbers carry a Luhn check digit; other long digit runs (order numbers) do not."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _cards(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return "[card]" if _luhn(digits) else match.group()

    return _CARD.sub(mask, text)


def _phones(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        return match.group() if _DATE.match(match.group().strip()) else "[phone]"

    return _PHONE.sub(mask, text)


MASKS: dict[str, Callable[[str], str]] = {
    "emails": lambda text: _EMAIL.sub("[email]", text),
    "cards": _cards,
    "ibans": lambda text: _IBAN.sub("[iban]", text),
    "ips": lambda text: _IPV4.sub("[ip]", text),
    "phones": _phones,
}
"""Each kind ASSISTANT_REDACT may name, in the order they run (cards before phones: a card number
would also look like a phone number)."""

_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("text",),
    "bot": ("text",),
    "answer_failed": ("partial",),
    "handoff": ("summary",),
    "summary": ("text",),
}
"""The customer's and the assistant's words in each event type; slots and tool arguments are not
here, on purpose."""


def parse_kinds(value: str) -> tuple[str, ...]:
    """`emails, phones` -> ("emails", "phones"); an unknown kind is a ValueError."""
    kinds = tuple(k.strip().lower() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in MASKS]
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(MASKS)}")
    return tuple(k for k in MASKS if k in kinds)


@dataclass(frozen=True)
class Redactor:
    """Masks the configured kinds of personal data in text and in event payloads.

    >>> Redactor(("emails",)).text("write to ann@example.com")
    'write to [email]'
    """

    kinds: tuple[str, ...] = ()

    @classmethod
    def from_setting(cls, value: str) -> Redactor:
        return cls(parse_kinds(value))

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def text(self, text: str) -> str:
        for kind in self.kinds:
            text = MASKS[kind](text)
        return text

    def texts(self, texts: Iterable[str]) -> list[str]:
        return [self.text(t) for t in texts]

    def payload(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with its free-text fields masked (a bot's check facts too); others kept."""
        fields = _TEXT_FIELDS.get(event_type, ())
        if not self.kinds or not fields:
            return payload
        masked = dict(payload)
        for name in fields:
            if isinstance(masked.get(name), str):
                masked[name] = self.text(masked[name])
        check = masked.get("check")
        if event_type == "bot" and isinstance(check, dict):
            masked["check"] = {
                **check,
                **{k: self.texts(check[k]) for k in ("facts", "unsupported") if k in check},
            }
        return masked


def store_hook(value: str) -> RedactPayload | None:
    """What the conversation store is given for `ASSISTANT_REDACT` (None when nothing is masked)."""
    redactor = Redactor.from_setting(value)
    return redactor.payload if redactor else None
