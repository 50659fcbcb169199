"""Check and clean incoming text before it reaches the store or the model."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)
"""C0/C1 controls, bidi overrides and isolates (Trojan Source), invisible joiners that hide words.
ZWJ and ZWNJ stay: emoji sequences and several scripts need them."""
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")


@dataclass(frozen=True)
class Verdict:
    """Cleaned text, or a reason to refuse it that the user will read."""

    text: str
    refusal: str | None = None


def strip_control(text: str) -> str:
    """Drop escape sequences, control characters and lone surrogates; keep spaces, newlines and
    tabs."""
    text = _ANSI.sub("", text)
    text = _CONTROL.sub("", text)
    return text.encode("utf-8", "replace").decode("utf-8")


def clean_text(text: str) -> str:
    """Incoming text made safe to store: no control characters, NFC-normalised, trimmed."""
    return unicodedata.normalize("NFC", strip_control(text)).strip()


def check_message(text: str, *, max_chars: int) -> Verdict:
    """Refuse empty or oversized messages with a clear reason."""
    cleaned = clean_text(text)
    if not cleaned:
        return Verdict(cleaned, "Your message is empty. What would you like to know?")
    if len(cleaned) > max_chars:
        return Verdict(
            cleaned[:max_chars],
            f"Your message is too long ({len(cleaned)} characters; the limit is {max_chars}). "
            "Please shorten it.",
        )
    return Verdict(cleaned)
